// Routing over two shards (each a primary + a streaming replica): placement checked on the servers with
// satisfies_hash_partition, single-shard reads and writes in both protocols, scatter queries compared
// with the same query on one unsharded copy of the data, hints, EXPLAIN ROUTE, refusals, reference and
// default-shard tables, read-your-writes tokens, metrics and /status.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { findPgBinDir, freePort } from '../../../src/topology/postgres.js';
import { atFileEnd } from '../../helpers/postgres.js';
import type pg from 'pg';
import { parseKey, shardOf } from '../../../src/db/shard/hash.js';
import type { DbProxy } from '../../../src/db/proxy.js';
import { connect, rowsOf, startClusters, startShardedProxy, TABLES } from './harness.js';
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
  const ours = (await rowsOf(db, 'SELECT avg(score) FROM accounts'))[0]![0];
  const theirs = (await rowsOf(copy, 'SELECT avg(score) FROM accounts_all'))[0]![0];
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

/** The error a statement gets through the proxy (fails the test if it succeeds). */
async function refusal(c: pg.Client, sql: string, params?: unknown[]): Promise<pg.DatabaseError> {
  try {
    await c.query(sql, params);
  } catch (err) {
    return err as pg.DatabaseError;
  }
  throw new Error(`expected a refusal for: ${sql}`);
}

