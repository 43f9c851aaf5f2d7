/**
 * One block: one row in one round, run while holding the bench lock. Start the proxy, check it answers
 * and reaches every backend, warm up, then the measured saturating run (c64) and the moderate run (c8),
 * reading the proxy's CPU time around each, then stop it.
 */
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Backends, type BackendCount } from './backends.js';
import { BACKEND_PORTS, LISTEN } from './configs.js';
import { get, waitFor200 } from './http-probe.js';
import {
  cpuTimes,
  isRunning,
  startPinned,
  stopTree,
  treeTicks,
  waitPortFree,
  type CpuTimes,
} from './proc.js';
import type { RowContext, RowDef } from './rows.js';
import type { Settings } from './settings.js';
import { runWrk, type WrkResult } from './wrk.js';

export const CLOCK_TICKS_PER_SECOND = 100; // checked against `getconf CLK_TCK` at start

export interface Phase {
  conns: number;
  wrk: WrkResult | null;
  wrkError?: string;
  wallSeconds: number;
  proxyCpuSeconds: number;
  backendCpuSeconds: number;
  wrkCpuSeconds: number | undefined;
  /** busy % of each CPU during the run (100 = one full core) */
  cpuBusyPct: Record<string, number>;
  /**
   * Busy CPU on the whole box not charged to the proxy, the backends or wrk, in % of one core: other
   * work on the machine (and kernel time such as loopback softirq). High values mean a disturbed run.
   */
  otherCpuPct: number | undefined;
}

export interface RunRecord {
  row: string;
  round: number;
  /** false for the direct reference row (no proxy in the path) */
  proxied: boolean;
  status: 'ok' | 'start_failed' | 'port_busy' | 'proxy_died';
  lockWaitSeconds?: number;
  /** X-Backend of the probe requests sent before warm-up */
  probeBackends: string[];
  high?: Phase;
  /** per-backend counts during the measured saturating run */
  backends?: BackendCount[];
  low?: Phase;
  proxyLogFile?: string;
  /** the quiet check before the block: seconds waited and box-wide busy % of the last 1 s sample */
  quiet?: { waitedSeconds: number; busyPct: number };
}

/**
 * Builds and tests of other people share this box and are not held off by the bench lock. Before a
 * block, wait (up to `maxSeconds`) for a 1 s sample in which the whole box is busier than
 * `thresholdPct` % of one core at most; the run goes ahead anyway after that, and the sample is kept.
 */
export async function waitForQuiet(
  maxSeconds: number,
  thresholdPct: number,
): Promise<{ waitedSeconds: number; busyPct: number }> {
  const start = performance.now();
  let busy = Infinity;
  do {
    const before = cpuTimes();
    await sleep(1000);
    busy = Object.values(busyPct(before, cpuTimes())).reduce((a, b) => a + b, 0);
  } while (busy > thresholdPct && performance.now() - start < maxSeconds * 1000);
  return { waitedSeconds: Math.round((performance.now() - start) / 100) / 10, busyPct: busy };
}

async function measured(
  conns: number,
  seconds: number,
  url: string,
  settings: Settings,
  proxy: ChildProcess | undefined,
  backends: Backends,
): Promise<Phase> {
  const before = {
    t: performance.now(),
    proxy: treeTicks(proxy?.pid),
    back: treeTicks(backends.process.pid),
    cpu: cpuTimes(),
  };
  const run = await runWrk({ conns, seconds, url, cpus: settings.loadCpu });
  const after = {
    t: performance.now(),
    proxy: treeTicks(proxy?.pid),
    back: treeTicks(backends.process.pid),
    cpu: cpuTimes(),
  };
  const wallSeconds = (after.t - before.t) / 1000;
  const proxyCpuSeconds = (after.proxy - before.proxy) / CLOCK_TICKS_PER_SECOND;
  const backendCpuSeconds = (after.back - before.back) / CLOCK_TICKS_PER_SECOND;
  const cpuBusy = busyPct(before.cpu, after.cpu);
  const boxBusyPct = Object.values(cpuBusy).reduce((a, b) => a + b, 0);
  const chargedPct =
    run.wrkCpuSeconds === undefined
      ? undefined
      : (100 * (proxyCpuSeconds + backendCpuSeconds + run.wrkCpuSeconds)) / wallSeconds;
  return {
    conns,
    wrk: run.result,
    ...(run.error ? { wrkError: run.error } : {}),
    wallSeconds,
    proxyCpuSeconds,
    backendCpuSeconds,
    wrkCpuSeconds: run.wrkCpuSeconds,
    cpuBusyPct: cpuBusy,
    otherCpuPct: chargedPct === undefined ? undefined : Math.round(10 * (boxBusyPct - chargedPct)) / 10,
  };
}

