/**
 * Starting, measuring and stopping the processes of a run. Every process started here is tracked, so
 * an exit for any reason (end, failure, Ctrl-C) can stop what is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const running = new Set<ChildProcess>();

export interface StartOptions {
  /** taskset CPU list the process (and everything it forks) is pinned to */
  cpus: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
}

/** Start `command args…` pinned with taskset (which execs, so the PID is the command's own). */
export function startPinned(command: string, args: string[], opts: StartOptions): ChildProcess {
  const log = openSync(opts.logFile, 'a');
  try {
    const child = spawn('taskset', ['-c', opts.cpus, command, ...args], {
      stdio: ['ignore', log, log],
      env: opts.env ?? process.env,
    });
    running.add(child);
    child.on('exit', () => running.delete(child));
    child.on('error', () => running.delete(child));
    return child;
  } finally {
    closeSync(log);
  }
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** The PIDs of a process tree, root first, from /proc/PID/task/TID/children. */
export function treePids(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // already gone
    }
    out.push(pid);
    for (const tid of tids) {
      try {
        const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (kids) queue.push(...kids.split(/\s+/).map(Number));
      } catch {
        // thread ended meanwhile
      }
    }
  }
  return out;
}

/** utime+stime in clock ticks of one process (all its threads), or 0 if it is gone. */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": comm may hold spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the full line)
  } catch {
    return 0;
  }
}

/** CPU time in clock ticks used so far by a whole process tree. */
export function treeTicks(root: number | undefined): number {
  if (root === undefined) return 0;
  return treePids(root).reduce((sum, pid) => sum + processTicks(pid), 0);
}

/** Busy and total jiffies per CPU, from /proc/stat (busy excludes idle and iowait). */
export type CpuTimes = Record<string, { busy: number; total: number }>;

export function cpuTimes(): CpuTimes {
  const out: CpuTimes = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out[m[1]!] = { busy: total - v[3]! - v[4]!, total };
  }
  return out;
}

function aliveNotZombie(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** SIGTERM the whole tree, then SIGKILL whatever of those same PIDs is left after `graceMs`. */
export async function stopTree(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.pid === undefined || !isRunning(child)) return;
  const pids = treePids(child.pid);
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(aliveNotZombie)) await sleep(50);
  for (const pid of pids) if (aliveNotZombie(pid)) signal(pid, 'SIGKILL');
  if (isRunning(child)) await exited;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Last resort at exit: kill every tracked tree at once, synchronously. */
export function killAllNow(): void {
  for (const child of running) {
    if (child.pid !== undefined) for (const pid of treePids(child.pid)) signal(pid, 'SIGKILL');
  }
}

export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => done(true)));
  });
}

export async function waitPortFree(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portFree(port))) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Run a command to completion and return its stdout+stderr (for versions and git facts). */
export async function capture(
  command: string,
  args: string[],
): Promise<{ code: number | null; text: string }> {
  return new Promise((done) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', (err) => done({ code: null, text: String(err) }));
    child.on('close', (code) => done({ code, text }));
  });
}

/** Run a pinned command to completion (tracked, so Ctrl-C stops it too) and return its output. */
export async function runPinned(
  command: string,
  args: string[],
  cpus: string,
): Promise<{ code: number | null; text: string }> {
  return new Promise((done) => {
    const child = spawn('taskset', ['-c', cpus, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', (err) => {
      running.delete(child);
      done({ code: null, text: String(err) });
    });
    child.on('close', (code) => {
      running.delete(child);
      done({ code, text });
    });
  });
}
