// `scaleout dashboard`: the live dashboard over components running elsewhere (one per host, or started
// by hand), found by their admin URLs. Read-only for processes; drain/disable go to the LB admin API.
import { InvalidArgumentError, type Command } from 'commander';
import { createLogger } from '../core/log.js';
import { formatHostPort } from '../core/types.js';
import { startDashboard } from '../dashboard/index.js';
import { adminBaseUrl, RemoteControlPlane } from '../dashboard/remote.js';
import { collect, hostPort } from './options.js';

interface DashboardFlags {
  listen: { host: string; port: number };
  lb?: string[];
  dns?: string[];
  dbProxy?: string[];
  token?: string;
  adminToken?: string;
  name?: string;
}

function adminUrl(value: string, previous: string[] = []): string[] {
  try {
    adminBaseUrl(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return collect(value, previous);
}

export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description('serve the live dashboard for load balancers, DNS and db-proxies given by their admin URLs')
    .option('--listen <host:port>', 'where to serve the dashboard (default 127.0.0.1:9090)', hostPort)
    .option('--lb <url>', 'admin URL of a load balancer (repeat for each)', adminUrl)
    .option('--dns <url>', 'admin URL of a scaleout dns (repeatable)', adminUrl)
    .option('--db-proxy <url>', 'admin URL of a scaleout db-proxy (repeatable)', adminUrl)
    .option(
      '--token <token>',
      'require this bearer token for the dashboard API (default $SCALEOUT_DASHBOARD_TOKEN)',
    )
    .option('--admin-token <token>', 'bearer token for the LB admin APIs (default $SCALEOUT_ADMIN_TOKEN)')
    .option('--name <text>', 'title of the page')
    .action(async (flags: DashboardFlags) => {
      const lb = flags.lb ?? [];
      const dns = flags.dns ?? [];
      const dbProxy = flags.dbProxy ?? [];
      if (lb.length + dns.length + dbProxy.length === 0)
        throw new Error('give at least one --lb, --dns or --db-proxy admin URL');
      const listen = flags.listen ?? { host: '127.0.0.1', port: 9090 };
      const log = createLogger('scaleout-dashboard');
      const control = new RemoteControlPlane({
        name: flags.name,
        lb,
        dns,
        dbProxy,
        adminToken: flags.adminToken ?? process.env.SCALEOUT_ADMIN_TOKEN,
      });
      const token = flags.token ?? process.env.SCALEOUT_DASHBOARD_TOKEN;
      const dashboard = await startDashboard({
        listen: formatHostPort(listen.host, listen.port),
        token: token || undefined,
        control,
        logger: log,
      });
      console.log(`scaleout dashboard on ${dashboard.url}`);
      for (const c of control.snapshot().components)
        console.log(`  ${c.kind.padEnd(8)} ${c.name.padEnd(10)} ${c.adminUrl}`);
      const stop = (signal: string) => {
        log.info({ signal }, `${signal}: stopping`);
        void dashboard.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
