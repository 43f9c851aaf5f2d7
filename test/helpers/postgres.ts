// Test harness for real PostgreSQL: a primary plus streaming replicas on loopback (see
// src/topology/postgres.ts). `startTestCluster()` registers cleanup with node:test so the servers
// are stopped when the test file ends, pass or fail.
import { after } from 'node:test';
import { PgCluster, type PgClusterOptions } from '../../src/topology/postgres.js';

export { PgCluster, PgNode } from '../../src/topology/postgres.js';

export async function startTestCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const cluster = await PgCluster.start(options);
  after(() => cluster.stop());
  return cluster;
}
