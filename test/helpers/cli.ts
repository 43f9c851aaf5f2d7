// Spawns the built `scaleout` CLI (dist/cli.js) and waits for a line of its output.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(
  (p) => spawnSync(p, ['--help'], { encoding: 'utf8' }).stdout?.includes('--pdeathsig') ?? false,
);

/**
 * The command and arguments that run `command args` so that it gets SIGKILL when this process dies
 * (`setpriv --pdeathsig`, where Linux has it): a test file killed by the runner's timeout, before its
 * `after` hooks run, then leaves no process behind. setpriv execs the command, so the pid is the same.
 */
export function dyingWithUs(command: string, args: string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', command, ...args]] : [command, args];
}

export interface RunningCli {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first match of `pattern` in stdout+stderr, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startCli(args: string[], env: Record<string, string> = {}): RunningCli {
  const [command, commandArgs] = dyingWithUs(process.execPath, [CLI, ...args]);
  const child = spawn(command, commandArgs, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (c: Buffer) => {
    out += c.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const done = (fn: () => void) => {
          waiters.delete(check);
          clearTimeout(timer);
          child.off('exit', onExit);
          fn();
        };
        const check = () => {
          const m = out.match(pattern);
          if (m) done(() => resolve(m));
        };
        const onExit = () =>
          done(() => reject(new Error(`process exited before ${pattern}; output:\n${out}`)));
        const timer = setTimeout(
          () => done(() => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${out}`))),
          timeoutMs,
        );
        waiters.add(check);
        child.on('exit', onExit);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  const cli = startCli(args);
  return cli.stop('SIGCONT').then(() => ({ code: cli.child.exitCode, output: cli.output() }));
}