function busyPct(before: CpuTimes, after: CpuTimes): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cpu, a] of Object.entries(after)) {
    const b = before[cpu];
    if (b && a.total > b.total) out[cpu] = Math.round((1000 * (a.busy - b.busy)) / (a.total - b.total)) / 10;
  }
  return out;
}

/** Probe until every backend has answered at least once (a fresh LB may still be health checking). */
async function probeSpread(url: string, timeoutMs: number): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  do {
    for (let i = 0; i < BACKEND_PORTS.length * 2; i++) {
      try {
        seen.push((await get(url)).backend ?? '?');
      } catch {
        seen.push('error');
      }
    }
  } while (BACKEND_PORTS.some((p) => !seen.includes(String(p))) && Date.now() < deadline);
  return seen;
}

export async function runBlock(
  row: RowDef,
  round: number,
  ctx: RowContext,
  settings: Settings,
  backends: Backends,
): Promise<RunRecord> {
  const launch = row.launch(ctx);
  const record: RunRecord = {
    row: row.name,
    round,
    proxied: launch !== null,
    status: 'ok',
    probeBackends: [],
  };
  let proxy: ChildProcess | undefined;
  let url = `http://127.0.0.1:${BACKEND_PORTS[0]}/`;
  backends.truncateLogs();
  if (settings.quietWait > 0) record.quiet = await waitForQuiet(settings.quietWait, settings.quietPct);
  try {
    if (launch) {
      url = `http://${LISTEN.host}:${LISTEN.port}/`;
      if (!(await waitPortFree(LISTEN.port, 5000))) return { ...record, status: 'port_busy' };
      const dir = `${ctx.work}/runs`;
      mkdirSync(dir, { recursive: true });
      record.proxyLogFile = `${dir}/r${round}-${row.name}.log`;
      proxy = startPinned(launch.command, launch.args, {
        cpus: launch.cpus ?? settings.lbCpu,
        logFile: record.proxyLogFile,
        ...(launch.env ? { env: launch.env } : {}),
      });
      const p = proxy;
      if (!(await waitFor200(url, 30_000, () => isRunning(p)))) return { ...record, status: 'start_failed' };
      record.probeBackends = await probeSpread(url, 10_000);
    }

    await runWrk({ conns: settings.conns, seconds: settings.warmup, url, cpus: settings.loadCpu });
    await backends.flushLogs();
    const offsets = backends.logSizes();
    record.high = await measured(settings.conns, settings.duration, url, settings, proxy, backends);
    await backends.flushLogs();
    record.backends = backends.countSince(offsets);

    await runWrk({ conns: settings.lowConns, seconds: settings.warmup, url, cpus: settings.loadCpu });
    record.low = await measured(settings.lowConns, settings.lowDuration, url, settings, proxy, backends);

    if (proxy && !isRunning(proxy)) record.status = 'proxy_died';
    return record;
  } finally {
    if (proxy) {
      await stopTree(proxy);
      await waitPortFree(LISTEN.port, 5000);
    }
  }
}
