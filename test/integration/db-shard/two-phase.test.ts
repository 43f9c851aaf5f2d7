// Transactions over two shards with two_phase_commit on: atomic commit and rollback, an error in the
// middle, a proxy "crash" between PREPARE and COMMIT PREPARED (before and after the decision) and the
// recovery a restarted proxy does; then one shard down while the other keeps serving.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { freePort } from '../../../src/topology/postgres.js';
import { atFileEnd } from '../../helpers/postgres.js';
import type pg from 'pg';
import { shardOf } from '../../../src/db/shard/hash.js';
import type { DbProxy } from '../../../src/db/proxy.js';
import { connect, startClusters, startShardedProxy } from './harness.js';
import type { PgCluster } from '../../helpers/postgres.js';

let clusters: PgCluster[];
let proxy: DbProxy;
let stopProxy: () => Promise<void>;
let url: string;
let direct: pg.Client[];

/** Two keys on different shards. */
const A = 1;
const B = [2, 3, 4, 5, 6, 7].find((k) => shardOf('bigint', BigInt(k), 2) !== shardOf('bigint', 1n, 2))!;
const SA = shardOf('bigint', BigInt(A), 2);
const SB = 1 - SA;

before(async () => {
  clusters = await startClusters(2, { max_prepared_transactions: '10' });
  ({ proxy, url, stop: stopProxy } = await startShardedProxy(clusters, { two_phase_commit: true }));
  direct = await Promise.all(clusters.map((c) => connect(c.primary.url)));
  const db = await connect(url);
  await db.query('CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0))');
  await db.query(`INSERT INTO accounts (id, balance) VALUES (${A}, 100)`);
  await db.query(`INSERT INTO accounts (id, balance) VALUES (${B}, 100)`);
});

async function balances(): Promise<number[]> {
  const a = await direct[SA]!.query('SELECT balance FROM accounts WHERE id = $1', [A]);
  const b = await direct[SB]!.query('SELECT balance FROM accounts WHERE id = $1', [B]);
  return [a.rows[0].balance, b.rows[0].balance];
}

