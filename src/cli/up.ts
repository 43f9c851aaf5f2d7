// `scaleout up [FILE] [--preset NAME] [--data-dir DIR] [--detach]`: the whole topology on this machine.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { ConfigError } from '../config/load.js';
import { PRESETS } from '../topology/presets.js';
import { PreflightError } from '../topology/preflight.js';
import { resolveTopology } from '../topology/resolve.js';
import { sweepStale } from '../topology/stale.js';
import { summary, up } from '../topology/up.js';

interface UpFlags {
  preset?: string;
  dataDir?: string;
  detach?: boolean;
}

/** Set in the environment of the background supervisor that `--detach` starts. */
const DETACHED_CHILD = 'SCALEOUT_UP_DETACHED';

const stamp = () => new Date().toISOString().slice(11, 19);

/** Sends a message to the `up --detach` that started us, and waits until it is written. */
function tellParent(message: Record<string, unknown>): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

function describeFailure(err: unknown): string {
  if (err instanceof PreflightError) return `cannot start; nothing was started:\n${bullets(err.problems)}`;
  return err instanceof Error ? err.message : String(err);
}

const bullets = (lines: string[]) => lines.map((p) => `  - ${p}`).join('\n');

export function failUp(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(`scaleout up: invalid topology\n${err.message}`);
    process.exit(2);
  }
  if (err instanceof PreflightError) {
    console.error(
      `scaleout up: cannot start; nothing was started:\n${err.problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    process.exit(1);
  }
  console.error(
    `scaleout up: ${err instanceof Error ? err.message : String(err)}\n(everything started was stopped)`,
  );
  process.exit(1);
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run the whole topology on this machine: PostgreSQL, db-proxy, apps, LBs, DNS, dashboard')
    .argument('[file]', 'scaleout config file with a topology: section')
    .addOption(new Option('--preset <name>', 'a scale-out step (default balanced)').choices([...PRESETS]))
    .option('--data-dir <dir>', 'PostgreSQL data, generated configs, logs and pids (default .scaleout)')
    .option('--detach', 'run in the background; stop with `scaleout down`')
    .action(async (file: string | undefined, flags: UpFlags) => {
      let resolved;
      try {
        resolved = resolveTopology({ file, preset: flags.preset, dataDir: flags.dataDir });
      } catch (err) {
        failUp(err);
      }
      if (flags.detach) return detach(resolve(resolved.topology.dataDir));
      const notifyParent = process.env[DETACHED_CHILD] === '1' && typeof process.send === 'function';
      const say = (line: string) => console.log(`${stamp()} ${line}`);
      let running;
      try {
        running = await up({ ...resolved, say });
      } catch (err) {
        if (notifyParent) await tellParent({ error: describeFailure(err) });
        failUp(err);
      }
      const text = summary(running);
      console.log(text);
      if (notifyParent) {
        await tellParent({ ready: text, pid: process.pid });
        process.disconnect();
      } else {
        console.log('Ctrl-C stops everything.');
      }
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signals++ > 0) {
          // A second Ctrl-C: do not wait for drains.
          console.log(`${stamp()} ${signal} again: killing everything now`);
          void sweepStale(running.plan.dataDir).finally(() => process.exit(1));
          return;
        }
        console.log(`${stamp()} ${signal}: stopping (DNS, LBs drain, apps, db-proxy, PostgreSQL)`);
        void running.stop().then(() => {
          console.log(`${stamp()} stopped; data kept in ${running.plan.dataDir}`);
          process.exit(0);
        });
      };
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
    });
}

/** Starts this command again in the background and returns once it serves (or failed). */
async function detach(dataDir: string): Promise<void> {
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, 'supervisor.log');
  const log = openSync(logFile, 'a');
  const args = process.argv.slice(1).filter((a) => a !== '--detach');
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
    env: { ...process.env, [DETACHED_CHILD]: '1' },
  });
  const outcome = await new Promise<{ ready?: string; error?: string; pid?: number }>((done) => {
    child.once('message', (m) => done(m as { ready?: string; error?: string }));
    child.once('exit', (code) => done({ error: `the supervisor exited (code ${code}); see ${logFile}` }));
  });
  if (outcome.error) {
    console.error(`scaleout up: ${outcome.error}`);
    process.exit(1);
  }
  console.log(outcome.ready);
  console.log(`Running in the background (supervisor pid ${child.pid}, log ${logFile}).`);
  console.log(
    `Stop it with: scaleout down${dataDir === resolve('.scaleout') ? '' : ` --data-dir ${dataDir}`}`,
  );
  child.unref();
  child.disconnect();
  process.exit(0);
}
