// One component of a topology as an OS process: spawned in its own process group, output appended to
// a log file, status kept for the dashboard. The child gets a parent-death signal (util-linux
// `setpriv --pdeathsig`, i.e. prctl(PR_SET_PDEATHSIG)), so even a SIGKILLed supervisor leaves nothing
// running: the kernel signals every child the moment its parent dies. setpriv also switches to an
// unprivileged user for PostgreSQL, which refuses to run as root. Without setpriv (not Linux) the
// stale-process sweep of the next `up`/`down` is the fallback (src/topology/stale.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { appendFileSync, closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { ComponentKind, ComponentStatus } from '../dashboard/control-plane.js';

let setprivPath: string | null | undefined;

/** Path of setpriv if it supports --pdeathsig, else null. */
export function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
    const r = spawnSync(p, ['--help'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.includes('--pdeathsig')) return (setprivPath = p);
  }
  return (setprivPath = null);
}

export interface ProcessSpec {
  name: string;
  kind: ComponentKind;
  command: string;
  args: string[];
  env?: Record<string, string>;
  logFile: string;
  /** Run as this OS user (only when we are root). */
  user?: string;
  /** What the child gets when the supervisor dies: SIGTERM for our own processes, SIGQUIT for postgres. */
  deathSignal: 'SIGTERM' | 'SIGQUIT' | 'SIGKILL';
  /** The signal for an orderly stop (postgres: SIGINT = fast shutdown). */
  stopSignal: NodeJS.Signals;
  /** Marks the process as ours in /proc/PID/environ, for the stale sweep. */
  marker: { key: string; value: string };
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess extends EventEmitter<{
  exit: [ExitInfo & { expected: boolean }];
  status: [ComponentStatus];
}> {
  status: ComponentStatus = 'stopped';
  since = Date.now();
  restarts = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private stopping = false;
  private starts = 0;

  constructor(readonly spec: ProcessSpec) {
    super();
  }

  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  private setStatus(status: ComponentStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.since = Date.now();
    this.emit('status', status);
  }

  start(): void {
    if (this.running) throw new Error(`${this.spec.name} is already running (pid ${this.pid})`);
    if (this.starts++ > 0) this.restarts++;
    const { spec } = this;
    const log = openSync(spec.logFile, 'a');
    writeSync(log, `\n--- ${new Date().toISOString()} starting ${spec.command} ${spec.args.join(' ')}\n`);
    const setpriv = findSetpriv();
    let command = spec.command;
    let args = spec.args;
    const asUser = spec.user && process.getuid?.() === 0 ? spec.user : undefined;
    if (setpriv) {
      const userArgs = asUser ? [`--reuid=${asUser}`, `--regid=${asUser}`, '--init-groups'] : [];
      args = ['--pdeathsig', spec.deathSignal, ...userArgs, '--', command, ...args];
      command = setpriv;
    } else if (asUser) {
      args = ['-u', asUser, '--', command, ...args];
      command = 'runuser';
    }
    this.stopping = false;
    this.setStatus('starting');
    const child = spawn(command, args, {
      // Our own process group: Ctrl-C in the terminal reaches only the supervisor, which stops the
      // components in order; a SIGKILL of the group takes a component's workers/backends with it.
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, ...spec.env, [spec.marker.key]: spec.marker.value },
    });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const expected = this.stopping;
        this.setStatus(expected ? 'stopped' : 'crashed');
        resolve({ code, signal });
        this.emit('exit', { code, signal, expected });
      });
      child.once('error', (err) => {
        appendLine(spec.logFile, `spawn failed: ${err.message}`);
        // 'exit' may not follow a failed spawn.
        if (child.pid === undefined) {
          this.setStatus('crashed');
          resolve({ code: null, signal: null });
          this.emit('exit', { code: null, signal: null, expected: false });
        }
      });
    });
  }

  /** Marks a started process as serving (after its readiness check). */
  markRunning(): void {
    if (this.running) this.setStatus('running');
  }

  /** Orderly stop: stopSignal, then SIGKILL of the whole group after timeoutMs. */
  async stop(timeoutMs: number): Promise<void> {
    const pid = this.pid;
    if (!pid || !this.exited) return;
    this.stopping = true;
    this.setStatus('stopping');
    signal(pid, this.spec.stopSignal);
    const timer = setTimeout(() => signal(-pid, 'SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    // Anything left in the group (a worker, a backend) goes too.
    signal(-pid, 'SIGKILL');
  }

  /** Chaos: SIGKILL to the whole process group, as a crash would. */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (!pid || !this.exited) return;
    signal(-pid, 'SIGKILL');
    await this.exited;
  }

  /** Resolves when the process exits (at once if it is not running). */
  async waitExit(): Promise<ExitInfo> {
    return this.exited ?? { code: null, signal: null };
  }

  /** The last lines of its log, for error messages. */
  logTail(lines = 15): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function appendLine(file: string, line: string): void {
  try {
    appendFileSync(file, line + '\n');
  } catch {
    /* logging is best effort */
  }
}
