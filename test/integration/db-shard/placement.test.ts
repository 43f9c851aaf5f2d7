// Our shard function against the server's own: for many keys of every supported type, the remainder
// PostgreSQL's hash partitioning gives (satisfies_hash_partition on a real partitioned table) must equal
// shardOf(). Nothing here compares our code with a copy of itself.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, test } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import { parseKey, shardOf } from '../../../src/db/shard/hash.js';
import { SQL_TYPE_OF_KEY, type ShardKeyType } from '../../../src/db/config.js';
import { atFileEnd, startTestCluster, type PgCluster } from '../../helpers/postgres.js';

let cluster: PgCluster;
let db: pg.Client;

before(async () => {
  cluster = await startTestCluster({ replicas: 0 });
  db = new pg.Client({ connectionString: cluster.primary.url });
  await db.connect();
  atFileEnd(() => db.end());
  for (const [type, sqlType] of Object.entries(SQL_TYPE_OF_KEY)) {
    await db.query(`CREATE TABLE hp_${type} (k ${sqlType}) PARTITION BY HASH (k)`);
  }
});

/** The remainder the server gives each key for `modulus`, via satisfies_hash_partition. */
async function serverRemainders(type: ShardKeyType, keys: string[], modulus: number): Promise<number[]> {
  const res = await db.query<{ r: number }>(
    `SELECT (SELECT r FROM generate_series(0, $2 - 1) r
              WHERE satisfies_hash_partition('hp_${type}'::regclass, $2, r, k)) AS r
       FROM unnest($1::${SQL_TYPE_OF_KEY[type]}[]) WITH ORDINALITY AS u(k, i) ORDER BY i`,
    [keys, modulus],
  );
  return res.rows.map((row) => row.r);
}

const samples: Record<ShardKeyType, fc.Arbitrary<string>> = {
  bigint: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n).map(String),
  int: fc.integer().map(String),
  smallint: fc.integer({ min: -32768, max: 32767 }).map(String),
  // Any Unicode without NUL (text cannot hold it); lengths cross the 12-byte block boundaries.
  text: fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0')),
  uuid: fc.constant(null).map(() => randomUUID()),
};
const EDGES: Partial<Record<ShardKeyType, string[]>> = {
  bigint: ['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '4294967296', '-4294967297'],
  int: ['0', '-1', '2147483647', '-2147483648'],
  text: ['', 'a', 'abcdefghijkl', 'abcdefghijklm', 'é', '日本語のテキスト'],
  uuid: ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
};

for (const type of Object.keys(SQL_TYPE_OF_KEY) as ShardKeyType[]) {
  test(`${type} keys: shardOf equals the server's hash partition remainder`, async () => {
    const keys = [...(EDGES[type] ?? []), ...fc.sample(samples[type], { numRuns: 300, seed: 42 })];
    for (const modulus of [2, 3, 7]) {
      const expected = await serverRemainders(type, keys, modulus);
      const ours = keys.map((k) => shardOf(type, parseKey(type, k), modulus));
      const wrong = keys.filter((_, i) => ours[i] !== expected[i]);
      assert.deepEqual(wrong, [], `${type} modulus ${modulus}: keys placed differently from PostgreSQL`);
    }
  });
}
