// The collector's database panel against a real `scaleout db-proxy` in front of a real PostgreSQL
// primary and streaming replica: statements per route and reason, servers with their lag.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Collector } from '../../../src/dashboard/collector.js';
import { RemoteControlPlane } from '../../../src/dashboard/remote.js';
import { freePort } from '../../../src/topology/postgres.js';
import { startTestDbProxy } from '../../helpers/db-proxy.js';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';

const sum = (values: Array<number | null> | undefined) =>
  (values ?? []).reduce<number>((n, v) => n + (v ?? 0), 0);

describe('dashboard collector over a real db-proxy', () => {
  let cluster: PgCluster;
  let proxyUrl: string;
  let collector: Collector;

  before(async () => {
    cluster = await startTestCluster({ replicas: 1 });
    const admin = await freePort();
    proxyUrl = (await startTestDbProxy(cluster, { args: ['--admin', `127.0.0.1:${admin}`] })).url;
    collector = new Collector({
      control: new RemoteControlPlane({ dbProxy: [`127.0.0.1:${admin}`] }),
      intervalMs: 200,
    });
  });
  after(async () => {
    await collector?.stop();
  });

  it('shows statements per route and reason, and each server with its role and lag', async () => {
    await collector.tick();
    const client = new pg.Client({ connectionString: proxyUrl });
    await client.connect();
    try {
      await client.query('CREATE TABLE IF NOT EXISTS dash_items (id serial PRIMARY KEY, v text)');
      for (let i = 0; i < 5; i++) await client.query('INSERT INTO dash_items (v) VALUES ($1)', [`v${i}`]);
      // Reads until some have reached the replica (once it has replayed the writes), at most 5 s.
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        for (let i = 0; i < 5; i++) await client.query('SELECT count(*) FROM dash_items');
        await collector.tick();
        if (sum(collector.history.view(['db:db-proxy']).series['db:db-proxy']?.replica) > 0) break;
      }
    } finally {
      await client.end();
    }
    const history = collector.history.view(['db:db-proxy']).series['db:db-proxy']!;
    assert.ok(sum(history.primary) > 0, 'statements went to the primary');
    assert.ok(sum(history.replica) > 0, 'reads went to the replica');
    const view = collector.state()!.db[0]!;
    assert.equal(view.ok, true);
    assert.equal(view.shards, null, 'no shards on an unsharded proxy');
    assert.equal(view.scatterQueries, null);
    assert.equal(view.readYourWritesPerSec, view.reasons['read-your-writes'] ?? 0);
    const roles = view.servers.map((s) => s.role).sort();
    assert.deepEqual(roles, ['primary', 'replica']);
    const replica = view.servers.find((s) => s.role === 'replica')!;
    assert.equal(replica.state, 'healthy');
    assert.equal(typeof replica.lagSeconds, 'number');
    assert.ok(`lag:${replica.server}` in history, 'replica lag is kept over time');
  });
});
