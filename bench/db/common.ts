// Helpers shared by the db benchmarks (run.ts, sharded.ts): CPU accounting from /proc, the shared
// bench lock, taskset pinning.
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

/** `argv` under `taskset -c cpusList` (empty list: no pinning). */
export const pinned = (cpusList: string, argv: string[]): string[] =>
  cpusList ? ['taskset', '-c', cpusList, ...argv] : argv;

// ------------------------------------------------------------------ /proc CPU accounting

const CLK_TCK = 100;

function procStat(pid: number): { ppid: number; user: number; sys: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields after ")": state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    return {
      ppid: Number(f[1]),
      user: (Number(f[11]) + Number(f[13])) / CLK_TCK,
      sys: (Number(f[12]) + Number(f[14])) / CLK_TCK,
    };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user, system) used by a process and all its live descendants (reaped children are in cutime/cstime). */
export function treeCpu(root: number): { user: number; sys: number } {
  const stats = new Map<number, { ppid: number; user: number; sys: number }>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const s = procStat(pid);
    if (s) stats.set(pid, s);
  }
  const total = { user: 0, sys: 0 };
  const queue = [root];
  while (queue.length) {
    const pid = queue.pop()!;
    const s = stats.get(pid);
    if (!s) continue;
    total.user += s.user;
    total.sys += s.sys;
    for (const [child, cs] of stats) if (cs.ppid === pid) queue.push(child);
  }
  return total;
}

// ------------------------------------------------------------------ the shared bench lock

/**
 * Holds `flock lock` in a child process for the duration of `fn`, so two benchmarks never measure at
 * once. `log` hears about long waits.
 */
export async function withLock<T>(lock: string, fn: () => Promise<T>, log: (s: string) => void): Promise<T> {
  if (lock === 'none') return fn(); // development runs only: figures taken this way are not comparable
  const holder = spawn('flock', [lock, 'sh', '-c', 'echo locked; cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waited = Date.now();
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once('data', () => resolve());
    holder.once('exit', (code) => reject(new Error(`flock exited with ${code}`)));
  });
  if (Date.now() - waited > 1000)
    log(`waited ${((Date.now() - waited) / 1000).toFixed(0)} s for the bench lock`);
  try {
    return await fn();
  } finally {
    holder.stdin!.end();
    await new Promise((r) => holder.once('exit', r));
  }
}

// ------------------------------------------------------------------ one timed pgbench run

const run = promisify(execFile);

/**
 * Runs `cmd` (a pgbench command line) under the bench lock and returns its output (with a "FAILED:"
 * line if it failed or ran past `durationS` + 60 s) and the CPU seconds (total and system) that the
 * process tree of `proxyPid` used meanwhile (0 without a proxy).
 */
export async function timedPgbench(
  cmd: string[],
  durationS: number,
  proxyPid: number | undefined,
  lock: string,
  log: (s: string) => void,
): Promise<{ out: string; cpu: number; sys: number }> {
  const proxyCpu = () => (proxyPid === undefined ? { user: 0, sys: 0 } : treeCpu(proxyPid));
  return withLock(
    lock,
    async () => {
      const cpu0 = proxyCpu();
      const out = await run(cmd[0]!, cmd.slice(1), {
        timeout: (durationS + 60) * 1000,
        maxBuffer: 1 << 24,
      }).then(
        (r) => r.stdout + r.stderr,
        (err: { stdout?: string; stderr?: string; message: string }) =>
          `${err.stdout ?? ''}${err.stderr ?? ''}\nFAILED: ${err.message}`,
      );
      const cpu1 = proxyCpu();
      return { out, cpu: cpu1.user + cpu1.sys - cpu0.user - cpu0.sys, sys: cpu1.sys - cpu0.sys };
    },
    log,
  );
}
