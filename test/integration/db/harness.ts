// Starts the db-proxy in-process in front of a test cluster, and small helpers to talk through it.
import pg from 'pg';
import pino from 'pino';
import { validateDatabaseConfig, type DatabaseConfig } from '../../../src/db/config.js';
import { DbProxy } from '../../../src/db/proxy.js';
import { atFileEnd, type PgCluster } from '../../helpers/postgres.js';

export interface RunningProxy {
  proxy: DbProxy;
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startProxy(
  cluster: PgCluster,
  overrides: Record<string, unknown> = {},
): Promise<RunningProxy> {
  const config: DatabaseConfig = validateDatabaseConfig(
    {
      listen: '127.0.0.1:0',
      primary: cluster.primary.url,
      replicas: cluster.replicas.map((r) => r.url),
      lag_check_interval_ms: 50,
      healthy_threshold: 1,
      unhealthy_threshold: 1,
      ban_ms: 200,
      ...overrides,
    },
    'test',
  );
  return runProxy(config, cluster);
}

/** Starts a db-proxy with `config` (stopped at the end of the test file); `url` logs in as the cluster's user. */
export async function runProxy(config: DatabaseConfig, cluster: PgCluster): Promise<RunningProxy> {
  const proxy = new DbProxy(config, pino({ level: process.env.DB_PROXY_LOG ?? 'silent' }));
  const { port } = await proxy.start();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proxy.stop();
  };
  atFileEnd(stop);
  return { proxy, port, url: `postgres://${cluster.user}@127.0.0.1:${port}/${cluster.database}`, stop };
}

/** A node-postgres client connected through the proxy (closed at the end of the test file). */
export async function client(url: string, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, ...extra });
  c.on('error', () => {}); // connection drops are asserted by the tests themselves
  await c.connect();
  atFileEnd(() => c.end().catch(() => {}));
  return c;
}

/** The port of the server that really ran the statement, as that server reports it. */
export async function serverPort(c: pg.Client, sql: string, params?: unknown[]): Promise<number> {
  const res = await c.query(sql, params);
  const row = res.rows[0] as Record<string, unknown> | undefined;
  return Number(row?.port);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
