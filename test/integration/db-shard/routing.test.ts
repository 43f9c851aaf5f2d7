// Routing over two shards (each a primary + a streaming replica): placement checked on the servers with
// satisfies_hash_partition, single-shard reads and writes in both protocols, scatter queries compared
// with the same query on one unsharded copy of the data, hints, EXPLAIN ROUTE, refusals, reference and
// default-shard tables, read-your-writes tokens, metrics and /status.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, test } from 'node:test';
import type pg from 'pg';
import { parseKey, shardOf } from '../../../src/db/shard/hash.js';
import type { DbProxy } from '../../../src/db/proxy.js';
import { connect, rowsOf, startClusters, startShardedProxy } from './harness.js';
import type { PgCluster } from '../../helpers/postgres.js';

let clusters: PgCluster[];
let proxy: DbProxy;
let url: string;
let db: pg.Client;
let direct: pg.Client[];
/** The unsharded copy: every row, in one table on shard 0's server. */
let copy: pg.Client;

const N = 200;

before(async () => {
  clusters = await startClusters(2);
  ({ proxy, url } = await startShardedProxy(clusters));
  db = await connect(url);
  direct = await Promise.all(clusters.map((c) => connect(c.primary.url)));
  copy = direct[0]!;
  // DDL on sharded and reference tables goes to every shard.
  await db.query(
    'CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance int, score float8, born date)',
  );
  await db.query('CREATE TABLE countries (code text PRIMARY KEY, name text)');
  await db.query('CREATE TABLE users (email text PRIMARY KEY, name text)');
  await db.query('CREATE TABLE events (user_id uuid, seq int, PRIMARY KEY (user_id, seq))');
  await copy.query(
    'CREATE TABLE accounts_all (id bigint PRIMARY KEY, owner text, balance int, score float8, born date)',
  );
  for (const d of direct) await d.query('CREATE TABLE hp_bigint (k bigint) PARTITION BY HASH (k)');
  await direct[0]!.query('CREATE TABLE notes (id int, body text)'); // default shard only
  // Rows through the proxy, half in the simple protocol, half in the extended one.
  for (let i = 1; i <= N; i++) {
    const owner = `owner${i % 7}`;
    const balance = (i * 37) % 1000;
    const score = i % 5 === 0 ? null : i / 8;
    const born = `2000-01-${String((i % 28) + 1).padStart(2, '0')}`;
    if (i % 2) {
      await db.query(
        `INSERT INTO accounts (id, owner, balance, score, born) VALUES (${i}, '${owner}', ${balance}, ${score ?? 'NULL'}, '${born}')`,
      );
    } else {
      await db.query('INSERT INTO accounts (id, owner, balance, score, born) VALUES ($1, $2, $3, $4, $5)', [
        i,
        owner,
        balance,
        score,
        born,
      ]);
    }
    await copy.query('INSERT INTO accounts_all VALUES ($1, $2, $3, $4, $5)', [
      i,
      owner,
      balance,
      score,
      born,
    ]);
  }
});

test('DDL on sharded and reference tables ran on every shard', async () => {
  for (const d of direct) {
    const r = await d.query(
      "SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('accounts', 'countries', 'users', 'events')",
    );
    assert.equal(r.rows[0].n, 4);
  }
});

test('placement: every row is on the shard PostgreSQL hash partitioning gives it, and nowhere else', async () => {
  let total = 0;
  for (const [shard, d] of direct.entries()) {
    const r = await d.query(
      `SELECT count(*)::int AS n,
              count(*) FILTER (WHERE NOT satisfies_hash_partition('hp_bigint'::regclass, 2, $1, id))::int AS misplaced
         FROM accounts`,
      [shard],
    );
    assert.equal(r.rows[0].misplaced, 0, `shard ${shard} holds rows of another shard`);
    assert.ok(r.rows[0].n > N / 4, `shard ${shard} has ${r.rows[0].n} rows: keys are not spread`);
    total += r.rows[0].n;
  }
  assert.equal(total, N);
});

test('single-shard reads and writes in both protocols run on the key’s shard only', async () => {
  const id = 42;
  const shard = shardOf('bigint', parseKey('bigint', String(id)), 2);
  const simple = await db.query(`SELECT owner, inet_server_port() AS port FROM accounts WHERE id = ${id}`);
  const extended = await db.query('SELECT owner, inet_server_port() AS port FROM accounts WHERE id = $1', [
    id,
  ]);
  const ports = clusters[shard]!.nodes.map((n) => n.port);
  assert.equal(simple.rows.length, 1);
  assert.ok(ports.includes(simple.rows[0].port), 'simple-protocol read ran on another shard');
  assert.ok(ports.includes(extended.rows[0].port), 'extended-protocol read ran on another shard');
  await db.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [id]);
  const upd = await db.query(`UPDATE accounts SET owner = 'changed' WHERE id = ${id}`);
  assert.equal(upd.rowCount, 1);
  const onShard = await direct[shard]!.query('SELECT owner FROM accounts WHERE id = $1', [id]);
  assert.equal(onShard.rows[0].owner, 'changed');
  await db.query(`UPDATE accounts SET owner = 'owner${id % 7}', balance = balance - 1 WHERE id = ${id}`);
  // IN within one shard
  const same = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    .filter((k) => shardOf('bigint', BigInt(k), 2) === shard)
    .slice(0, 3);
  const r = await db.query(`SELECT id FROM accounts WHERE id IN (${same.join(',')}) ORDER BY id`);
  assert.deepEqual(
    r.rows.map((x) => Number(x.id)),
    same,
  );
});

