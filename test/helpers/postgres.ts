// Test harness for real PostgreSQL: a primary plus streaming replicas on loopback (see
// src/topology/postgres.ts). Clusters started with `startTestCluster()` are stopped when the test file
// ends, pass or fail (one root-level `after` hook, registered when this module is imported; hooks
// registered from inside a `before` would run too early).
import { after } from 'node:test';
import { PgCluster, type PgClusterOptions } from '../../src/topology/postgres.js';

export { PgCluster, PgNode } from '../../src/topology/postgres.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  // Last registered first: clients and proxies before the servers they use.
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
});

/** Runs `fn` when the test file ends (after every test), in reverse order of registration. */
export function atFileEnd(fn: () => Promise<unknown>): void {
  cleanups.push(fn);
}

export async function startTestCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const cluster = await PgCluster.start(options);
  atFileEnd(() => cluster.stop());
  return cluster;
}
