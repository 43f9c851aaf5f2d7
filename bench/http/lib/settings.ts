import { resolve } from 'node:path';

/** Every knob of the benchmark, read once from the environment (see README.md). */
export interface Settings {
  rounds: number;
  conns: number;
  duration: number;
  lowConns: number;
  lowDuration: number;
  warmup: number;
  lbCpu: string;
  loadCpu: string;
  rows: string[];
  lockPath: string;
  outJson: string;
  cli: string;
  oursArgs: string[];
  /** Node.js flags for our LB rows (OURS_NODE_FLAGS), e.g. --single-threaded-gc for an A/B */
  oursNodeFlags: string[];
  keepWork: boolean;
  /** seconds to wait before each block for the box to be quiet (0 = don't) */
  quietWait: number;
  /** box-wide busy CPU, in % of one core, that counts as quiet */
  quietPct: number;
}

export const DEFAULT_ROWS = ['none', 'nginx', 'haproxy', 'ours'];

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a whole number of at least 1, got "${text}"`);
  }
  return value;
}

function cpuList(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const text = env[name] ?? fallback;
  if (!/^\d+([-,]\d+)*$/.test(text)) throw new Error(`${name} must be a CPU list for taskset, e.g. 1 or 0-1`);
  return text;
}

export function readSettings(env: NodeJS.ProcessEnv, repoRoot: string): Settings {
  const rows = (env.ROWS ?? '').split(/[\s,]+/).filter(Boolean);
  return {
    rounds: positiveInt(env, 'ROUNDS', 3),
    conns: positiveInt(env, 'CONNS', 64),
    duration: positiveInt(env, 'DURATION', 10),
    lowConns: positiveInt(env, 'LOW_CONNS', 8),
    lowDuration: positiveInt(env, 'LOW_DURATION', 5),
    warmup: positiveInt(env, 'WARMUP', 2),
    lbCpu: cpuList(env, 'LB_CPU', '1'),
    loadCpu: cpuList(env, 'LOAD_CPU', '0'),
    rows: rows.length > 0 ? rows : DEFAULT_ROWS,
    lockPath: env.BENCH_LOCK ?? '/tmp/scaleout-bench.lock',
    outJson: resolve(env.OUT_JSON ?? resolve(repoRoot, 'bench/http/results/latest.json')),
    cli: resolve(env.SCALEOUT_CLI ?? resolve(repoRoot, 'dist/cli.js')),
    oursArgs: (env.OURS_ARGS ?? '').split(/\s+/).filter(Boolean),
    oursNodeFlags: (env.OURS_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
    keepWork: Boolean(env.KEEP_WORK),
    quietWait: env.QUIET_WAIT === '0' ? 0 : positiveInt(env, 'QUIET_WAIT', 15),
    quietPct: positiveInt(env, 'QUIET_PCT', 25),
  };
}
