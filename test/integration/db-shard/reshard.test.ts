// `scaleout db reshard --from 2 --to 3` as a user runs it: rows of two sharded tables (bigint and text
// keys) and a reference table through a 2-shard proxy, then the CLI copies, verifies and switches;
// afterwards every row is accounted for, on the shard PostgreSQL's hash gives it for modulus 3, a proxy
// on the new config serves them all, and --rollback / --finish do what they say.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type pg from 'pg';
import { loadDatabaseConfigFile } from '../../../src/db/config.js';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';
import { connect, TABLES } from './harness.js';
import { DbProxy } from '../../../src/db/proxy.js';
import pino from 'pino';

const CLI = join(process.cwd(), 'dist', 'cli.js');
const ROWS = 600;
let clusters: PgCluster[];
let dir: string;
let configPath: string;
let direct: pg.Client[];

function configText(n: number): string {
  return [
    'database:',
    '  listen: 127.0.0.1:0',
    '  shards:',
    ...clusters.slice(0, n).map((c) => `    - primary: ${c.primary.url}`),
    '  sharded_tables:',
    ...TABLES.sharded_tables.map((t) => `    - { table: ${t.table}, key: ${t.key}, type: ${t.type} }`),
    `  reference_tables: [${TABLES.reference_tables.join(', ')}]`,
    '',
  ].join('\n');
}

async function proxyFor(path: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const proxy = new DbProxy(loadDatabaseConfigFile(path), pino({ level: 'silent' }));
  const { port } = await proxy.start();
  atFileEnd(() => proxy.stop());
  return {
    url: `postgres://${clusters[0]!.user}@127.0.0.1:${port}/${clusters[0]!.database}`,
    stop: () => proxy.stop(),
  };
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'db', 'reshard', '--config', configPath, ...args], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  clusters = await Promise.all([0, 1, 2].map(() => startTestCluster({ replicas: 0 })));
  dir = mkdtempSync(join(tmpdir(), 'scaleout-reshard-'));
  atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
  configPath = join(dir, 'scaleout.yaml');
  writeFileSync(configPath, configText(2));
  direct = await Promise.all(clusters.map((c) => connect(c.primary.url)));
  const { url, stop } = await proxyFor(configPath);
  const db = await connect(url);
  await db.query('CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2))');
  await db.query('CREATE TABLE users (email text PRIMARY KEY, name text)');
  await db.query('CREATE TABLE events (user_id uuid, seq int)'); // listed, and empty
  await db.query('CREATE TABLE countries (code text PRIMARY KEY, name text)');
  await db.query("INSERT INTO countries (code, name) VALUES ('fr', 'France'), ('jp', 'Japan')");
  for (let i = 1; i <= ROWS; i++) {
    await db.query('INSERT INTO accounts (id, owner, balance) VALUES ($1, $2, $3)', [i, `o'${i}`, i / 4]);
    if (i % 3 === 0) await db.query('INSERT INTO users (email, name) VALUES ($1, $2)', [`u${i}@x`, `n${i}`]);
  }
  await db.end();
  await stop();
  // The new server starts empty: no tables at all.
});

async function placement(n: number): Promise<{ ids: number[]; emails: string[] }> {
  const ids: number[] = [];
  const emails: string[] = [];
  for (const [shard, d] of direct.slice(0, n).entries()) {
    await d.query('CREATE TABLE IF NOT EXISTS hp_check_bigint (k bigint) PARTITION BY HASH (k)');
    await d.query('CREATE TABLE IF NOT EXISTS hp_check_text (k text) PARTITION BY HASH (k)');
    const a = await d.query(
      `SELECT id, satisfies_hash_partition('hp_check_bigint'::regclass, $1, $2, id) AS ok FROM accounts`,
      [n, shard],
    );
    const u = await d.query(
      `SELECT email, satisfies_hash_partition('hp_check_text'::regclass, $1, $2, email) AS ok FROM users`,
      [n, shard],
    );
    assert.ok(a.rows.every((r) => r.ok) && u.rows.every((r) => r.ok), `shard ${shard} holds misplaced rows`);
    ids.push(...a.rows.map((r) => Number(r.id)));
    emails.push(...u.rows.map((r) => r.email as string));
  }
  return { ids: ids.sort((a, b) => a - b), emails: emails.sort() };
}

const everyId = Array.from({ length: ROWS }, (_, i) => i + 1);

test('bad invocations are refused with a clear message', () => {
  const wrongFrom = cli('--from', '3', '--to', '4', '--new-shard', clusters[2]!.primary.url);
  assert.equal(wrongFrom.status, 2);
  assert.match(wrongFrom.stderr, /--from 3: the config lists 2 shards/);
  const noNew = cli('--from', '2', '--to', '3');
  assert.equal(noNew.status, 2);
  assert.match(noNew.stderr, /needs 1 --new-shard/);
});

test('2 → 3: copied, verified, switched, every row accounted for and placed for modulus 3', async () => {
  const r = cli('--from', '2', '--to', '3', '--new-shard', clusters[2]!.primary.url);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /\[#{30}\] 100%/);
  assert.match(r.stdout, /verified/);
  assert.match(r.stdout, new RegExp(`total\\s+${ROWS + ROWS / 3}\\s+${ROWS + ROWS / 3}`));
  assert.equal(loadDatabaseConfigFile(configPath).shards!.length, 3);
  const p = await placement(3);
  assert.deepEqual(p.ids, everyId);
  assert.equal(p.emails.length, ROWS / 3);
  for (const d of direct)
    assert.equal((await d.query('SELECT count(*)::int AS n FROM countries')).rows[0].n, 2);
  // The old layout is kept until confirmed.
  for (const d of direct.slice(0, 2))
    assert.equal(
      (await d.query("SELECT to_regclass('scaleout_old.accounts') IS NOT NULL AS kept")).rows[0].kept,
      true,
    );
  // A proxy on the new config serves every row, values intact.
  const { url } = await proxyFor(configPath);
  const db = await connect(url);
  const all = await db.query('SELECT count(*)::int AS n, sum(balance) AS s FROM accounts');
  assert.deepEqual(all.rows[0], { n: ROWS, s: `${(ROWS * (ROWS + 1)) / 8}.00` });
  const one = await db.query('SELECT owner, balance FROM accounts WHERE id = $1', [437]);
  assert.deepEqual(one.rows[0], { owner: "o'437", balance: '109.25' });
  assert.equal((await db.query("SELECT name FROM users WHERE email = 'u3@x'")).rows[0].name, 'n3');
});

test('--rollback returns to 2 shards with the old rows; a new reshard and --finish drop the old layout', async () => {
  const back = cli('--rollback');
  assert.equal(back.status, 0, back.stderr);
  assert.equal(loadDatabaseConfigFile(configPath).shards!.length, 2);
  const p = await placement(2);
  assert.deepEqual(p.ids, everyId);
  const again = cli('--from', '2', '--to', '3', '--new-shard', clusters[2]!.primary.url);
  assert.equal(again.status, 0, again.stderr);
  const done = cli('--finish');
  assert.equal(done.status, 0, done.stderr);
  for (const d of direct)
    assert.equal(
      (await d.query("SELECT to_regnamespace('scaleout_old') IS NULL AS gone")).rows[0].gone,
      true,
    );
  assert.deepEqual((await placement(3)).ids, everyId);
  assert.ok(!existsSync(`${configPath}.reshard.json`));
  assert.match(readFileSync(configPath, 'utf8'), /sharded_tables/);
});
