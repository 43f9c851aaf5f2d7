// What runs from a data dir, recorded in DATA/run/state.json, and the sweep that stops leftovers: a
// supervisor killed with SIGKILL on a system without setpriv, or a postmaster whose data dir is ours.
// A pid is only signalled when /proc/PID/environ carries our marker with this data dir, so a reused
// pid belonging to someone else is never touched.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPostmasterPid } from './postgres.js';

export const MARKER_KEY = 'SCALEOUT_TOPOLOGY';

export interface RunState {
  supervisorPid?: number;
  /** Component name → pid (the process-group leader). */
  components: Record<string, number>;
}

export const runDir = (dataDir: string) => join(dataDir, 'run');
const stateFile = (dataDir: string) => join(runDir(dataDir), 'state.json');
export const controlSocket = (dataDir: string) => join(runDir(dataDir), 'control.sock');

export function readRunState(dataDir: string): RunState {
  try {
    const s = JSON.parse(readFileSync(stateFile(dataDir), 'utf8')) as RunState;
    return { supervisorPid: s.supervisorPid, components: s.components ?? {} };
  } catch {
    return { components: {} };
  }
}

export function writeRunState(dataDir: string, state: RunState): void {
  mkdirSync(runDir(dataDir), { recursive: true });
  const tmp = `${stateFile(dataDir)}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2));
  renameSync(tmp, stateFile(dataDir));
}

/** Whether pid is alive and was started for this data dir (by our marker in its environment). */
export function isOurs(pid: number, dataDir: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
    return env.includes(`${MARKER_KEY}=${dataDir}`);
  } catch {
    return false;
  }
}

/** Alive and not a zombie waiting to be reaped. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return existsSync('/proc/self') ? false : true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
}

/** The pid of a live supervisor for this data dir (a `scaleout up` process), if one runs. */
export function liveSupervisor(dataDir: string): number | undefined {
  const pid = readRunState(dataDir).supervisorPid;
  if (!pid || pid === process.pid || !isAlive(pid)) return undefined;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    return argv.includes('up') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Postmaster data dirs under DATA/pg. */
function pgDataDirs(dataDir: string): string[] {
  const root = join(dataDir, 'pg');
  if (!existsSync(root)) return [];
  return readdirSync(root).map((d) => join(root, d));
}

/**
 * Stops every process recorded for this data dir, and every postmaster running from one of its
 * PostgreSQL directories, with SIGKILL to their process groups. Returns what it stopped.
 */
export async function sweepStale(dataDir: string): Promise<string[]> {
  const victims = new Map<number, string>();
  // A supervisor still alive here is one `down` gave up on, or a test's leftover: it goes first.
  const supervisor = liveSupervisor(dataDir);
  if (supervisor) victims.set(supervisor, 'supervisor');
  for (const [name, pid] of Object.entries(readRunState(dataDir).components)) {
    if (isOurs(pid, dataDir)) victims.set(pid, name);
  }
  for (const dir of pgDataDirs(dataDir)) {
    const pid = readPostmasterPid(dir);
    if (pid && isOurs(pid, dataDir)) victims.set(pid, `postmaster of ${dir}`);
  }
  for (const pid of victims.keys()) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone, or not a group leader */
      }
    }
  }
  const deadline = Date.now() + 10_000;
  while ([...victims.keys()].some(isAlive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return [...victims].map(([pid, name]) => `${name} (pid ${pid})`);
}