async function prepared(): Promise<string[][]> {
  return Promise.all(
    direct.map(async (d) =>
      (await d.query('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows.map((r) => r.gid),
    ),
  );
}

test('a transfer across shards commits on both, with two-phase commit', async () => {
  const c = await connect(url);
  await c.query('BEGIN');
  await c.query('UPDATE accounts SET balance = balance - 30 WHERE id = $1', [A]);
  await c.query(`UPDATE accounts SET balance = balance + 30 WHERE id = ${B}`);
  // Reads in the transaction see its own writes, on both shards (a scatter inside the transaction).
  const inside = await c.query('SELECT sum(balance)::int AS total FROM accounts');
  assert.equal(inside.rows[0].total, 200);
  await c.query('COMMIT');
  assert.deepEqual(await balances(), [70, 130]);
  assert.deepEqual(await prepared(), [[], []]);
  const decisions = await direct[Math.min(SA, SB)]!.query(
    'SELECT count(*)::int AS n FROM scaleout_2pc_decisions',
  );
  assert.equal(decisions.rows[0].n, 1, 'the coordinator recorded the decision');
  assert.ok(Number(await metric('scaleout_db_two_phase_commits_total{outcome="committed"}')) >= 1);
});

test('ROLLBACK, and an error on one shard, undo the work on every shard', async () => {
  const c = await connect(url);
  await c.query('BEGIN');
  await c.query('UPDATE accounts SET balance = balance - 10 WHERE id = $1', [A]);
  await c.query(`UPDATE accounts SET balance = balance + 10 WHERE id = ${B}`);
  await c.query('ROLLBACK');
  assert.deepEqual(await balances(), [70, 130]);
  await c.query('BEGIN');
  await c.query(`UPDATE accounts SET balance = balance + 500 WHERE id = ${A}`);
  await assert.rejects(
    c.query(`UPDATE accounts SET balance = balance - 500 WHERE id = ${B}`),
    /check constraint/,
  );
  await assert.rejects(c.query('SELECT 1'), /current transaction is aborted/);
  const end = await c.query('COMMIT');
  assert.equal(end.command, 'ROLLBACK');
  assert.deepEqual(await balances(), [70, 130]);
  assert.deepEqual(await prepared(), [[], []]);
});

async function metric(name: string): Promise<string | undefined> {
  const text = await proxy.metrics.registry.metrics();
  return text
    .split('\n')
    .find((l) => l.startsWith(name))
    ?.split(' ')[1];
}

/** Stops the proxy as a crash would leave things (its connections gone), then starts a new one. */
async function restartProxy(rollbackAfterMs = 0): Promise<void> {
  await stopProxy();
  ({
    proxy,
    url,
    stop: stopProxy,
  } = await startShardedProxy(clusters, {
    two_phase_commit: true,
    two_phase_rollback_after_ms: rollbackAfterMs,
  }));
}

test('a crash after PREPARE, before the decision: the restarted proxy rolls back every shard', async () => {
  const c = await connect(url);
  await c.query('BEGIN');
  await c.query(`UPDATE accounts SET balance = balance - 1 WHERE id = ${A}`);
  await c.query(`UPDATE accounts SET balance = balance + 1 WHERE id = ${B}`);
  proxy.sharding!.twoPhase.crashAfter = 'prepare';
  await assert.rejects(c.query('COMMIT'), /simulated crash/);
  const left = await prepared();
  assert.equal(left[0]!.length + left[1]!.length, 2, 'both shards hold a prepared transaction');
  assert.deepEqual(await balances(), [70, 130], 'prepared, not committed');
  // Undecided and young: it could be another proxy's commit in flight, so it is left alone …
  await restartProxy(60_000);
  assert.equal((await prepared()).flat().length, 2);
  // … until it is older than two_phase_rollback_after_ms.
  await restartProxy(0);
  assert.deepEqual(await prepared(), [[], []]);
  assert.deepEqual(await balances(), [70, 130]);
});

test('a crash after the coordinator committed: the restarted proxy commits the rest', async () => {
  const c = await connect(url);
  await c.query('BEGIN');
  await c.query(`UPDATE accounts SET balance = balance - 5 WHERE id = ${A}`);
  await c.query(`UPDATE accounts SET balance = balance + 5 WHERE id = ${B}`);
  proxy.sharding!.twoPhase.crashAfter = 'coordinator-commit';
  await assert.rejects(c.query('COMMIT'), /simulated crash/);
  const left = await prepared();
  assert.equal(left[0]!.length + left[1]!.length, 1, 'one shard still holds its prepared part');
  await restartProxy();
  assert.deepEqual(await prepared(), [[], []]);
  assert.deepEqual(await balances(), [65, 135]);
  assert.equal(await metric('scaleout_db_two_phase_commits_total{outcome="recovered-commit"}'), '1');
});

test('a real crash: the CLI proxy killed (SIGKILL) between PREPARE and COMMIT PREPARED, then restarted', async () => {
  await stopProxy(); // one proxy at a time on these shards
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-2pc-crash-'));
  atFileEnd(async () => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const file = join(dir, 'scaleout.yaml');
  writeFileSync(
    file,
    [
      'database:',
      `  listen: 127.0.0.1:${port}`,
      '  two_phase_commit: true',
      '  shards:',
      ...clusters.map((c) => `    - primary: "${c.primary.url}"`),
      '  sharded_tables: [{ table: accounts, key: id, type: bigint }]',
      '',
    ].join('\n'),
  );
  const start = async (env: Record<string, string>): Promise<ReturnType<typeof spawn>> => {
    const child = spawn(
      process.execPath,
      [join(process.cwd(), 'dist', 'cli.js'), 'db-proxy', '--config', file],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      },
    );
    atFileEnd(async () => void child.kill('SIGKILL'));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`db-proxy exited with ${code}: ${out}`)));
    });
    return child;
  };
  const crashing = await start({ SCALEOUT_TEST_CRASH_2PC_AFTER: 'coordinator-commit' });
  const proxyUrl = `postgres://${clusters[0]!.user}@127.0.0.1:${port}/${clusters[0]!.database}`;
  const c = await connect(proxyUrl);
  await c.query('BEGIN');
  await c.query(`UPDATE accounts SET balance = balance - 10 WHERE id = ${A}`);
  await c.query(`UPDATE accounts SET balance = balance + 10 WHERE id = ${B}`);
  const exited = new Promise<NodeJS.Signals | null>((r) =>
    crashing.once('exit', (_code, signal) => r(signal)),
  );
  await assert.rejects(c.query('COMMIT'));
  assert.equal(await exited, 'SIGKILL');
  const left = await prepared();
  assert.equal(left[0]!.length + left[1]!.length, 1, 'the second shard is left prepared, in doubt');
  const restarted = await start({});
  const after = await connect(proxyUrl);
  assert.deepEqual(await prepared(), [[], []], 'recovered at start');
  assert.deepEqual(await balances(), [55, 145]);
  assert.equal((await after.query(`SELECT balance FROM accounts WHERE id = ${B}`)).rows[0].balance, 145);
  restarted.kill('SIGTERM');
  await new Promise((r) => restarted.once('exit', r));
  ({ proxy, url, stop: stopProxy } = await startShardedProxy(clusters, { two_phase_commit: true }));
});

test('one shard down: its statements fail clearly, the other shard keeps serving', async () => {
  const c = await connect(url);
  await clusters[SB]!.primary.stop('immediate');
  // Writes to the healthy shard work, reads of the down shard's keys still reach its replica.
  await c.query(`UPDATE accounts SET balance = balance + 1 WHERE id = ${A}`);
  const read = await c.query(`SELECT balance FROM accounts WHERE id = ${B}`);
  assert.equal(read.rows[0].balance, 145);
  const err = await c
    .query(`UPDATE accounts SET balance = 0 WHERE id = ${B}`)
    .catch((e: pg.DatabaseError) => e);
  assert.ok(err instanceof Error);
  assert.match(err.message, new RegExp(`shard shard${SB}: the primary .* is unavailable`));
  assert.equal((err as pg.DatabaseError).code, '08006');
  // A scatter read still has a replica on every shard; a write every shard must take is refused whole.
  const total = await c.query('SELECT count(*)::int AS n FROM accounts');
  assert.equal(total.rows[0].n, 2);
  await assert.rejects(
    c.query('CREATE INDEX ON accounts (balance)'),
    new RegExp(`shard shard${SB} .*unavailable`),
  );
  // The session survives, and the healthy shard still answers.
  const again = await c.query(`SELECT balance FROM accounts WHERE id = ${A}`);
  assert.equal(again.rows[0].balance, 56);
});
