// Everything a run records: HDR histograms of latency (overall, per kind, per second), status codes,
// errors by kind, the instances that answered, and a per-second timeline by request kind.
import { build, type Histogram } from 'hdr-histogram-js';
import type { RequestKind } from './options.js';

/** Latencies in milliseconds. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface OkFailed {
  ok: number;
  failed: number;
}

export interface KindResult extends OkFailed {
  sent: number;
  latency: LatencySummary;
}

/** One second of the timeline, by the time requests were scheduled (second 0 = the first second). */
export interface TimelineSecond extends OkFailed {
  second: number;
  sent: number;
  kinds: Partial<Record<RequestKind, OkFailed>>;
  /** Latency of that second's answered requests, ms (0 when none answered). */
  p50: number;
  p99: number;
  max: number;
}

/** How a request failed without an HTTP answer. */
export type ErrorKind = 'timeout' | 'connection-refused' | 'connection-reset' | 'dns' | 'other';

/** Values are recorded in microseconds, up to an hour, to 3 significant digits. */
const HOUR_US = 3_600_000_000;
const newHistogram = (digits: 2 | 3 = 3): Histogram =>
  build({
    numberOfSignificantValueDigits: digits,
    highestTrackableValue: HOUR_US,
    bitBucketSize: digits === 2 ? 'packed' : 32,
  });

interface Second extends OkFailed {
  sent: number;
  kinds: Partial<Record<RequestKind, OkFailed>>;
  latency: Histogram;
}

export class Recorder {
  readonly latency = newHistogram();
  /** Reset at every progress report, for the live p99. */
  readonly recent = newHistogram(2);
  readonly byKind = new Map<RequestKind, { sent: number; ok: number; failed: number; latency: Histogram }>();
  readonly statusCodes = new Map<number, number>();
  readonly errors = new Map<ErrorKind, number>();
  readonly instances = new Map<string, number>();
  private readonly seconds: Second[] = [];
  sent = 0;
  ok = 0;
  failed = 0;
  answered = 0;
  /** Answered or failed, for the live rate. */
  completed = 0;

  recordSent(kind: RequestKind, second: number): void {
    this.sent++;
    this.kind(kind).sent++;
    this.second(second).sent++;
  }

  /** An HTTP answer: ok when the status is below 400. */
  recordAnswer(
    kind: RequestKind,
    second: number,
    status: number,
    latencyMs: number,
    instance: string | undefined,
  ): void {
    const us = Math.max(1, Math.round(latencyMs * 1000));
    this.answered++;
    this.latency.recordValue(us);
    this.recent.recordValue(us);
    this.kind(kind).latency.recordValue(us);
    this.second(second).latency.recordValue(us);
    this.statusCodes.set(status, (this.statusCodes.get(status) ?? 0) + 1);
    if (instance !== undefined) this.instances.set(instance, (this.instances.get(instance) ?? 0) + 1);
    this.count(kind, second, status < 400);
  }

  /** No HTTP answer: refused, reset, timed out… */
  recordError(kind: RequestKind, second: number, error: ErrorKind): void {
    this.errors.set(error, (this.errors.get(error) ?? 0) + 1);
    this.count(kind, second, false);
  }

  timeline(): TimelineSecond[] {
    return this.seconds.map((s, second) => ({
      second,
      sent: s.sent,
      ok: s.ok,
      failed: s.failed,
      kinds: s.kinds,
      ...quick(s.latency),
    }));
  }

  private count(kind: RequestKind, second: number, ok: boolean): void {
    this.completed++;
    const k = this.kind(kind);
    const s = this.second(second);
    const sk = (s.kinds[kind] ??= { ok: 0, failed: 0 });
    if (ok) {
      this.ok++;
      k.ok++;
      s.ok++;
      sk.ok++;
    } else {
      this.failed++;
      k.failed++;
      s.failed++;
      sk.failed++;
    }
  }

  private kind(kind: RequestKind) {
    let k = this.byKind.get(kind);
    if (!k) this.byKind.set(kind, (k = { sent: 0, ok: 0, failed: 0, latency: newHistogram() }));
    return k;
  }

  private second(second: number): Second {
    while (this.seconds.length <= second)
      this.seconds.push({ sent: 0, ok: 0, failed: 0, kinds: {}, latency: newHistogram(2) });
    return this.seconds[second]!;
  }
}

const ms = (us: number): number => Math.round(us) / 1000;

function quick(h: Histogram): { p50: number; p99: number; max: number } {
  if (h.totalCount === 0) return { p50: 0, p99: 0, max: 0 };
  return { p50: ms(h.getValueAtPercentile(50)), p99: ms(h.getValueAtPercentile(99)), max: ms(h.maxValue) };
}

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: h.totalCount,
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** The latency at a range of percentiles, for a percentile plot: 0, 50, 75, 90, 95, 99, 99.5, 99.9 … 100. */
export function percentileCurve(h: Histogram): { percentile: number; ms: number }[] {
  if (h.totalCount === 0) return [];
  const points = [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999, 100];
  return points.map((percentile) => ({
    percentile,
    ms: ms(
      percentile === 0
        ? h.minNonZeroValue
        : percentile === 100
          ? h.maxValue
          : h.getValueAtPercentile(percentile),
    ),
  }));
}
