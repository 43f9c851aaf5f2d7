// `runLoad`: an open-loop load generator. Requests are scheduled on a fixed timeline (request i at
// start + i/rate) and sent when due whatever happened to earlier ones; each one's latency is measured
// from its scheduled time, not from when it got a connection. A target that stalls for a second thus
// shows up as a second's worth of slow requests in the percentiles, instead of as one slow request
// and a quiet pause (the "coordinated omission" of closed-loop tools, which wait before sending).
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import {
  resolveOptions,
  type LoadOptions,
  type Mix,
  type RequestKind,
  type ResolvedOptions,
} from './options.js';
import { dueCount, scheduledAt } from './schedule.js';
import {
  percentileCurve,
  Recorder,
  summarize,
  type ErrorKind,
  type KindResult,
  type LatencySummary,
  type TimelineSecond,
} from './stats.js';
import { demoAppWorkload, plainWorkload, type PlannedRequest } from './workload.js';

export { LoadOptionsError, parseMix, parseRate, parseLoadDuration, REQUEST_KINDS } from './options.js';
export type { LoadOptions, Mix, RequestKind } from './options.js';
export type { LatencySummary, KindResult, TimelineSecond, OkFailed, ErrorKind } from './stats.js';

export interface LoadProgress {
  elapsedMs: number;
  durationMs: number;
  sent: number;
  ok: number;
  failed: number;
  inFlight: number;
  /** Requests completed per second since the previous report. */
  rate: number;
  /** p99 latency (ms) of the requests answered since the previous report; 0 if none. */
  p99: number;
}

export interface LoadHooks {
  onProgress?(progress: LoadProgress): void;
  /** Default 1000 ms. */
  progressIntervalMs?: number;
}

export interface LoadResult {
  url: string;
  /** "get": GET the URL; "mix": the demo app's endpoints in `mix` proportions. */
  mode: 'get' | 'mix';
  mix?: Mix;
  rate: number;
  durationMs: number;
  connections: number;
  timeoutMs: number;
  startedAt: string;
  /** From the first scheduled send to the last answer (or timeout). */
  elapsedMs: number;
  /** true when stopped early by the abort signal. */
  aborted: boolean;
  sent: number;
  ok: number;
  failed: number;
  /** Requests sent per second of the schedule actually run. */
  achievedRate: number;
  /** How late the generator itself sent a request, at worst (ms): a busy client shows up here. */
  maxSendLagMs: number;
  /** Over every request that got an HTTP answer, measured from its scheduled time. */
  latency: LatencySummary;
  percentiles: { percentile: number; ms: number }[];
  statusCodes: Record<string, number>;
  /** Requests that got no HTTP answer, by cause. */
  errors: Partial<Record<ErrorKind, number>>;
  kinds: Partial<Record<RequestKind, KindResult>>;
  /** Answers per X-Scaleout-Instance value; `unlabelled` counts answers without the header. */
  instances: Record<string, number>;
  unlabelled: number;
  timeline: TimelineSecond[];
}

