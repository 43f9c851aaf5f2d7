// Two shards (each a primary + one streaming replica) and a sharded db-proxy in front of them, shared
// by the tests of one file.
import pg from 'pg';
import pino from 'pino';
import { validateDatabaseConfig } from '../../../src/db/config.js';
import { DbProxy } from '../../../src/db/proxy.js';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';

export interface ShardedSetup {
  clusters: PgCluster[];
  proxy: DbProxy;
  url: string;
  /** A direct connection to each shard's primary. */
  direct: pg.Client[];
}

export const TABLES = {
  sharded_tables: [
    { table: 'accounts', key: 'id', type: 'bigint' },
    { table: 'events', key: 'user_id', type: 'uuid' },
    { table: 'users', key: 'email', type: 'text' },
  ],
  reference_tables: ['countries'],
};

export async function startClusters(n: number, settings: Record<string, string> = {}): Promise<PgCluster[]> {
  return Promise.all(Array.from({ length: n }, () => startTestCluster({ replicas: 1, settings })));
}

export async function startShardedProxy(
  clusters: PgCluster[],
  overrides: Record<string, unknown> = {},
): Promise<{ proxy: DbProxy; url: string; stop: () => Promise<void> }> {
  const config = validateDatabaseConfig(
    {
      listen: '127.0.0.1:0',
      shards: clusters.map((c) => ({ primary: c.primary.url, replicas: c.replicas.map((r) => r.url) })),
      ...TABLES,
      lag_check_interval_ms: 50,
      healthy_threshold: 1,
      unhealthy_threshold: 1,
      ban_ms: 200,
      connect_timeout_ms: 1000,
      acquire_timeout_ms: 2000,
      ...overrides,
    },
    'test',
  );
  const proxy = new DbProxy(config, pino({ level: process.env.DB_PROXY_LOG ?? 'silent' }));
  const { port } = await proxy.start();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proxy.stop();
  };
  atFileEnd(stop);
  return { proxy, url: `postgres://${clusters[0]!.user}@127.0.0.1:${port}/${clusters[0]!.database}`, stop };
}

export async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  atFileEnd(() => c.end().catch(() => {}));
  return c;
}

/** Rows of a query as plain arrays of strings (pg's text values), for comparisons. */
export async function rowsOf(c: pg.Client, sql: string, params: unknown[] = []): Promise<unknown[][]> {
  const res = await c.query({ text: sql, values: params, rowMode: 'array' });
  return res.rows as unknown[][];
}
