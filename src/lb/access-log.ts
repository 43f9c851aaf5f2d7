// The JSON access log: one pino line per finished request, from the same RequestRecord the metrics use.
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Logger as ProcessLogger } from '../core/log.js';
import type { RequestRecord } from './http/session.js';

/** true (or "stdout"): standard output; a string: a file path (appended to); false: off. */
export type AccessLogTarget = boolean | string;

/** Lines waiting beyond this (a stalled disk or reader) are dropped and counted, not kept in memory. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

/** Lines are written when this much is waiting, or FLUSH_MS after the first waiting line. */
const CHUNK_CHARS = 64 * 1024;
/**
 * Standard output may be a pipe shared by several worker processes (`--workers N`): a write of at most
 * PIPE_BUF (4096 bytes on Linux) is never interleaved with another's, so chunks stay below it there.
 */
const PIPE_CHUNK_CHARS = 3800;
const FLUSH_MS = 100;

/**
 * Collects lines and writes them in chunks of about 64 KiB, or 100 ms after the first line waiting,
 * as nginx's `access_log … buffer= flush=` does. Written by hand because pino's asynchronous
 * destination (sonic-boom) writes as soon as the previous write ends: under load that is one write
 * (and a thread-pool round trip) per few requests, which measured at several times the CPU of the
 * JSON line itself (bench/admin/observe.sh).
 */
class BatchedLines {
  private parts: string[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;
  dropped = 0;

  constructor(
    readonly out: NodeJS.WritableStream & { writableLength?: number },
    private readonly onProblem: (message: string) => void,
    private readonly maxWriteChars = CHUNK_CHARS,
  ) {
    out.on('error', (err: Error) => {
      // A full disk or a closed pipe: say so once, and keep serving without the log.
      if (!this.failed) this.onProblem(`write failed (${err.message}); access logging stops`);
      this.failed = true;
    });
  }

  /** pino's destination interface. */
  write(line: string): void {
    if (this.failed) return;
    if ((this.out.writableLength ?? 0) > MAX_BACKLOG_BYTES) {
      if (this.dropped++ === 0) this.onProblem('the log cannot keep up: dropping lines');
      return;
    }
    this.parts.push(line);
    this.chars += line.length;
    if (this.chars >= CHUNK_CHARS) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(this.flush, FLUSH_MS);
      this.timer.unref();
    }
  }

  readonly flush = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.parts.length === 0 || this.failed) return;
    const parts = this.parts;
    this.parts = [];
    this.chars = 0;
    if (this.maxWriteChars >= CHUNK_CHARS) {
      this.out.write(parts.join(''));
      return;
    }
    // Whole lines in writes below maxWriteChars (a longer line goes alone).
    let chunk = '';
    for (const line of parts) {
      if (chunk.length > 0 && chunk.length + line.length > this.maxWriteChars) {
        this.out.write(chunk);
        chunk = '';
      }
      chunk += line;
    }
    if (chunk.length > 0) this.out.write(chunk);
  };
}

/** pino's isoTime builds a Date per line; under load many lines share a millisecond. */
function cachedIsoTime(): () => string {
  let lastMs = -1;
  let last = '';
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      last = `,"time":"${new Date(now).toISOString()}"`;
    }
    return last;
  };
}

export class AccessLog {
  private readonly logger: Logger;
  private readonly lines: BatchedLines;
  private readonly ownsStream: boolean;
  private closed = false;

  /** `to`: a file path (appended to), "stdout", or a writable stream (tests). */
  constructor(to: string | NodeJS.WritableStream, processLog?: ProcessLogger) {
    let out: NodeJS.WritableStream;
    if (to === 'stdout') out = process.stdout;
    else if (typeof to === 'string') {
      mkdirSync(dirname(to), { recursive: true });
      out = createWriteStream(to, { flags: 'a' });
    } else out = to;
    this.ownsStream = typeof to === 'string' && to !== 'stdout';
    const name = typeof to === 'string' ? to : 'stream';
    this.lines = new BatchedLines(
      out,
      (message) => processLog?.error({ accessLog: name }, `access log ${name}: ${message}`),
      to === 'stdout' ? PIPE_CHUNK_CHARS : CHUNK_CHARS,
    );
    this.logger = pino(
      { name: 'scaleout-lb-access', base: undefined, timestamp: cachedIsoTime() },
      this.lines,
    );
  }

  /** The per-request hook (LbRuntimeOptions.onRequest). */
  readonly onRequest = (listener: string, r: RequestRecord): void => {
    if (this.closed) return;
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

  /** Lines dropped because the output could not keep up. */
  get dropped(): number {
    return this.lines.dropped;
  }

  /** Hands the lines logged so far to the output now (otherwise within 100 ms). */
  flush(): void {
    this.lines.flush();
  }

  /** Writes what is pending and closes a log file. Requests finishing later are not logged. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lines.flush();
    if (this.ownsStream) {
      const out = this.lines.out as NodeJS.WritableStream;
      out.end();
      await Promise.race([
        once(out, 'finish'),
        once(out, 'error'),
        new Promise((r) => setTimeout(r, 2000).unref()),
      ]);
    }
  }
}

/** The access log a config setting asks for, or undefined when it is off. */
export function openAccessLog(target: AccessLogTarget, processLog?: ProcessLogger): AccessLog | undefined {
  if (target === false) return undefined;
  return new AccessLog(target === true ? 'stdout' : target, processLog);
}
