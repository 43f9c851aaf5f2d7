// `scaleout demo-app`: the example application (a URL shortener) that `scaleout up` runs behind the
// load balancer, talking to PostgreSQL through the db-proxy. See docs/demo-app.md.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createLogger } from '../core/log.js';
import { startDemoApp } from '../demo-app/index.js';
import { hostPort, integer } from './options.js';

interface Flags {
  listen: { host: string; port: number };
  database: string;
  instance?: string;
  poolSize: number;
}

function databaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected postgres://USER[:PASSWORD]@HOST:PORT/DB');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new InvalidArgumentError('expected a postgres:// URL');
  return value;
}

export function registerDemoApp(program: Command): void {
  program
    .command('demo-app')
    .description(
      'the demo app (a URL shortener on PostgreSQL through the db-proxy) that `scaleout up` scales',
    )
    .addOption(
      new Option('--listen <host:port>', 'where the app serves HTTP')
        .argParser(hostPort)
        .default({ host: '127.0.0.1', port: 3000 }, '127.0.0.1:3000'),
    )
    .requiredOption('--database <url>', 'postgres://USER@HOST:PORT/DB, normally the db-proxy', databaseUrl)
    .option('--instance <name>', 'name reported in X-Scaleout-Instance (default HOST:PORT)')
    .option('--pool-size <n>', 'database connections of this instance', integer(1, 1000), 10)
    .action(async (flags: Flags) => {
      const log = createLogger('scaleout-demo-app');
      let app;
      try {
        app = await startDemoApp({
          listen: flags.listen,
          database: flags.database,
          instance: flags.instance,
          poolSize: flags.poolSize,
          log,
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const where = `${flags.listen.host}:${flags.listen.port}`;
        console.error(
          `scaleout demo-app: cannot listen on ${where}: ${e.code === 'EADDRINUSE' ? 'address in use' : e.message}`,
        );
        process.exit(1);
      }
      let stopping = false;
      const shutdown = (signal: string): void => {
        // A second signal (an impatient supervisor) must not kill the requests still finishing.
        if (stopping) return void log.info({ signal }, 'demo app already shutting down');
        stopping = true;
        log.info({ signal }, 'demo app shutting down: finishing requests in flight');
        void app.close().then(() => process.exit(0));
      };
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      process.on('SIGINT', () => shutdown('SIGINT'));
    });
}