test('statements that cannot be routed or merged are refused with why and how to pin a shard', async () => {
  const before = await Promise.all(direct.map((d) => d.query('SELECT sum(balance)::int AS s FROM accounts')));
  const cases: [string, RegExp, unknown[]?][] = [
    ['UPDATE accounts SET balance = 0', /without its shard key would touch every shard/],
    ['DELETE FROM accounts WHERE balance > 10', /without its shard key/],
    ['SELECT DISTINCT owner FROM accounts', /cannot be merged across shards: SELECT DISTINCT/],
    ['SELECT owner, count(*) FROM accounts GROUP BY owner HAVING count(*) > 1', /HAVING/],
    ['SELECT count(DISTINCT owner) FROM accounts', /DISTINCT/],
    ['SELECT sum(balance) + 1 FROM accounts', /an expression around sum/],
    ['SELECT id FROM accounts ORDER BY balance * 2 LIMIT 3', /ORDER BY an expression/],
    ['SELECT a.id FROM accounts a JOIN users u ON u.name = a.owner', /several sharded tables/],
    ['SELECT * FROM countries WHERE code IN (SELECT owner FROM accounts)', /inside a subquery/],
    [
      "INSERT INTO accounts (id, owner) VALUES (1001, 'x'), (1002, 'y'), (1003, 'z'), (1004, 'w')",
      /multi-row INSERT has keys on shards/,
    ],
    ["INSERT INTO accounts VALUES (1005, 'x')", /must name its columns/],
    ["INSERT INTO accounts (owner) VALUES ('x')", /does not give the shard key/],
    ['UPDATE accounts SET id = 5 WHERE id = 4', /changes the shard key column/],
    ["SELECT * FROM accounts WHERE id = 'abc'", /invalid input syntax for type bigint/],
    ['SELECT * FROM accounts WHERE id = $1', /invalid input syntax for type bigint/, ['12x']],
    ['SELECT * FROM accounts WHERE id = NULL', /shard key is NULL/],
    ['SELECT * FROM notes JOIN accounts ON accounts.id = notes.id', /default shard/],
  ];
  for (const [sql, expected, params] of cases) {
    const err = await refusal(db, sql, params);
    assert.match(err.message, expected, sql);
    assert.ok(err.message.startsWith('scaleout:'), `not the proxy's refusal: ${err.message}`);
    assert.ok(err.hint, `no hint for: ${sql}`);
  }
  // Nothing reached a server: the data is unchanged, and the session still works.
  const after = await Promise.all(direct.map((d) => d.query('SELECT sum(balance)::int AS s FROM accounts')));
  assert.deepEqual(
    after.map((r) => r.rows[0].s),
    before.map((r) => r.rows[0].s),
  );
  assert.equal((await db.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.ok(proxy.sharding!.refused >= cases.length);
});

test('a multi-row INSERT whose keys are all on one shard goes there', async () => {
  const keys = [2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008].filter(
    (k) => shardOf('bigint', BigInt(k), 2) === 1,
  );
  await db.query(`INSERT INTO accounts (id, owner) VALUES ${keys.map((k) => `(${k}, 'multi')`).join(', ')}`);
  const r = await direct[1]!.query("SELECT count(*)::int AS n FROM accounts WHERE owner = 'multi'");
  assert.equal(r.rows[0].n, keys.length);
  await db.query(`DELETE FROM accounts WHERE id IN (${keys.join(',')})`);
});

test('hints: /* scaleout:shard=K */, SET scaleout.shard and SET scaleout.shard_key', async () => {
  const port1 = clusters[1]!.nodes.map((n) => n.port);
  const port0 = clusters[0]!.nodes.map((n) => n.port);
  const hinted = await db.query(
    '/* scaleout:shard=1 */ SELECT count(*)::int AS n, inet_server_port() AS port FROM accounts',
  );
  assert.ok(port1.includes(hinted.rows[0].port));
  const byName = await db.query('/* scaleout:shard=shard0 */ SELECT inet_server_port() AS port');
  assert.ok(port0.includes(byName.rows[0].port));
  await db.query('SET scaleout.shard = 1');
  assert.equal((await db.query('SHOW scaleout.shard')).rows[0]['scaleout.shard'], '1');
  const forced = await db.query('SELECT count(*)::int AS n, inet_server_port() AS port FROM accounts');
  assert.ok(port1.includes(forced.rows[0].port));
  const direct1 = await direct[1]!.query('SELECT count(*)::int AS n FROM accounts');
  assert.equal(forced.rows[0].n, direct1.rows[0].n);
  await db.query('RESET scaleout.shard');
  const key = '77';
  const shard = shardOf('bigint', BigInt(key), 2);
  await db.query(`SET scaleout.shard_key = '${key}'`);
  const keyed = await db.query('SELECT inet_server_port() AS port FROM accounts LIMIT 1');
  assert.ok(clusters[shard]!.nodes.map((n) => n.port).includes(keyed.rows[0].port));
  await db.query('RESET scaleout.shard_key');
  assert.match((await refusal(db, 'SET scaleout.shard = 9')).message, /shards are 0…1/);
  assert.match((await refusal(db, '/* scaleout:shard=7 */ SELECT 1')).message, /unknown shard "7"/);
});

test('EXPLAIN ROUTE shows the shard or shards and why', async () => {
  const one = await db.query('EXPLAIN ROUTE SELECT * FROM accounts WHERE id = 42');
  assert.equal(one.rows.length, 1);
  assert.equal(one.rows[0].shards, `shard${shardOf('bigint', 42n, 2)}`);
  assert.equal(one.rows[0].shard_reason, 'shard-key');
  const all = await db.query('EXPLAIN ROUTE SELECT owner, avg(balance) FROM accounts GROUP BY owner LIMIT 2');
  assert.deepEqual(
    all.rows.map((r) => [r.route, r.shards, r.shard_reason]),
    [
      ['scatter', 'shard0', 'no-shard-key'],
      ['scatter', 'shard1', 'no-shard-key'],
    ],
  );
  assert.match(all.rows[0].detail, /runs: .*sum\(balance\).*count\(balance\)/);
  const ref = await db.query("EXPLAIN ROUTE INSERT INTO countries VALUES ('fr', 'France')");
  assert.deepEqual(
    ref.rows.map((r) => [r.route, r.shard_reason]),
    [
      ['all-shards', 'reference-write'],
      ['all-shards', 'reference-write'],
    ],
  );
  const refused = await db.query('EXPLAIN ROUTE UPDATE accounts SET balance = 0');
  assert.equal(refused.rows[0].route, 'refused');
  assert.match(refused.rows[0].detail, /touch every shard/);
});

test('reference tables: writes reach every shard, reads are answered by any shard', async () => {
  await db.query("INSERT INTO countries (code, name) VALUES ('fr', 'France'), ('jp', 'Japan')");
  await db.query("UPDATE countries SET name = 'Nippon' WHERE code = $1", ['jp']);
  for (const d of direct) {
    const r = await d.query('SELECT code, name FROM countries ORDER BY code');
    assert.deepEqual(r.rows, [
      { code: 'fr', name: 'France' },
      { code: 'jp', name: 'Nippon' },
    ]);
  }
  const ports = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const r = await db.query("SELECT name, inet_server_port() AS port FROM countries WHERE code = 'jp'");
    assert.equal(r.rows[0].name, 'Nippon');
    ports.add(r.rows[0].port);
  }
  assert.ok(ports.size >= 2, 'reference reads all went to one server');
  // A failing write is rolled back on every shard.
  const err = await refusal(db, "INSERT INTO countries (code, name) VALUES ('fr', 'dup')");
  assert.equal(err.code, '23505');
  for (const d of direct)
    assert.equal((await d.query('SELECT count(*)::int AS n FROM countries')).rows[0].n, 2);
  // Joining a sharded table with a reference table works pinned and scattered.
  await db.query("UPDATE accounts SET owner = 'fr' WHERE id = 3");
  const joined = await db.query(
    'SELECT a.id, c.name FROM accounts a JOIN countries c ON c.code = a.owner WHERE a.id = $1',
    [3],
  );
  assert.deepEqual(joined.rows, [{ id: '3', name: 'France' }]);
  const scattered = await db.query(
    'SELECT count(*)::int AS n FROM accounts a JOIN countries c ON c.code = a.owner',
  );
  assert.equal(scattered.rows[0].n, 1);
  await db.query("UPDATE accounts SET owner = 'owner3' WHERE id = 3");
});

test('tables not listed live on the default shard', async () => {
  await db.query("INSERT INTO notes (id, body) VALUES (1, 'hello')");
  const r = await db.query('SELECT body, inet_server_port() AS port FROM notes');
  assert.equal(r.rows[0].body, 'hello');
  assert.ok(clusters[0]!.nodes.map((n) => n.port).includes(r.rows[0].port));
});

test('transactions on one shard run there; touching a second shard is refused and aborts it', async () => {
  const a = 10;
  const sa = shardOf('bigint', BigInt(a), 2);
  const b = [11, 12, 13, 14, 15].find((k) => shardOf('bigint', BigInt(k), 2) !== sa)!;
  const sameShard = [16, 17, 18, 19, 20, 21].find((k) => shardOf('bigint', BigInt(k), 2) === sa)!;
  const c = await connect(url);
  await c.query('BEGIN');
  await c.query('UPDATE accounts SET balance = balance - 5 WHERE id = $1', [a]);
  await c.query(`UPDATE accounts SET balance = balance + 5 WHERE id = ${sameShard}`);
  await c.query('COMMIT');
  await c.query('BEGIN');
  await c.query('UPDATE accounts SET balance = 999999 WHERE id = $1', [a]);
  const err = await refusal(c, `UPDATE accounts SET balance = 999999 WHERE id = ${b}`);
  assert.match(err.message, /this transaction runs on shard/);
  assert.equal(err.code, '0A000');
  await refusal(c, 'SELECT 1'); // the transaction is aborted, as after any error
  await c.query('COMMIT'); // = ROLLBACK
  const r = await direct[sa]!.query('SELECT balance FROM accounts WHERE id = $1', [a]);
  assert.notEqual(r.rows[0].balance, 999999);
  // SET TRANSACTION after BEGIN goes along to whichever shard the transaction lands on.
  await c.query('BEGIN');
  await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await c.query(`UPDATE accounts SET balance = balance WHERE id = ${b}`);
  assert.equal(
    (await c.query('SHOW transaction_isolation')).rows[0].transaction_isolation,
    'repeatable read',
  );
  await c.query('COMMIT');
  // BEGIN … COMMIT with nothing in between, and a read-only transaction.
  await c.query('BEGIN');
  await c.query('COMMIT');
  await c.query('BEGIN READ ONLY');
  const ro = await c.query(`SELECT id FROM accounts WHERE id = ${a}`);
  assert.equal(ro.rows.length, 1);
  await c.query('COMMIT');
});

test('read-your-writes per shard: the token round-trips through SHOW and SET', async () => {
  const c = await connect(url);
  await c.query("UPDATE accounts SET owner = 'ryw' WHERE id = 5");
  const r = await c.query('SELECT owner FROM accounts WHERE id = 5');
  assert.equal(r.rows[0].owner, 'ryw');
  const token = (await c.query('SHOW scaleout.last_lsn')).rows[0]['scaleout.last_lsn'] as string;
  assert.match(token, /^0:[0-9A-F]+\/[0-9A-F]+,1:[0-9A-F]+\/[0-9A-F]+$/);
  const shard = shardOf('bigint', 5n, 2);
  assert.notEqual(token.split(',')[shard]!.split(':')[1], '0/0');
  const other = await connect(url);
  await other.query(`SET scaleout.last_lsn = '${token}'`);
  assert.equal((await other.query('SHOW scaleout.last_lsn')).rows[0]['scaleout.last_lsn'], token);
  assert.equal((await other.query('SELECT owner FROM accounts WHERE id = 5')).rows[0].owner, 'ryw');
  assert.match((await refusal(other, "SET scaleout.last_lsn = '0/16B3748'")).message, /invalid WAL position/);
});

test('utility statements: DROP/ALTER/INDEX on every shard, COPY and cursors only pinned, EXPLAIN of a scatter refused', async () => {
  await db.query('CREATE TABLE scratch (id bigint PRIMARY KEY)'); // default shard only
  await db.query('CREATE INDEX accounts_owner ON accounts (owner)');
  await db.query('ALTER TABLE accounts ADD COLUMN note text');
  for (const d of direct) {
    const r = await d.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'accounts_owner'");
    assert.equal(r.rows[0].n, 1);
  }
  await db.query('/* scaleout:shard=all */ DROP INDEX accounts_owner');
  await db.query('ALTER TABLE accounts DROP COLUMN note');
  assert.match((await refusal(db, 'COPY accounts FROM STDIN')).message, /COPY FROM a sharded table/);
  assert.match((await refusal(db, 'COPY accounts TO STDOUT')).message, /COPY TO/);
  assert.match(
    (await refusal(db, 'EXPLAIN SELECT * FROM accounts')).message,
    /EXPLAIN of a statement without/,
  );
  const plan = await db.query('EXPLAIN SELECT * FROM accounts WHERE id = 1');
  assert.ok(plan.rows.length > 0);
  assert.match((await refusal(db, 'LOCK TABLE accounts')).message, /cannot be routed/);
  const c = await connect(url);
  await c.query('BEGIN');
  await c.query('DECLARE cur CURSOR FOR SELECT id FROM accounts WHERE id = 9');
  assert.deepEqual((await c.query('FETCH ALL FROM cur')).rows, [{ id: '9' }]);
  await c.query('COMMIT');
  await db.query('DROP TABLE scratch');
  // DROP TABLE of a sharded table reaches every shard.
  await db.query('DROP TABLE users');
  await db.query('/* scaleout:shard=all */ CREATE TABLE everywhere (k int)');
  for (const d of direct) {
    const r = await d.query(
      "SELECT to_regclass('users') IS NULL AS dropped, to_regclass('everywhere') IS NOT NULL AS made",
    );
    assert.deepEqual(r.rows[0], { dropped: true, made: true });
  }
});

test('the CLI: scaleout db-proxy --config with shards logs every shard, serves, and its admin endpoint shows them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-shardcli-'));
  atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
  const [port, admin] = [await freePort(), await freePort()];
  const file = join(dir, 'scaleout.yaml');
  writeFileSync(
    file,
    [
      'database:',
      `  listen: 127.0.0.1:${port}`,
      `  admin: 127.0.0.1:${admin}`,
      '  shards:',
      ...clusters.map(
        (c, i) =>
          `    - { name: ${i ? 'east' : 'west'}, primary: "${c.primary.url}", replicas: ["${c.replicas[0]!.url}"] }`,
      ),
      '  sharded_tables:',
      ...TABLES.sharded_tables.map((t) => `    - { table: ${t.table}, key: ${t.key}, type: ${t.type} }`),
      '',
    ].join('\n'),
  );
  const child = spawn(
    process.execPath,
    [join(process.cwd(), 'dist', 'cli.js'), 'db-proxy', '--config', file],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  atFileEnd(async () => {
    child.kill('SIGTERM');
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if ((out.match(/"msg":"(west|east) (primary|replica)/g) ?? []).length >= 4) resolve();
    });
    child.once('exit', (code) => reject(new Error(`db-proxy exited with ${code}: ${out}`)));
  });
  const c = await connect(`postgres://${clusters[0]!.user}@127.0.0.1:${port}/${clusters[0]!.database}`);
  assert.equal((await c.query('SELECT count(*)::int AS n FROM accounts WHERE id = 11')).rows[0].n, 1);
  await c.query('SELECT count(*) FROM accounts');
  const status = (await (await fetch(`http://127.0.0.1:${admin}/status`)).json()) as {
    shards: {
      name: string;
      statements: { single: number; scatter: number };
      servers: { role: string; lagBytes?: number }[];
    }[];
    scatterQueries: number;
  };
  assert.deepEqual(
    status.shards.map((s) => s.name),
    ['west', 'east'],
  );
  assert.equal(status.scatterQueries, 1);
  assert.ok(status.shards.every((s) => s.servers.length === 2 && typeof s.servers[1]!.lagBytes === 'number'));
  const metrics = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  assert.match(metrics, /scaleout_db_scatter_queries_total 1/);
  assert.match(metrics, /scaleout_db_shard_statements_total\{shard="(west|east)",kind="single"\} 1/);
  // the scatter ran on both shards: one part each, in /metrics as in /status
  for (const shard of status.shards) {
    assert.equal(shard.statements.scatter, 1);
    assert.match(
      metrics,
      new RegExp(`scaleout_db_shard_statements_total\\{shard="${shard.name}",kind="scatter"\\} 1\\n`),
    );
  }
  const explain = (await (
    await fetch(
      `http://127.0.0.1:${admin}/explain?sql=${encodeURIComponent('UPDATE accounts SET balance = 1')}`,
    )
  ).json()) as {
    shard: { kind: string; message: string };
  };
  assert.equal(explain.shard.kind, 'refuse');
  assert.match(explain.shard.message, /touch every shard/);
});

test('pgbench through the sharded proxy in all three protocols, keyed on the shard key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-shardbench-'));
  atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'keyed.sql');
  writeFileSync(
    script,
    [
      `\\set id random(1, ${N})`,
      'UPDATE accounts SET balance = balance + 1 WHERE id = :id;',
      'SELECT balance FROM accounts WHERE id = :id;',
      '',
    ].join('\n'),
  );
  const port = new URL(url).port;
  for (const mode of ['simple', 'extended', 'prepared']) {
    // Asynchronously: the proxy runs in this process.
    const { stdout: out } = await promisify(execFile)(
      join(findPgBinDir(), 'pgbench'),
      [
        '-n',
        '-M',
        mode,
        '-f',
        script,
        '-c',
        '4',
        '-j',
        '2',
        '-t',
        '50',
        '-h',
        '127.0.0.1',
        '-p',
        port,
        '-U',
        clusters[0]!.user,
        clusters[0]!.database,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.match(out, /number of transactions actually processed: 200\/200/, `${mode}: ${out}`);
    assert.match(out, /number of failed transactions: 0/);
  }
});
