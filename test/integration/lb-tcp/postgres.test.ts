import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { startTcpLb, waitFor, type TestTcpLb } from './harness.js';

describe('a real PostgreSQL server behind a tcp listener', () => {
  let cluster: PgCluster;
  let lb: TestTcpLb;
  before(async () => {
    cluster = await startTestCluster({ replicas: 0 });
    const primary = cluster.primary;
    lb = await startTcpLb([{ id: 'pg-primary', host: primary.host, port: primary.port }], {
      // A TCP connect check against the server's own port, as an NLB would do for a database.
      healthCheck: {
        protocol: 'tcp',
        path: '/',
        intervalMs: 200,
        timeoutMs: 500,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
        successCodes: '200-399',
      },
    });
  });
  after(async () => {
    await lb?.stop();
  });

  it('runs queries through the listener with node-postgres', async () => {
    assert.ok(await waitFor(() => lb.group.get('pg-primary')!.state === 'healthy', 5000), 'never healthy');
    const client = new pg.Client({
      host: '127.0.0.1',
      port: lb.port,
      user: cluster.user,
      database: cluster.database,
    });
    await client.connect();
    try {
      const one = await client.query('SELECT 1 AS one');
      assert.deepEqual(one.rows, [{ one: 1 }]);
      // The server sees the LB as its peer (no PROXY protocol: PostgreSQL does not speak it).
      const peer = await client.query('SELECT inet_client_addr()::text AS addr');
      assert.equal(peer.rows[0].addr, '127.0.0.1/32');
      // A bigger result crosses several TCP segments both ways.
      const big = await client.query("SELECT repeat('x', 1000000) AS s");
      assert.equal(big.rows[0].s.length, 1_000_000);
      assert.equal(lb.listener.connectionsTo('pg-primary'), 1);
    } finally {
      await client.end();
    }
    assert.ok(await waitFor(() => lb.listener.isDrained('pg-primary'), 2000));
  });
});
