// `scaleout db-proxy`: a PostgreSQL wire-protocol proxy that sends writes to the primary and spreads
// reads over streaming replicas. Settings come from flags or from the `database:` section of a config file.
import { Command, Option } from 'commander';
import pino from 'pino';
import {
  ConfigError,
  loadDatabaseConfigFile,
  validateDatabaseConfig,
  type DatabaseConfig,
} from '../db/config.js';
import { DbProxy } from '../db/proxy.js';
import { collect } from './options.js';

const int = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`"${value}" is not an integer`);
  return n;
};

interface Flags {
  config?: string;
  listen?: string;
  primary?: string;
  replica?: string[];
  poolMode?: string;
  poolSize?: number;
  algorithm?: string;
  auth?: string;
  user?: string[];
  maxLagMs?: number;
  maxLagBytes?: number;
  lagCheckMs?: number;
  safeFunction?: string[];
  readYourWrites?: boolean;
  admin?: string;
  tlsCert?: string;
  tlsKey?: string;
  logLevel?: string;
}

/** Flags given on the command line, as `database:` keys (they override the config file). */
function flagsToSettings(f: Flags): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  if (f.listen) s.listen = f.listen;
  if (f.primary) s.primary = f.primary;
  if (f.replica) s.replicas = f.replica;
  if (f.poolMode) s.pool_mode = f.poolMode;
  if (f.poolSize !== undefined) s.pool_size = f.poolSize;
  if (f.algorithm) s.algorithm = f.algorithm;
  if (f.auth) s.auth = f.auth;
  if (f.user) {
    s.users = f.user.map((u) => {
      const i = u.indexOf(':');
      return i < 0 ? { name: u, password: '' } : { name: u.slice(0, i), password: u.slice(i + 1) };
    });
  }
  if (f.maxLagMs !== undefined) s.max_lag_ms = f.maxLagMs;
  if (f.maxLagBytes !== undefined) s.max_lag_bytes = f.maxLagBytes;
  if (f.lagCheckMs !== undefined) s.lag_check_interval_ms = f.lagCheckMs;
  if (f.safeFunction) s.safe_functions = f.safeFunction;
  if (f.readYourWrites === false) s.read_your_writes = false;
  if (f.admin) s.admin = f.admin;
  if (f.tlsCert || f.tlsKey) s.tls = { cert: f.tlsCert, key: f.tlsKey };
  if (f.logLevel) s.log_level = f.logLevel;
  return s;
}

export function registerDbProxy(program: Command): void {
  program
    .command('db-proxy')
    .description(
      'PostgreSQL proxy: writes to the primary, reads spread over streaming replicas; shards with --config (docs/sharding.md)',
    )
    .option('-c, --config <file>', 'scaleout config file (YAML); uses its database: section')
    .option('--listen <host:port>', 'where clients connect (default 127.0.0.1:6432)')
    .option('--primary <url>', 'primary server, postgres://USER[:PASSWORD]@HOST:PORT/DB')
    .option('--replica <url>', 'a streaming replica (repeat for more)', collect)
    .addOption(
      new Option('--pool-mode <mode>', 'server connection pooling (default transaction)').choices([
        'transaction',
        'session',
      ]),
    )
    .option('--pool-size <n>', 'server connections per server (default 20)', int)
    .option('--algorithm <name>', 'how reads pick a replica (default least-outstanding)')
    .addOption(
      new Option('--auth <method>', 'client authentication (default trust)').choices([
        'trust',
        'md5',
        'scram-sha-256',
      ]),
    )
    .option('--user <name:password>', 'a client user (repeat for more)', collect)
    .option('--max-lag-ms <ms>', 'replicas further behind get no reads (default 1000)', int)
    .option('--max-lag-bytes <n>', 'replicas further behind in WAL bytes get no reads (default 16 MiB)', int)
    .option('--lag-check-ms <ms>', 'how often replica health and lag are checked (default 200)', int)
    .option('--safe-function <name>', 'a function safe to run on replicas (repeat for more)', collect)
    .option('--no-read-your-writes', 'do not track WAL positions after writes')
    .option('--admin <host:port>', 'HTTP endpoint for /metrics, /status, /explain')
    .option('--tls-cert <file>', 'serve TLS to clients that ask for it (with --tls-key)')
    .option('--tls-key <file>', 'private key for --tls-cert')
    .option('--log-level <level>', 'fatal, error, warn, info, debug (default info)')
    .action(async (flags: Flags) => {
      let config: DatabaseConfig;
      try {
        const settings = flagsToSettings(flags);
        config = flags.config
          ? loadDatabaseConfigFile(flags.config, settings)
          : validateDatabaseConfig(settings, 'command line', 'db-proxy');
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(`scaleout db-proxy: invalid configuration\n${err.message}`);
          process.exit(2);
        }
        throw err;
      }
      const log = pino({ level: config.log_level, base: { service: 'db-proxy' } });
      const proxy = new DbProxy(config, log);
      const addr = await proxy.start();
      log.info(
        {
          listen: `${addr.host}:${addr.port}`,
          poolMode: config.pool_mode,
          poolSize: config.pool_size,
          auth: config.auth,
          admin: config.admin,
        },
        `db-proxy listening on ${addr.host}:${addr.port}`,
      );
      for (const s of proxy.clusters.flatMap((c) => c.status()) as Record<string, unknown>[]) {
        log.info(
          s,
          `${s.shard ? `${String(s.shard)} ` : ''}${String(s.role)} ${String(s.server)}: ${String(s.state)}${s.lastError ? ` (${String(s.lastError)})` : ''}`,
        );
      }
      const shutdown = (): void => {
        log.info('db-proxy shutting down');
        void proxy.stop().then(() => process.exit(0));
        setTimeout(() => process.exit(0), 3000).unref();
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    });
}
