#!/usr/bin/env node
// The `scaleout` command. Each subcommand lives in src/cli/<name>.ts and registers itself here.
import { Command } from 'commander';
import { registerLb } from './cli/lb.js';
import { registerDemo } from './cli/demo.js';
import { registerConfig } from './cli/config.js';
import { registerDns } from './cli/dns.js';
import { registerDbProxy } from './cli/db-proxy.js';
import { registerDb } from './cli/db.js';
import { registerDashboard } from './cli/dashboard.js';
import { registerDemoApp } from './cli/demo-app.js';
import { registerLoad } from './cli/load.js';
import { registerUp } from './cli/up.js';
import { registerDown } from './cli/down.js';
import { registerScale } from './cli/scale.js';
import { VERSION } from './version.js';

const program = new Command('scaleout')
  .description('A self-hosted scale-out stack: load balancer, DNS and PostgreSQL proxy')
  .version(VERSION)
  .showHelpAfterError();

registerLb(program);
registerDns(program);
registerDbProxy(program);
registerDb(program);
registerDashboard(program);
registerDemo(program);
registerDemoApp(program);
registerLoad(program);
registerConfig(program);
registerUp(program);
registerDown(program);
registerScale(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`scaleout: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
