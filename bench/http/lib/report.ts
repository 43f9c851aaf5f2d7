/**
 * From raw runs to verdicts, medians, ratios to nginx, and the markdown table. Pure functions only,
 * so they can be unit tested without running anything.
 */
import type { RunRecord } from './measure.js';
import { errorCount } from './wrk.js';

/** A backend is treated as starved or flooded outside this band around its fair share (round-robin). */
export const FAIR_SHARE_BAND = { min: 0.8, max: 1.2 };
/** Fewer requests than this per backend connection means the proxy is not keeping connections alive. */
export const MIN_REQUESTS_PER_BACKEND_CONN = 10;
/** The goal from issue 2, as multiples of nginx. */
export const GOAL = { cpuPerRequest: 2, p99AtHighConns: 2 };
/** Above this much other busy CPU (% of one core) during a measured run, the run gets a warning. */
export const OTHER_CPU_WARN_PCT = 20;

export interface Verdict {
  valid: boolean;
  problems: string[];
  warnings: string[];
}

export function judge(run: RunRecord, proxied: boolean, conns: number): Verdict {
  const problems: string[] = [];
  const warnings: string[] = [];
  if (run.status !== 'ok') problems.push(run.status);
  for (const phase of [run.high, run.low]) {
    if (!phase) continue;
    if (!phase.wrk) {
      problems.push(`c${phase.conns}: ${phase.wrkError ?? 'no wrk result'}`);
      continue;
    }
    const w = phase.wrk;
    if (errorCount(w) > 0) {
      const s = w.socketErrors;
      problems.push(
        `c${phase.conns}: ${w.badStatus} non-2xx/3xx, socket errors connect ${s.connect} read ${s.read} write ${s.write} timeout ${s.timeout}`,
      );
    } else if (phase.wrkError) {
      warnings.push(`c${phase.conns}: ${phase.wrkError}`);
    }
    if (phase.otherCpuPct !== undefined && phase.otherCpuPct > OTHER_CPU_WARN_PCT) {
      warnings.push(`c${phase.conns}: ${phase.otherCpuPct}% of a core busy with other work (disturbed run)`);
    }
  }
  if (run.status === 'ok' && (!run.high || !run.low)) problems.push('measured runs missing');

  if (proxied && run.backends && run.high?.wrk) {
    const total = run.backends.reduce((sum, b) => sum + b.requests, 0);
    const fair = total / run.backends.length;
    for (const b of run.backends) {
      const ratio = fair > 0 ? b.requests / fair : 0;
      if (ratio < FAIR_SHARE_BAND.min || ratio > FAIR_SHARE_BAND.max) {
        problems.push(`unfair spread: :${b.port} got ${pct(b.requests / total)} of ${total} requests`);
      }
      const perConn = b.requests / Math.max(1, b.connections);
      if (b.requests > 0 && perConn < MIN_REQUESTS_PER_BACKEND_CONN) {
        warnings.push(`:${b.port} served only ${perConn.toFixed(1)} requests per connection (keep-alive?)`);
      }
    }
    // Health checks and requests in flight at the edges explain a small gap; retries or losses a big one.
    const gap = Math.abs(total - run.high.wrk.requests);
    if (gap > 2 * conns + 100) {
      warnings.push(`backends saw ${total} requests, wrk completed ${run.high.wrk.requests}`);
    }
  }
  return { valid: problems.length === 0, problems, warnings };
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}

/** Figures of one valid run that the summary takes medians of. */
export interface RunFigures {
  round: number;
  rpsHigh: number;
  p50High: number | undefined;
  p99High: number | undefined;
  cpuUsPerReqHigh: number | undefined;
  proxyCorePct: number | undefined;
  loadCorePct: number | undefined;
  otherCpuPct: number | undefined;
  rpsLow: number;
  p50Low: number | undefined;
  p99Low: number | undefined;
  cpuUsPerReqLow: number | undefined;
  shareMin: number | undefined;
  shareMax: number | undefined;
  requestsPerBackendConn: number | undefined;
}

