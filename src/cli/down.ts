// `scaleout down [FILE] [--data-dir DIR]`: stops a topology started by `scaleout up` (usually with
// --detach), found by its data dir, then stops anything an earlier crash may have left behind.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { resolveTopology } from '../topology/resolve.js';
import { isAlive, liveSupervisor, sweepStale } from '../topology/stale.js';
import { failUp } from './up.js';
import { duration } from './options.js';

interface DownFlags {
  dataDir?: string;
  timeout?: number;
}

/** The data dir from --data-dir, else the file's topology.dataDir, else .scaleout. */
export function dataDirFrom(file: string | undefined, dataDir: string | undefined): string {
  if (dataDir) return resolve(dataDir);
  if (!file) return resolve('.scaleout');
  try {
    return resolve(resolveTopology({ file }).topology.dataDir);
  } catch (err) {
    failUp(err);
  }
}

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('stop a topology started with `scaleout up --detach` (and any leftovers of a crash)')
    .argument('[file]', 'the config file it was started with (for its data dir)')
    .option('--data-dir <dir>', 'its data dir (default .scaleout)')
    .option('--timeout <duration>', 'how long to wait for an orderly stop (default 2m)', duration)
    .action(async (file: string | undefined, flags: DownFlags) => {
      const dataDir = dataDirFrom(file, flags.dataDir);
      const pid = liveSupervisor(dataDir);
      if (pid) {
        console.log(`stopping the topology of ${dataDir} (supervisor pid ${pid}) …`);
        process.kill(pid, 'SIGTERM');
        const timeout = flags.timeout ?? 120_000;
        const deadline = Date.now() + timeout;
        while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        if (isAlive(pid)) {
          console.log(`the supervisor did not stop within ${timeout} ms: killing it and its components`);
          process.kill(pid, 'SIGKILL');
        }
      }
      const leftovers = await sweepStale(dataDir);
      if (leftovers.length) console.log(`stopped leftovers: ${leftovers.join(', ')}`);
      if (!pid && !leftovers.length) console.log(`nothing runs from ${dataDir}`);
      else console.log('stopped');
    });
}
