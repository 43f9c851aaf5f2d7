// Measures each `scaleout up` preset (docs/scale-out-steps.md): starts it in the background, runs the
// load generator at fixed rates against it, and reports latency and the CPU each tier spent per
// request (from /proc, summed over each component's process group: an app's process, a postmaster
// and its backends). Not a test:
//
//   npm run bench:presets -- [PRESET …] [--rates 250,500,1000] [--duration 15s]
//
// Each measured block holds /tmp/scaleout-bench.lock so two benchmarks never measure at once.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseDuration } from '../../src/core/net.js';
import type { ComponentKind } from '../../src/dashboard/control-plane.js';
import { runLoad, type LoadResult } from '../../src/loadgen/index.js';
import { PRESETS } from '../../src/topology/presets.js';
import { CLI, topologyStatus } from '../../test/e2e/helpers.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : undefined;
};
const rates = (flag('--rates') ?? '250,500,1000').split(',').map(Number);
const durationMs = parseDuration(flag('--duration') ?? '15s')!;
const presets = args.length ? args : [...PRESETS];
const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

/**
 * CPU ticks (user + system, with reaped children) of a component: its process group, and its direct
 * children (PostgreSQL backends call setsid(), so they leave the postmaster's group).
 */
function groupTicks(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the comm: state(0) ppid(1) pgrp(2) … utime(11) stime(12) cutime(13) cstime(14)
      if (Number(f[2]) === pgid || Number(f[1]) === pgid)
        ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      /* exited */
    }
  }
  return ticks;
}

async function tierTicks(dataDir: string): Promise<Map<ComponentKind, number>> {
  const out = new Map<ComponentKind, number>();
  for (const c of (await topologyStatus(dataDir)).components) {
    if (c.pid) out.set(c.kind, (out.get(c.kind) ?? 0) + groupTicks(c.pid));
  }
  return out;
}

/** Holds the shared benchmark lock until release() is called. */
async function benchLock(): Promise<() => void> {
  const holder = spawn('flock', ['/tmp/scaleout-bench.lock', 'sh', '-c', 'echo locked; cat'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  return () => holder.stdin.end();
}

const TIERS: ComponentKind[] = ['lb', 'app', 'db-proxy', 'postgres', 'dns'];
const rows: string[] = [];
const idle: string[] = [];

for (const preset of presets) {
  const dataDir = `/tmp/scaleout-measure/${preset}`;
  const up = spawnSync(process.execPath, [CLI, 'up', '--preset', preset, '--data-dir', dataDir, '--detach'], {
    encoding: 'utf8',
  });
  if (up.status !== 0) {
    console.error(`${preset}: up failed\n${up.stdout}${up.stderr}`);
    continue;
  }
  const url = preset === 'single' ? 'http://127.0.0.1:3001/' : 'http://127.0.0.2:8080/';
  try {
    await runLoad({ url, rate: 100, durationMs: 5000, mix: { read: 90, write: 10 } }); // warm-up
    // Idle: what the topology costs with no requests (health checks, lag checks, dashboard polling).
    const idleBefore = await tierTicks(dataDir);
    await new Promise((r) => setTimeout(r, durationMs));
    const idleAfter = await tierTicks(dataDir);
    const idleMsPerS = (kind: ComponentKind) =>
      idleBefore.has(kind)
        ? ((((idleAfter.get(kind) ?? 0) - idleBefore.get(kind)!) * TICK_MS) / (durationMs / 1000)).toFixed(0)
        : '–';
    idle.push(`| ${preset} | ${TIERS.map(idleMsPerS).join(' | ')} |`);
    for (const rate of rates) {
      const release = await benchLock();
      let result: LoadResult;
      let before: Map<ComponentKind, number>;
      let after: Map<ComponentKind, number>;
      const load = loadavg()[0]!.toFixed(1);
      try {
        before = await tierTicks(dataDir);
        result = await runLoad({ url, rate, durationMs, mix: { read: 90, write: 10 } });
        after = await tierTicks(dataDir);
      } finally {
        release();
      }
      const perRequest = (kind: ComponentKind) =>
        before.has(kind)
          ? ((((after.get(kind) ?? 0) - before.get(kind)!) * TICK_MS * 1000) / result.sent).toFixed(0)
          : '–';
      const total = TIERS.reduce((sum, k) => sum + ((after.get(k) ?? 0) - (before.get(k) ?? 0)), 0);
      const row = [
        preset,
        rate,
        result.achievedRate.toFixed(0),
        result.latency.p50.toFixed(1),
        result.latency.p99.toFixed(1),
        result.failed,
        ...TIERS.map(perRequest),
        ((total * TICK_MS * 1000) / result.sent).toFixed(0),
        load,
      ];
      rows.push(`| ${row.join(' | ')} |`);
      console.log(rows.at(-1));
    }
  } finally {
    spawnSync(process.execPath, [CLI, 'down', '--data-dir', dataDir], { encoding: 'utf8' });
  }
}

console.log(
  `\n${cpus().length} CPUs (${cpus()[0]?.model}); CPU in µs per request; load = 1-min load average at the start`,
);
console.log(
  `| preset | rate/s | achieved/s | p50 ms | p99 ms | failed | ${TIERS.map((t) => `${t} µs`).join(' | ')} | total µs | load |`,
);
console.log(`|${'---|'.repeat(8 + TIERS.length)}`);
for (const r of rows) console.log(r);

console.log('\nIdle CPU, ms per second (no load):');
console.log(`| preset | ${TIERS.join(' | ')} |`);
console.log(`|${'---|'.repeat(1 + TIERS.length)}`);
for (const r of idle) console.log(r);