export function figures(run: RunRecord, proxied: boolean, loadCpu: string): RunFigures {
  const high = run.high!;
  const low = run.low!;
  const hw = high.wrk!;
  const lw = low.wrk!;
  const perReq = (cpuSeconds: number, requests: number): number | undefined =>
    proxied && requests > 0 ? (cpuSeconds * 1e6) / requests : undefined;
  const total = run.backends?.reduce((s, b) => s + b.requests, 0) ?? 0;
  const shares = proxied && total > 0 ? run.backends!.map((b) => b.requests / total) : [];
  const conns = run.backends?.reduce((s, b) => s + b.connections, 0) ?? 0;
  return {
    round: run.round,
    rpsHigh: hw.rps,
    p50High: hw.latencyMs?.p50,
    p99High: hw.latencyMs?.p99,
    cpuUsPerReqHigh: perReq(high.proxyCpuSeconds, hw.requests),
    proxyCorePct: proxied ? (100 * high.proxyCpuSeconds) / high.wallSeconds : undefined,
    loadCorePct: high.cpuBusyPct[`cpu${loadCpu}`],
    otherCpuPct: high.otherCpuPct,
    rpsLow: lw.rps,
    p50Low: lw.latencyMs?.p50,
    p99Low: lw.latencyMs?.p99,
    cpuUsPerReqLow: perReq(low.proxyCpuSeconds, lw.requests),
    shareMin: shares.length ? Math.min(...shares) : undefined,
    shareMax: shares.length ? Math.max(...shares) : undefined,
    requestsPerBackendConn: conns > 0 ? total / conns : undefined,
  };
}

export interface RowSummary {
  row: string;
  runs: number;
  validRuns: number;
  byRound: RunFigures[];
  medians: Partial<Record<keyof Omit<RunFigures, 'round'>, number>>;
  /** medians of per-round ratios to nginx, taken within the same round */
  vsNginx: { rps?: number; cpuUsPerReq?: number; p99High?: number };
}

const FIGURE_KEYS = [
  'rpsHigh',
  'p50High',
  'p99High',
  'cpuUsPerReqHigh',
  'proxyCorePct',
  'loadCorePct',
  'otherCpuPct',
  'rpsLow',
  'p50Low',
  'p99Low',
  'cpuUsPerReqLow',
  'shareMin',
  'shareMax',
  'requestsPerBackendConn',
] as const;

function defined(values: (number | undefined)[]): number[] {
  return values.filter((v): v is number => v !== undefined && Number.isFinite(v));
}

export function summarise(rows: { row: string; runs: RunRecord[]; valid: RunFigures[] }[]): RowSummary[] {
  const nginx = rows.find((r) => r.row === 'nginx');
  const nginxByRound = new Map(nginx?.valid.map((f) => [f.round, f]) ?? []);
  const ratio = (f: RunFigures, key: 'rpsHigh' | 'cpuUsPerReqHigh' | 'p99High'): number | undefined => {
    const n = nginxByRound.get(f.round)?.[key];
    const v = f[key];
    return n && v !== undefined ? v / n : undefined;
  };
  return rows.map(({ row, runs, valid }) => {
    const medians: RowSummary['medians'] = {};
    for (const key of FIGURE_KEYS) {
      const m = median(defined(valid.map((f) => f[key])));
      if (m !== undefined) medians[key] = m;
    }
    const vsNginx: RowSummary['vsNginx'] = {};
    const rps = median(defined(valid.map((f) => ratio(f, 'rpsHigh'))));
    const cpu = median(defined(valid.map((f) => ratio(f, 'cpuUsPerReqHigh'))));
    const p99 = median(defined(valid.map((f) => ratio(f, 'p99High'))));
    if (rps !== undefined) vsNginx.rps = rps;
    if (cpu !== undefined) vsNginx.cpuUsPerReq = cpu;
    if (p99 !== undefined) vsNginx.p99High = p99;
    return { row, runs: runs.length, validRuns: valid.length, byRound: valid, medians, vsNginx };
  });
}

// ---- formatting -------------------------------------------------------------------------------

const dash = '–';
const int = (v: number | undefined): string =>
  v === undefined ? dash : Math.round(v).toLocaleString('en-US');