const SCATTER_QUERIES = [
  'SELECT id, owner, balance FROM accounts ORDER BY balance DESC, id LIMIT 10',
  'SELECT id, owner FROM accounts ORDER BY owner, id DESC LIMIT 7 OFFSET 5',
  'SELECT id, score FROM accounts ORDER BY score NULLS FIRST, id LIMIT 12',
  'SELECT id, score FROM accounts ORDER BY score DESC, id LIMIT 12',
  'SELECT id, born FROM accounts ORDER BY 2 DESC, 1 OFFSET 190',
  'SELECT count(*), sum(balance), min(balance), max(balance), avg(balance) FROM accounts',
  'SELECT count(score), sum(score), min(score), max(score) FROM accounts WHERE balance > 500',
  'SELECT owner, count(*) AS n, sum(balance) AS total, avg(balance) FROM accounts GROUP BY owner ORDER BY total DESC',
  'SELECT owner, max(born), min(id) FROM accounts GROUP BY 1 ORDER BY 1 LIMIT 3 OFFSET 1',
  'SELECT count(*) FROM accounts WHERE id > 1000',
  'SELECT sum(balance), avg(balance) FROM accounts WHERE id > 1000',
];

for (const sql of SCATTER_QUERIES) {
  test(`scatter equals the unsharded answer: ${sql}`, async () => {
    const expected = await rowsOf(copy, sql.replace(/\baccounts\b/, 'accounts_all'));
    assert.deepEqual(await rowsOf(db, sql), expected, 'simple protocol');
    // Extended protocol, with the LIMIT/OFFSET as parameters where there are any.
    const params: unknown[] = [];
    const text = sql.replace(/\b(LIMIT|OFFSET) (\d+)/g, (_m, kw: string, n: string) => {
      params.push(Number(n));
      return `${kw} $${params.length}`;
    });
    assert.deepEqual(await rowsOf(db, text, params), expected, 'extended protocol');
  });
}

test('avg over floats matches within rounding', async () => {
  const [[ours]] = (await rowsOf(db, 'SELECT avg(score) FROM accounts')) as number[][];
  const [[theirs]] = (await rowsOf(copy, 'SELECT avg(score) FROM accounts_all')) as number[][];
  assert.ok(Math.abs(Number(ours) - Number(theirs)) < 1e-9, `${ours} vs ${theirs}`);
});

test('text and uuid keys route by their hash', async () => {
  for (let i = 0; i < 20; i++) {
    await db.query('INSERT INTO users (email, name) VALUES ($1, $2)', [`user${i}@example.com`, `n${i}`]);
    const u = randomUUID();
    await db.query(`INSERT INTO events (user_id, seq) VALUES ('${u}', ${i})`);
    const s = shardOf('uuid', parseKey('uuid', u), 2);
    const r = await direct[s]!.query('SELECT 1 FROM events WHERE user_id = $1', [u]);
    assert.equal(r.rowCount, 1, 'uuid row not on its shard');
  }
  for (const [shard, d] of direct.entries()) {
    const r = await d.query('SELECT email FROM users');
    for (const row of r.rows) assert.equal(shardOf('text', row.email, 2), shard);
  }
  const got = await db.query("SELECT name FROM users WHERE email = 'user3@example.com'");
  assert.equal(got.rows[0].name, 'n3');
});

test('admin status lists every shard with its counts and servers', () => {
  const status = proxy.status() as {
    shards: { name: string; statements: { single: number; scatter: number }; servers: { role: string }[] }[];
    scatterQueries: number;
  };
  assert.deepEqual(
    status.shards.map((s) => s.name),
    ['shard0', 'shard1'],
  );
  for (const s of status.shards) {
    assert.ok(s.statements.single > 10, `${s.name} ran ${s.statements.single} single-shard statements`);
    assert.ok(s.statements.scatter > 10);
    assert.deepEqual(
      s.servers.map((x) => x.role),
      ['primary', 'replica'],
    );
  }
  assert.ok(status.scatterQueries >= SCATTER_QUERIES.length * 2);
});
