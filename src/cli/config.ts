import type { Command } from 'commander';
import { ConfigError } from '../config/load.js';
import { loadConfig } from './lb.js';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('work with scaleout config files');
  config
    .command('check <file>')
    .description('validate a config file; every problem is listed with file:line:column, key and reason')
    .action((file: string) => {
      try {
        const c = loadConfig(file);
        const listeners = Object.keys(c.listeners).length;
        const groups = Object.keys(c.targetGroups).length;
        const targets = Object.values(c.targetGroups).reduce((n, g) => n + g.targets.length, 0);
        const extra = [c.dns ? 'dns' : '', c.database ? 'database' : '', c.admin ? 'admin' : ''].filter(
          Boolean,
        );
        console.log(
          `${file}: OK (${listeners} listeners, ${groups} target groups, ${targets} targets${extra.length ? `, ${extra.join(', ')}` : ''})`,
        );
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(err.message);
        console.error(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`);
        process.exitCode = 1;
      }
    });
}