export async function runLoad(options: LoadOptions, hooks: LoadHooks = {}): Promise<LoadResult> {
  const opts = resolveOptions(options);
  const pool = new Pool(opts.url.origin, { connections: opts.connections, pipelining: 1 });
  try {
    const workload = opts.mix ? demoAppWorkload(opts.url, opts.mix) : plainWorkload(opts.url, opts.timeoutMs);
    try {
      await workload.prepare(pool);
    } catch (err) {
      throw new Error(`cannot start the load on ${opts.url.href}: ${describe(err)}`, { cause: err });
    }
    const rec = new Recorder();
    let inFlight = 0;
    let maxSendLagMs = 0;
    const startedAt = new Date();
    const t0 = performance.now();
    let next = 0;
    let aborted = false;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));

    const send = (index: number, req: PlannedRequest): void => {
      const due = t0 + scheduledAt(index, opts.rate);
      const second = Math.floor(scheduledAt(index, opts.rate) / 1000);
      maxSendLagMs = Math.max(maxSendLagMs, performance.now() - due);
      rec.recordSent(req.kind, second);
      inFlight++;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), opts.timeoutMs);
      pool
        .request({
          method: req.method,
          path: req.path,
          headers: req.headers,
          body: req.body,
          signal: abort.signal,
        })
        .then(async (res) => {
          await res.body.dump();
          const instance = res.headers['x-scaleout-instance'];
          rec.recordAnswer(
            req.kind,
            second,
            res.statusCode,
            performance.now() - due,
            typeof instance === 'string' ? instance : undefined,
          );
          if (res.statusCode < 400) req.onSuccess?.(res.headers);
        })
        .catch((err: unknown) =>
          rec.recordError(req.kind, second, abort.signal.aborted ? 'timeout' : errorKind(err)),
        )
        .finally(() => {
          clearTimeout(timer);
          inFlight--;
          if (inFlight === 0 && (next >= opts.total || aborted)) finish();
        });
    };

    // The clock: each tick sends everything due by now, then sleeps until the next request is due.
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      if (opts.signal?.aborted) aborted = true;
      const due = aborted ? next : dueCount(performance.now() - t0, opts.rate, opts.total);
      while (next < due) {
        const index = next++;
        send(index, workload.next());
      }
      if (next >= opts.total || aborted) {
        if (inFlight === 0) finish();
        return;
      }
      timer = setTimeout(tick, Math.max(0, t0 + scheduledAt(next, opts.rate) - performance.now()));
    };
    const onAbort = (): void => {
      aborted = true;
      clearTimeout(timer);
      if (inFlight === 0) finish();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    let lastReport = t0;
    let lastCompleted = 0;
    const progressTimer = hooks.onProgress
      ? setInterval(() => {
          const now = performance.now();
          hooks.onProgress!({
            elapsedMs: now - t0,
            durationMs: opts.durationMs,
            sent: rec.sent,
            ok: rec.ok,
            failed: rec.failed,
            inFlight,
            rate: ((rec.completed - lastCompleted) * 1000) / Math.max(1, now - lastReport),
            p99: rec.recent.totalCount ? rec.recent.getValueAtPercentile(99) / 1000 : 0,
          });
          rec.recent.reset();
          lastReport = now;
          lastCompleted = rec.completed;
        }, hooks.progressIntervalMs ?? 1000)
      : undefined;

    tick();
    await finished;
    clearInterval(progressTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    return toResult(opts, rec, {
      startedAt,
      elapsedMs: performance.now() - t0,
      aborted,
      scheduleRunMs: aborted ? Math.max(1, scheduledAt(next, opts.rate)) : opts.durationMs,
      maxSendLagMs,
    });
  } finally {
    await pool.destroy().catch(() => {});
  }
}

interface RunFacts {
  startedAt: Date;
  elapsedMs: number;
  aborted: boolean;
  /** The part of the schedule that ran (all of it unless aborted). */
  scheduleRunMs: number;
  maxSendLagMs: number;
}

/** The recorder's figures as plain JSON-ready data. */
function toResult(opts: ResolvedOptions, rec: Recorder, run: RunFacts): LoadResult {
  const kinds: Partial<Record<RequestKind, KindResult>> = {};
  for (const [kind, k] of rec.byKind)
    kinds[kind] = { sent: k.sent, ok: k.ok, failed: k.failed, latency: summarize(k.latency) };
  const labelled = [...rec.instances.values()].reduce((a, b) => a + b, 0);
  return {
    url: opts.url.href,
    mode: opts.mix ? 'mix' : 'get',
    ...(opts.mix ? { mix: opts.mix } : {}),
    rate: opts.rate,
    durationMs: opts.durationMs,
    connections: opts.connections,
    timeoutMs: opts.timeoutMs,
    startedAt: run.startedAt.toISOString(),
    elapsedMs: Math.round(run.elapsedMs),
    aborted: run.aborted,
    sent: rec.sent,
    ok: rec.ok,
    failed: rec.failed,
    achievedRate: Math.round((rec.sent * 1000 * 100) / run.scheduleRunMs) / 100,
    maxSendLagMs: Math.round(run.maxSendLagMs * 1000) / 1000,
    latency: summarize(rec.latency),
    percentiles: percentileCurve(rec.latency),
    statusCodes: Object.fromEntries([...rec.statusCodes].sort((a, b) => a[0] - b[0])),
    errors: Object.fromEntries(rec.errors),
    kinds,
    instances: Object.fromEntries([...rec.instances].sort((a, b) => a[0].localeCompare(b[0]))),
    unlabelled: rec.answered - labelled,
    timeline: rec.timeline(),
  };
}

/** Sorts a failed request's error into a few kinds a reader can act on. */
export function errorKind(err: unknown): ErrorKind {
  for (const e of [err, (err as { cause?: unknown })?.cause]) {
    const kind = ERROR_KINDS[String((e as { code?: unknown })?.code ?? '')];
    if (kind) return kind;
  }
  return 'other';
}

/** Error codes (Node.js and undici) by the kind they are reported as. */
const ERROR_KINDS: Record<string, ErrorKind> = {
  ECONNREFUSED: 'connection-refused',
  ECONNRESET: 'connection-reset',
  EPIPE: 'connection-reset',
  UND_ERR_SOCKET: 'connection-reset',
  UND_ERR_CLOSED: 'connection-reset',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  ETIMEDOUT: 'timeout',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
};

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.message || e.cause?.message || String(err);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
