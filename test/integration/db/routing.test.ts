// The routing table of issue 4, one case each, checked on the servers: every statement asks the server
// that runs it for its own port (inet_server_port()), so the test never trusts the proxy's word.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type pg from 'pg';
import { startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { freePort } from '../../../src/topology/postgres.js';
import { client, serverPort, sleep, startProxy, type RunningProxy } from './harness.js';

const run = promisify(execFile);

describe('db-proxy routing (node-postgres, psql, pgbench)', () => {
  let cluster: PgCluster;
  let proxy: RunningProxy;
  let c: pg.Client;
  let primary: number;
  let replica: number;
  let adminPort: number;

  before(async () => {
    cluster = await startTestCluster({
      replicas: 1,
      settings: { shared_preload_libraries: "'pg_stat_statements'" },
    });
    await cluster.primary.psql(
      "CREATE EXTENSION pg_stat_statements; CREATE TABLE items (id serial PRIMARY KEY, v text); INSERT INTO items (v) VALUES ('a'), ('b'); CREATE SEQUENCE seq;",
    );
    await cluster.waitForReplication();
    adminPort = await freePort();
    proxy = await startProxy(cluster, { admin: `127.0.0.1:${adminPort}` });
    c = await client(proxy.url);
    primary = cluster.primary.port;
    replica = cluster.replicas[0]!.port;
  });

  const where = (sql: string, params?: unknown[]): Promise<number> => serverPort(c, sql, params);
  /** After writes, read-your-writes keeps this client's reads on the primary until the replica has caught up. */
  const settle = async (): Promise<void> => {
    await cluster.waitForReplication();
    await sleep(200);
  };

  it('a plain SELECT goes to the replica', async () => {
    assert.equal(await where('SELECT inet_server_port() AS port FROM items WHERE id = 1'), replica);
  });

  it('extended protocol with parameters goes to the replica', async () => {
    assert.equal(await where('SELECT inet_server_port() AS port FROM items WHERE id = $1', [1]), replica);
  });

  it('a write inside WITH goes to the primary', async () => {
    assert.equal(
      await where(
        "WITH x AS (INSERT INTO items (v) VALUES ('w') RETURNING id) SELECT inet_server_port() AS port FROM x",
      ),
      primary,
    );
  });

  it('SELECT … FOR UPDATE and FOR SHARE go to the primary', async () => {
    assert.equal(
      await where('SELECT inet_server_port() AS port FROM items WHERE id = 1 FOR UPDATE'),
      primary,
    );
    assert.equal(await where('SELECT inet_server_port() AS port FROM items WHERE id = 1 FOR SHARE'), primary);
  });

  it('nextval, setval and volatile functions go to the primary', async () => {
    assert.equal(await where("SELECT inet_server_port() AS port, nextval('seq')"), primary);
    assert.equal(await where("SELECT inet_server_port() AS port, setval('seq', 10)"), primary);
    assert.equal(await where('SELECT inet_server_port() AS port, random()'), primary);
  });

  it('LOCK and DDL run on the primary', async () => {
    await c.query('BEGIN');
    await c.query('LOCK TABLE items IN SHARE MODE');
    assert.equal(await where('SELECT inet_server_port() AS port'), primary);
    await c.query('COMMIT');
    await c.query('CREATE TABLE ddl_made_here (x int)');
    assert.equal(
      await cluster.primary.psql("SELECT count(*) FROM pg_class WHERE relname = 'ddl_made_here'"),
      '1',
    );
  });

  it('a multi-statement string goes to the primary', async () => {
    const res = (await c.query(
      'SELECT inet_server_port() AS port; SELECT 1 AS one',
    )) as unknown as pg.QueryResult[];
    assert.equal(Number(res[0]!.rows[0].port), primary);
  });

  it('a statement the parser cannot read goes to the primary (its error comes from there)', async () => {
    const marker = `parse_marker_${Date.now()}`;
    await assert.rejects(c.query(`SELEC 1 AS ${marker}`), /syntax error/);
    assert.match(readFileSync(cluster.primary.logFile, 'utf8'), new RegExp(marker));
    assert.doesNotMatch(readFileSync(cluster.replicas[0]!.logFile, 'utf8'), new RegExp(marker));
  });

  it('inside an explicit transaction everything goes to the primary', async () => {
    await c.query('BEGIN');
    assert.equal(await where('SELECT inet_server_port() AS port'), primary);
    await c.query('COMMIT');
  });

  it('a transaction begun READ ONLY goes to a replica', async () => {
    await settle();
    await c.query('BEGIN READ ONLY');
    assert.equal(await where('SELECT inet_server_port() AS port'), replica);
    assert.equal(await where('SELECT inet_server_port() AS port FROM items LIMIT 1'), replica);
    await c.query('COMMIT');
  });

  it('the /* scaleout:primary */ hint and SET scaleout.route = primary force the primary', async () => {
    assert.equal(await where('/* scaleout:primary */ SELECT inet_server_port() AS port'), primary);
    await c.query('SET scaleout.route = primary');
    assert.equal(await where('SELECT inet_server_port() AS port'), primary);
    await c.query('SET scaleout.route = auto');
    await settle();
    assert.equal(await where('SELECT inet_server_port() AS port'), replica);
  });

  it('EXPLAIN ROUTE answers where a statement would go and why', async () => {
    const res = await c.query('EXPLAIN ROUTE SELECT * FROM items FOR UPDATE');
    assert.equal(res.rows[0].route, 'primary');
    assert.equal(res.rows[0].reason, 'locking-clause');
    await settle();
    const res2 = await c.query('EXPLAIN ROUTE SELECT * FROM items');
    assert.equal(res2.rows[0].route, 'replica');
  });

  it('SET and temp tables pin the session to its primary connection', async () => {
    const c2 = await client(proxy.url);
    await c2.query('CREATE TEMP TABLE scratch (x int)');
    await c2.query('INSERT INTO scratch VALUES (1)');
    assert.equal(await serverPort(c2, 'SELECT inet_server_port() AS port FROM scratch'), primary);
    const c3 = await client(proxy.url);
    await c3.query("SET application_name = 'pinned'");
    assert.equal(await serverPort(c3, 'SELECT inet_server_port() AS port'), primary);
    assert.equal((await c3.query('SHOW application_name')).rows[0].application_name, 'pinned');
  });

  it('the admin endpoint serves Prometheus metrics, server status and explain', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const count = (route: string, reason: string): number =>
      Number(
        new RegExp(`scaleout_db_statements_total\\{route="${route}",reason="${reason}"\\} (\\d+)`).exec(
          metrics,
        )?.[1] ?? 0,
      );
    assert.ok(count('replica', 'read-only') > 0, metrics);
    assert.ok(count('primary', 'locking-clause') > 0);
    assert.match(metrics, /scaleout_db_replica_lag_bytes\{server="127.0.0.1:\d+"\} \d+/);
    assert.match(metrics, /scaleout_db_pool_connections\{server="[^"]+",role="replica",state="idle"\}/);
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as {
      servers: { role: string; state: string }[];
    };
    assert.deepEqual(
      status.servers.map((s) => [s.role, s.state]),
      [
        ['primary', 'healthy'],
        ['replica', 'healthy'],
      ],
    );
    const explain = (await (
      await fetch(`http://127.0.0.1:${adminPort}/explain?sql=${encodeURIComponent('SELECT nextval(1)')}`)
    ).json()) as { route: string; reason: string };
    assert.deepEqual([explain.route, explain.reason], ['primary', 'volatile-function']);
  });

  it('psql through the proxy: reads on the replica, COPY in both directions', async () => {
    const psql = (args: string[], input?: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = execFile(
          '/usr/lib/postgresql/15/bin/psql',
          [
            '-X',
            '-At',
            '-h',
            '127.0.0.1',
            '-p',
            String(proxy.port),
            '-U',
            cluster.user,
            '-d',
            cluster.database,
            ...args,
          ],
          (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout.trim())),
        );
        if (input !== undefined) child.stdin!.end(input);
      });
    assert.equal(await psql(['-c', 'SELECT inet_server_port()']), String(replica));
    await psql(['-c', 'CREATE TABLE copied (id int, name text)']);
    await psql(['-c', 'COPY copied FROM STDIN'], '1\tone\n2\ttwo\n3\tthree\n\\.\n');
    assert.equal(
      await cluster.primary.psql("SELECT string_agg(name, ',' ORDER BY id) FROM copied"),
      'one,two,three',
    );
    await cluster.waitForReplication();
    assert.equal(
      await psql(['-c', 'COPY (SELECT * FROM copied ORDER BY id) TO STDOUT']),
      '1\tone\n2\ttwo\n3\tthree',
    );
  });

  it('pgbench -M prepared in transaction pooling: no failures, reads reach the replica', async () => {
    const env = { ...process.env, PGHOST: '127.0.0.1', PGUSER: cluster.user };
    const pgbench = '/usr/lib/postgresql/15/bin/pgbench';
    await run(pgbench, ['-i', '-s', '1', '-q', '-p', String(cluster.primary.port), cluster.database], {
      env,
    });
    await cluster.waitForReplication();
    // pg_stat_statements counts at the end of each execution, on the server that ran it.
    const replicaReads = async (): Promise<number> =>
      Number(
        await cluster.replicas[0]!.psql(
          "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'",
        ),
      );
    const r0 = await replicaReads();
    for (const mode of ['prepared', 'extended', 'simple']) {
      const { stdout } = await run(
        pgbench,
        [
          '-n',
          '-S',
          '-M',
          mode,
          '-c',
          '4',
          '-j',
          '1',
          '-t',
          '200',
          '-p',
          String(proxy.port),
          cluster.database,
        ],
        { env },
      );
      assert.match(stdout, /number of transactions actually processed: 800\/800/, stdout);
      assert.match(stdout, /number of failed transactions: 0/, stdout);
    }
    const { stdout } = await run(
      pgbench,
      ['-n', '-M', 'prepared', '-c', '4', '-j', '1', '-t', '50', '-p', String(proxy.port), cluster.database],
      { env },
    );
    assert.match(stdout, /number of transactions actually processed: 200\/200/, stdout);
    const reads = (await replicaReads()) - r0;
    assert.ok(reads > 1000, `the replica ran ${reads} of the 2,400 read-only transactions`);
  });
});
