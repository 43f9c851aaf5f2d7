// Faults with real servers: a replica killed under read load, the primary down, a client that
// vanishes mid-transaction, and a cancel request.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { before, describe, it } from 'node:test';
import type pg from 'pg';
import { cancelRequest } from '../../../src/db/protocol/messages.js';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { client, sleep, startProxy, type RunningProxy } from './harness.js';

describe('db-proxy faults', () => {
  let cluster: PgCluster;
  let proxy: RunningProxy;

  before(async () => {
    cluster = await startTestCluster({ replicas: 1 });
    await cluster.primary.psql(
      'CREATE TABLE acct (id int PRIMARY KEY, v int); INSERT INTO acct SELECT g, 0 FROM generate_series(1, 10) g',
    );
    await cluster.waitForReplication();
    proxy = await startProxy(cluster);
  });

  it('cancel requests reach the server running the query', async () => {
    const c = await client(proxy.url);
    const started = Date.now();
    const sleeping = c.query('SELECT pg_sleep(20)');
    await sleep(300);
    const key = c as unknown as { processID: number; secretKey: number };
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: proxy.port }, () =>
        s.end(cancelRequest(key.processID, key.secretKey)),
      );
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    await assert.rejects(sleeping, (err: Error & { code?: string }) => err.code === '57014');
    assert.ok(Date.now() - started < 5000);
    // The connection is usable afterwards.
    assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
  });

  it('a client that vanishes mid-transaction has its server connection rolled back before reuse', async () => {
    const small = await startProxy(cluster, { pool_size: 1 });
    const a = await client(small.url);
    await a.query('BEGIN');
    await a.query('UPDATE acct SET v = 99 WHERE id = 1');
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await sleep(100);
    const b = await client(small.url);
    // With one server connection, b gets the one a used: it must not be inside a's transaction.
    const res = await b.query(
      'SELECT v, now() = statement_timestamp() AS fresh FROM acct WHERE id = 1 FOR UPDATE',
    );
    assert.equal(res.rows[0].v, 0);
    assert.equal(res.rows[0].fresh, true);
    await b.query('UPDATE acct SET v = v + 1 WHERE id = 1');
    assert.equal(await cluster.primary.psql('SELECT v FROM acct WHERE id = 1'), '1');
  });

  it('a replica killed under read load: zero client errors, reads fall back to the primary', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => client(proxy.url)));
    await cluster.waitForReplication();
    await sleep(200);
    const errors: Error[] = [];
    const ports = new Map<number, number>();
    let stop = false;
    const load = clients.map(async (c) => {
      while (!stop) {
        try {
          const res = await c.query('SELECT inet_server_port() AS port, sum(v) FROM acct');
          const p = Number(res.rows[0].port);
          ports.set(p, (ports.get(p) ?? 0) + 1);
        } catch (err) {
          errors.push(err as Error);
        }
      }
    });
    await sleep(700);
    const before = ports.get(cluster.replicas[0]!.port) ?? 0;
    await cluster.replicas[0]!.stop('immediate');
    await sleep(1200);
    const primaryAfter = ports.get(cluster.primary.port) ?? 0;
    await sleep(300);
    stop = true;
    await Promise.all(load);
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
    );
    assert.ok(before > 50, `the replica served reads before it died (${before})`);
    assert.ok((ports.get(cluster.primary.port) ?? 0) > primaryAfter, 'the primary served reads after');
    const status = proxy.proxy.cluster.status() as { role: string; eligible: boolean }[];
    assert.equal(status.find((s) => s.role === 'replica')?.eligible, false);
  });

  it('a restarted replica gets reads again', async () => {
    await cluster.replicas[0]!.start();
    const c = await client(proxy.url);
    const deadline = Date.now() + 10_000;
    let port = 0;
    while (Date.now() < deadline) {
      port = Number((await c.query('SELECT inet_server_port() AS port')).rows[0].port);
      if (port === cluster.replicas[0]!.port) break;
      await sleep(100);
    }
    assert.equal(port, cluster.replicas[0]!.port);
  });

  it('primary down: writes fail with a clear error, reads carry on', async () => {
    const c = await client(proxy.url);
    await cluster.primary.stop('fast');
    await sleep(300);
    await assert.rejects(c.query('UPDATE acct SET v = v + 1 WHERE id = 2'), (err: Error) => {
      assert.match(err.message, /primary .* is unavailable/);
      return true;
    });
    for (let i = 0; i < 20; i++) {
      const res = await c.query('SELECT inet_server_port() AS port, count(*) FROM acct');
      assert.equal(Number(res.rows[0].port), cluster.replicas[0]!.port);
    }
    const other: pg.Client = await client(proxy.url);
    assert.equal((await other.query('SELECT count(*)::int AS n FROM acct')).rows[0].n, 10);
  });
});