const ms = (v: number | undefined): string => (v === undefined ? dash : v.toFixed(2));
const one = (v: number | undefined): string => (v === undefined ? dash : v.toFixed(1));
const times = (v: number | undefined): string => (v === undefined ? dash : `${v.toFixed(2)}×`);
const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
const kilo = (v: number): string => `${(v / 1000).toFixed(1)}k`;

export interface TableInput {
  summaries: RowSummary[];
  settings: { conns: number; lowConns: number; rounds: number };
  skipped: { row: string; why: string }[];
  problems: { row: string; round: number; text: string }[];
  warnings: { row: string; round: number; text: string }[];
}

export function markdown(input: TableInput): string {
  const { conns: hi, lowConns: lo, rounds } = input.settings;
  const out: string[] = [];
  out.push(
    `| row | rps @c${hi} | × nginx | p50 / p99 ms @c${hi} | proxy CPU µs/req | CPU × nginx | rps @c${lo} | p50 / p99 ms @c${lo} | valid |`,
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const s of input.summaries) {
    const m = s.medians;
    out.push(
      `| ${s.row} | ${int(m.rpsHigh)} | ${times(s.vsNginx.rps)} | ${ms(m.p50High)} / ${ms(m.p99High)} | ${one(m.cpuUsPerReqHigh)} | ${times(s.vsNginx.cpuUsPerReq)} | ${int(m.rpsLow)} | ${ms(m.p50Low)} / ${ms(m.p99Low)} | ${s.validRuns}/${s.runs} |`,
    );
  }
  out.push('');
  out.push(
    `Medians over the valid runs of ${rounds} interleaved round(s); ratios to nginx are medians of per-round ratios.`,
  );
  out.push('');
  out.push(
    `| row | rps @c${hi} by round | proxy CPU µs/req by round | other CPU % by round | proxy core % | load core % | backend share min–max | req / backend conn | p99 @c${hi} × nginx |`,
    '|---|---|---|---|--:|--:|--:|--:|--:|',
  );
  for (const s of input.summaries) {
    const m = s.medians;
    const share = m.shareMin === undefined ? dash : `${pct(m.shareMin)}–${pct(m.shareMax!)}`;
    out.push(
      `| ${s.row} | ${s.byRound.map((f) => kilo(f.rpsHigh)).join(' / ') || dash} | ${s.byRound.map((f) => one(f.cpuUsPerReqHigh)).join(' / ') || dash} | ${s.byRound.map((f) => one(f.otherCpuPct)).join(' / ') || dash} | ${one(m.proxyCorePct)} | ${one(m.loadCorePct)} | ${share} | ${int(m.requestsPerBackendConn)} | ${times(s.vsNginx.p99High)} |`,
    );
  }
  const goals = goalLines(input.summaries, hi);
  if (goals.length) out.push('', ...goals);
  if (input.skipped.length) out.push('', ...input.skipped.map((s) => `* skipped ${s.row}: ${s.why}`));
  if (input.problems.length) {
    out.push('', 'Invalid runs:', ...input.problems.map((p) => `* ${p.row} round ${p.round}: ${p.text}`));
  }
  if (input.warnings.length) {
    out.push('', 'Warnings:', ...input.warnings.map((w) => `* ${w.row} round ${w.round}: ${w.text}`));
  }
  return out.join('\n');
}

/** One line per `ours…` row: the issue-2 goal against nginx. */
export function goalLines(summaries: RowSummary[], conns = 64): string[] {
  return summaries
    .filter((s) => s.row.startsWith('ours'))
    .map((s) => {
      const cpu = s.vsNginx.cpuUsPerReq;
      const p99 = s.vsNginx.p99High;
      if (cpu === undefined || p99 === undefined) return `* goal (${s.row}): no valid nginx pair to compare`;
      const verdict = (v: number, limit: number): string => (v <= limit ? 'met' : 'missed');
      return (
        `* goal (${s.row}): CPU per request ${cpu.toFixed(2)}× nginx (goal ≤ ${GOAL.cpuPerRequest}×: ${verdict(cpu, GOAL.cpuPerRequest)}), ` +
        `p99 @c${conns} ${p99.toFixed(2)}× nginx (goal ≤ ${GOAL.p99AtHighConns}×: ${verdict(p99, GOAL.p99AtHighConns)})`
      );
    });
}
