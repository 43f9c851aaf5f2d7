// Two shards (each a primary + one streaming replica) and a sharded db-proxy in front of them, shared
// by the tests of one file.
import pg from 'pg';
import { validateDatabaseConfig } from '../../../src/db/config.js';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { runProxy, type RunningProxy } from '../db/harness.js';

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
): Promise<RunningProxy> {
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
  return runProxy(config, clusters[0]!);
}

export { client as connect } from '../db/harness.js';

/** Rows of a query as plain arrays of strings (pg's text values), for comparisons. */
export async function rowsOf(c: pg.Client, sql: string, params: unknown[] = []): Promise<unknown[][]> {
  const res = await c.query({ text: sql, values: params, rowMode: 'array' });
  return res.rows as unknown[][];
}
