// Read-your-writes and the lag cutoff against a replica that is artificially behind
// (recovery_min_apply_delay): where each read ran is reported by the server itself.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { client, sleep, startProxy, type RunningProxy } from './harness.js';

describe('db-proxy read-your-writes and max lag', () => {
  let cluster: PgCluster;
  let primary: number;
  let replica: number;

  before(async () => {
    cluster = await startTestCluster({ replicas: 1 });
    await cluster.primary.psql('CREATE TABLE ryw (client int, seq int, PRIMARY KEY (client, seq))');
    await cluster.waitForReplication();
    await cluster.replicas[0]!.setAndReload({ recovery_min_apply_delay: "'400ms'" });
    primary = cluster.primary.port;
    replica = cluster.replicas[0]!.port;
  });

  describe('with a lag limit the delayed replica stays under', () => {
    let proxy: RunningProxy;
    before(async () => {
      proxy = await startProxy(cluster, { max_lag_ms: 60_000, max_lag_bytes: 1 << 30 });
    });

    it('a write then an immediate read on the same connection never sees stale data, under load', async () => {
      const clients = await Promise.all(Array.from({ length: 8 }, () => client(proxy.url)));
      let onReplica = 0;
      await Promise.all(
        clients.map(async (c, id) => {
          for (let seq = 0; seq < 25; seq++) {
            await c.query('INSERT INTO ryw (client, seq) VALUES ($1, $2)', [id, seq]);
            const res = await c.query(
              'SELECT count(*)::int AS n, inet_server_port() AS port FROM ryw WHERE client = $1 AND seq = $2',
              [id, seq],
            );
            assert.equal(res.rows[0].n, 1, `client ${id} did not see its own write ${seq}`);
            if (Number(res.rows[0].port) === replica) onReplica++;
          }
        }),
      );
      // The replica really was behind: straight after a write it does not have the row yet.
      await clients[0]!.query('INSERT INTO ryw (client, seq) VALUES (100, 0)');
      assert.equal(await cluster.replicas[0]!.psql('SELECT count(*) FROM ryw WHERE client = 100'), '0');
      // Once it has replayed past the client's position, that client's reads go back to the replica.
      await cluster.waitForReplication();
      await sleep(200);
      const res = await clients[0]!.query('SELECT inet_server_port() AS port FROM ryw WHERE client = 100');
      assert.equal(Number(res.rows[0].port), replica);
      void onReplica;
    });

    it('the position is a token another connection can use (SHOW / SET scaleout.last_lsn)', async () => {
      const writer = await client(proxy.url);
      const reader = await client(proxy.url);
      const bystander = await client(proxy.url);
      await cluster.waitForReplication();
      await sleep(200);
      await writer.query('INSERT INTO ryw (client, seq) VALUES (200, 1)');
      const token = (await writer.query('SHOW scaleout.last_lsn')).rows[0]['scaleout.last_lsn'] as string;
      assert.match(token, /^[0-9A-F]+\/[0-9A-F]+$/);
      // Without the token a read goes to the (delayed) replica and misses the row.
      const stale = await bystander.query(
        'SELECT count(*)::int AS n, inet_server_port() AS port FROM ryw WHERE client = 200',
      );
      assert.deepEqual([stale.rows[0].n, Number(stale.rows[0].port)], [0, replica]);
      await reader.query(`SET scaleout.last_lsn = '${token}'`);
      const fresh = await reader.query(
        'SELECT count(*)::int AS n, inet_server_port() AS port FROM ryw WHERE client = 200',
      );
      assert.equal(fresh.rows[0].n, 1);
      assert.equal(Number(fresh.rows[0].port), primary);
    });
  });

  describe('with max_lag_ms below the replica delay', () => {
    let proxy: RunningProxy;
    before(async () => {
      await cluster.replicas[0]!.setAndReload({ recovery_min_apply_delay: "'1500ms'" });
      proxy = await startProxy(cluster, { max_lag_ms: 300 });
    });

    it('a lagging replica gets no reads until it catches up, then gets them again', async () => {
      const writer = await client(proxy.url);
      const reader = await client(proxy.url);
      await cluster.waitForReplication();
      await sleep(200);
      const port = async (): Promise<number> =>
        Number((await reader.query('SELECT inet_server_port() AS port FROM ryw LIMIT 1')).rows[0].port);
      assert.equal(await port(), replica);
      await writer.query('INSERT INTO ryw (client, seq) VALUES (300, 1)');
      await sleep(200); // a few lag checks
      const lagging = (proxy.proxy.cluster.status() as { role: string; lagging?: boolean }[]).find(
        (s) => s.role === 'replica',
      );
      assert.equal(lagging?.lagging, true);
      assert.equal(await port(), primary);
      await cluster.waitForReplication();
      await sleep(300);
      assert.equal(await port(), replica);
    });
  });
});
