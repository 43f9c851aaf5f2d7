/** Running wrk and reading its text output. */
import { runPinned } from './proc.js';

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** from `--latency`; milliseconds */
  latencyMs: { p50: number; p75: number; p90: number; p99: number } | null;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** wrk counts responses outside 2xx and 3xx together */
  badStatus: number;
}

const TIME_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "930.00us", "1.04ms", "2.00s" → milliseconds. */
export function wrkTimeToMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`cannot read wrk time "${text}"`);
  return Number(m[1]) * TIME_UNIT_MS[m[2]!]!;
}

/** Parse the report wrk prints on stdout. Throws if the essential lines are missing. */
export function parseWrk(text: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+(?:us|ms|s|m|h)),/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!total || !rps) throw new Error(`unexpected wrk output:\n${text.slice(0, 600)}`);

  let latencyMs: WrkResult['latencyMs'] = null;
  const pct = (p: string): number | undefined => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)\\s*$`, 'm').exec(text);
    return m ? wrkTimeToMs(m[1]!) : undefined;
  };
  const [p50, p75, p90, p99] = [pct('50'), pct('75'), pct('90'), pct('99')];
  if (p50 !== undefined && p75 !== undefined && p90 !== undefined && p99 !== undefined) {
    latencyMs = { p50, p75, p90, p99 };
  }

  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requests: Number(total[1]),
    seconds: wrkTimeToMs(total[2]!) / 1000,
    rps: Number(rps[1]),
    latencyMs,
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
    badStatus: Number(bad?.[1] ?? 0),
  };
}

export function errorCount(r: WrkResult): number {
  const s = r.socketErrors;
  return r.badStatus + s.connect + s.read + s.write + s.timeout;
}

export interface WrkRun {
  conns: number;
  seconds: number;
  url: string;
  cpus: string;
}

/** The last line of the shell's `times`: CPU seconds (user + system) of its finished children. */
export function childCpuSeconds(text: string): number | undefined {
  const lines = text.trim().split('\n');
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1]!.trim());
  return m ? 60 * Number(m[1]) + Number(m[2]) + 60 * Number(m[3]) + Number(m[4]) : undefined;
}

export interface WrkOutcome {
  result: WrkResult | null;
  /** wrk's own CPU time, so the CPU left over for other work on the box can be estimated */
  wrkCpuSeconds: number | undefined;
  raw: string;
  error?: string;
}

/** One wrk run with a single thread (one load core). Returns the parsed result and the raw text. */
export async function runWrk(run: WrkRun): Promise<WrkOutcome> {
  const args = ['-t1', `-c${run.conns}`, `-d${run.seconds}s`, '--latency', run.url];
  // A shell around wrk reports wrk's CPU time with `times` once wrk is done.
  const script = 'wrk "$@"; rc=$?; times; exit $rc';
  const { code, text } = await runPinned('sh', ['-c', script, 'sh', ...args], run.cpus);
  const wrkCpuSeconds = childCpuSeconds(text);
  try {
    const result = parseWrk(text);
    const out = { result, wrkCpuSeconds, raw: text };
    return code === 0 ? out : { ...out, error: `wrk exited with ${code}` };
  } catch (err) {
    return { result: null, wrkCpuSeconds, raw: text, error: (err as Error).message };
  }
}
