#!/usr/bin/env node
// The `scaleout` command. Each subcommand lives in src/cli/<name>.ts and registers itself here.
// Only the subcommand being run is loaded (each pulls in its own data plane), so that every process
// `scaleout up` starts, and every short command, starts fast; help and unknown names load them all.
import { Command } from 'commander';
import { VERSION } from './version.js';

type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  lb: async () => (await import('./cli/lb.js')).registerLb,
  dns: async () => (await import('./cli/dns.js')).registerDns,
  'db-proxy': async () => (await import('./cli/db-proxy.js')).registerDbProxy,
  db: async () => (await import('./cli/db.js')).registerDb,
  dashboard: async () => (await import('./cli/dashboard.js')).registerDashboard,
  demo: async () => (await import('./cli/demo.js')).registerDemo,
  'demo-app': async () => (await import('./cli/demo-app.js')).registerDemoApp,
  load: async () => (await import('./cli/load.js')).registerLoad,
  config: async () => (await import('./cli/config.js')).registerConfig,
  up: async () => (await import('./cli/up.js')).registerUp,
  down: async () => (await import('./cli/down.js')).registerDown,
  scale: async () => (await import('./cli/scale.js')).registerScale,
};

async function main(): Promise<void> {
  const program = new Command('scaleout')
    .description(
      'A self-hosted scale-out stack: load balancer, DNS, PostgreSQL proxy, and the whole topology on one machine (up)',
    )
    .version(VERSION)
    .showHelpAfterError();
  const name = process.argv[2];
  const wanted = name !== undefined && name in COMMANDS ? [name] : Object.keys(COMMANDS);
  for (const register of await Promise.all(wanted.map((n) => COMMANDS[n]!()))) register(program);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  console.error(`scaleout: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
