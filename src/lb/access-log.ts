// The JSON access log: one pino line per finished request, from the same RequestRecord the metrics use.
//
// Lines go through an asynchronous sonic-boom destination: a line is appended to a buffer and written
// by the next write call, so under load many lines leave in one write() instead of a syscall each.
import { once, type EventEmitter } from 'node:events';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Logger as ProcessLogger } from '../core/log.js';
import type { RequestRecord } from './http/session.js';

/** true (or "stdout"): standard output; a string: a file path (appended to); false: off. */
export type AccessLogTarget = boolean | string;

type Boom = DestinationStream &
  EventEmitter & {
    end(): void;
    /** sonic-boom's internal "a write is in flight" flag. */
    _writing?: boolean;
  };

export class AccessLog {
  private readonly logger: Logger;
  private readonly boom: Boom | undefined;
  private failed = false;
  private readonly ownsFile: boolean;

  /** `to`: a file path, "stdout", or a writable stream (tests). */
  constructor(to: string | NodeJS.WritableStream, processLog?: ProcessLogger) {
    let dest: DestinationStream;
    this.ownsFile = typeof to === 'string' && to !== 'stdout';
    if (typeof to === 'string') {
      this.boom = pino.destination({
        dest: to === 'stdout' ? 1 : to,
        sync: false,
        mkdir: to !== 'stdout',
      }) as unknown as Boom;
      this.boom.on('error', (err) => {
        // A full disk or a closed pipe: say so once and keep serving without the log.
        if (this.failed) return;
        this.failed = true;
        processLog?.error({ err: err.message, accessLog: to }, `access log ${to}: write failed`);
      });
      dest = this.boom;
    } else {
      dest = to as DestinationStream;
    }
    this.logger = pino(
      { name: 'scaleout-lb-access', base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
      dest,
    );
  }

  /** The per-request hook (LbRuntimeOptions.onRequest). */
  readonly onRequest = (listener: string, r: RequestRecord): void => {
    this.logger.info({
      listener,
      rule: r.rule,
      targetGroup: r.targetGroup,
      target: r.upstream,
      client: r.clientIp,
      method: r.method,
      host: r.host,
      path: r.target,
      status: r.status,
      attempts: r.attempts,
      durationMs: Math.round(r.durationMs * 100) / 100,
      upstreamMs: r.upstreamMs < 0 ? undefined : Math.round(r.upstreamMs * 100) / 100,
      reason: r.reason,
    });
  };

  /** Waits for buffered lines to be written (shutdown), then closes a log file. */
  async close(): Promise<void> {
    const boom = this.boom;
    if (!boom) return;
    // sonic-boom has no public "everything written" promise; while a write is in flight it emits
    // 'drain' once its buffer is empty. (flushSync would write later lines before the in-flight ones.)
    if (boom._writing) {
      await Promise.race([once(boom, 'drain'), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    if (this.ownsFile) boom.end();
  }
}

/** The access log a config setting asks for, or undefined when it is off. */
export function openAccessLog(target: AccessLogTarget, processLog?: ProcessLogger): AccessLog | undefined {
  if (target === false) return undefined;
  return new AccessLog(target === true ? 'stdout' : target, processLog);
}
