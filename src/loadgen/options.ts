// The load generator's options and their validation. Every problem is a LoadOptionsError whose message
// names the option and says what is expected, so the CLI and library callers get the same words.
import { parseDuration } from '../core/net.js';

/** What a request does to the demo app (docs/load-generator.md has the mapping to endpoints). */
export type RequestKind = 'read' | 'write' | 'list';
export const REQUEST_KINDS: readonly RequestKind[] = ['read', 'write', 'list'];

/** Relative weights per kind, e.g. { read: 90, write: 10 }. */
export type Mix = Partial<Record<RequestKind, number>>;

export interface LoadOptions {
  /** Without a mix, every request GETs this URL; with one, it is the demo app's base URL. */
  url: string;
  /** Requests per second, on a fixed timeline. */
  rate: number;
  durationMs: number;
  /** Drive the demo app's endpoints in these proportions; undefined = GET `url`. */
  mix?: Mix;
  /** Connections to the target (default 64): requests beyond them wait, and the wait is latency. */
  connections?: number;
  /** A request not answered this long after it was sent fails as `timeout` (default 10 s). */
  timeoutMs?: number;
  /** Stops scheduling new requests (those in flight still finish). */
  signal?: AbortSignal;
}

export class LoadOptionsError extends Error {}

export const MAX_RATE = 100_000;
export const MAX_DURATION_MS = 24 * 3_600_000;

/** Parses "read=90,write=10" into weights; kinds must be known, weights whole numbers, not all zero. */
export function parseMix(text: string): Mix {
  const mix: Mix = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^([a-z]+)\s*=\s*(\d+)$/.exec(part);
    if (!m) throw new LoadOptionsError(`--mix: "${part}" is not KIND=WEIGHT (e.g. read=90,write=10)`);
    const kind = m[1] as RequestKind;
    if (!REQUEST_KINDS.includes(kind))
      throw new LoadOptionsError(`--mix: unknown kind "${m[1]}" (use ${REQUEST_KINDS.join(', ')})`);
    if (mix[kind] !== undefined) throw new LoadOptionsError(`--mix: "${kind}" given twice`);
    mix[kind] = Number(m[2]);
  }
  validateMix(mix);
  return mix;
}

function validateMix(mix: Mix): void {
  let total = 0;
  for (const [kind, weight] of Object.entries(mix)) {
    if (!REQUEST_KINDS.includes(kind as RequestKind))
      throw new LoadOptionsError(`mix: unknown kind "${kind}" (use ${REQUEST_KINDS.join(', ')})`);
    if (!Number.isInteger(weight) || weight < 0)
      throw new LoadOptionsError(`mix: the weight of ${kind} must be a whole number ≥ 0`);
    total += weight;
  }
  if (total === 0) throw new LoadOptionsError('mix: at least one weight must be above 0');
}

export function parseRate(text: string): number {
  const rate = Number(text);
  if (text.trim() === '' || !Number.isFinite(rate) || rate <= 0 || rate > MAX_RATE)
    throw new LoadOptionsError(
      `--rate: "${text}" is not a number of requests per second above 0 and up to ${MAX_RATE}`,
    );
  return rate;
}

export function parseLoadDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0 || ms > MAX_DURATION_MS)
    throw new LoadOptionsError(
      `--duration: "${text}" is not a duration such as 500ms, 30s or 5m (up to 24h)`,
    );
  return ms;
}

export interface ResolvedOptions {
  url: URL;
  rate: number;
  durationMs: number;
  mix: Mix | undefined;
  connections: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** Requests on the timeline: one every 1000/rate ms from 0 up to (not including) durationMs. */
  total: number;
}

/** Checks a library caller's options the way the CLI checks flags. */
export function resolveOptions(options: LoadOptions): ResolvedOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new LoadOptionsError(`URL: "${options.url}" is not a URL (e.g. http://127.0.0.1:8080/)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new LoadOptionsError(`URL: "${options.url}" must start with http:// or https://`);
  if (!Number.isFinite(options.rate) || options.rate <= 0 || options.rate > MAX_RATE)
    throw new LoadOptionsError(`rate: ${options.rate} is not above 0 and up to ${MAX_RATE} per second`);
  if (!Number.isFinite(options.durationMs) || options.durationMs <= 0 || options.durationMs > MAX_DURATION_MS)
    throw new LoadOptionsError(`duration: ${options.durationMs} ms is not above 0 and up to 24 h`);
  const connections = options.connections ?? 64;
  if (!Number.isInteger(connections) || connections < 1 || connections > 10_000)
    throw new LoadOptionsError(`connections: ${connections} is not a whole number from 1 to 10000`);
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new LoadOptionsError(`timeout: ${timeoutMs} ms must be above 0`);
  if (options.mix) validateMix(options.mix);
  return {
    url,
    rate: options.rate,
    durationMs: options.durationMs,
    mix: options.mix,
    connections,
    timeoutMs,
    signal: options.signal,
    total: Math.max(1, Math.ceil((options.durationMs * options.rate) / 1000)),
  };
}
