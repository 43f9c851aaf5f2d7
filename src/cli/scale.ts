// `scaleout scale app=N [--data-dir DIR]`: sets the number of app instances of a running topology.
// New instances start, pass their health check and register with every LB (which slow-starts them);
// removed ones are drained by the LBs first, then stopped.
import { InvalidArgumentError, type Command } from 'commander';
import { askSupervisor } from '../topology/up.js';
import type { TopologySnapshot } from '../dashboard/control-plane.js';
import { dataDirFrom } from './down.js';

function tierCount(value: string): { tier: string; count: number } {
  const m = /^([a-z-]+)=(\d+)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected TIER=N, e.g. app=5');
  if (m[1] !== 'app') throw new InvalidArgumentError(`only the app tier scales at run time (got "${m[1]}")`);
  return { tier: m[1], count: Number(m[2]) };
}

export function registerScale(program: Command): void {
  program
    .command('scale')
    .description('set the number of app instances of a running topology (e.g. app=5)')
    .argument('<tier=count>', 'app=N', tierCount)
    .argument('[file]', 'the config file it was started with (for its data dir)')
    .option('--data-dir <dir>', 'the data dir of the running topology (default .scaleout)')
    .action(
      async (
        target: { tier: string; count: number },
        file: string | undefined,
        flags: { dataDir?: string },
      ) => {
        const dataDir = dataDirFrom(file, flags.dataDir);
        const snapshot = (await askSupervisor(
          dataDir,
          'POST',
          '/scale',
          target,
        )) as unknown as TopologySnapshot;
        const apps = snapshot.components.filter((c) => c.kind === 'app');
        console.log(`app instances: ${apps.length}`);
        for (const a of apps)
          console.log(`  ${a.name.padEnd(8)} ${String(a.address).padEnd(16)} ${a.status}`);
      },
    );
}
