// The shard decision and the scatter rewrite as pure functions of the statement text (the real
// PostgreSQL parser, no server): what goes where, what is refused, what each shard is asked to run.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { loadParser } from '../../../src/db/classifier.js';
import { validateDatabaseConfig } from '../../../src/db/config.js';
import { Analyzer } from '../../../src/db/shard/analyze.js';
import { shardOf } from '../../../src/db/shard/hash.js';
import { ShardMap } from '../../../src/db/shard/map.js';
import { mergeRows, type Field } from '../../../src/db/shard/merge.js';
import type { MergePlan } from '../../../src/db/shard/merge-plan.js';
import { ShardRouter, type ShardDecision } from '../../../src/db/shard/router.js';

const config = validateDatabaseConfig(
  {
    shards: [0, 1, 2].map((i) => ({ primary: `postgres://app@127.0.0.1:${5000 + i}/app` })),
    sharded_tables: [{ table: 'accounts', key: 'id', type: 'bigint' }],
    reference_tables: ['countries'],
    default_shard: 2,
  },
  'test',
);
const map = new ShardMap(config);
const router = new ShardRouter(map);
const analyzer = new Analyzer(map);
const decide = (sql: string, params?: (string | null)[]): ShardDecision =>
  router.decide(
    sql,
    analyzer.analyze(sql),
    {},
    params && { formats: [], values: params.map((p) => (p === null ? null : Buffer.from(p))) },
  );
const shard = (k: bigint): number => shardOf('bigint', k, 3);

before(() => loadParser());

test('the key pins one shard: literals, casts, parameters, IN, qualified columns', () => {
  assert.deepEqual(decide('SELECT * FROM accounts WHERE id = 7'), {
    kind: 'shard',
    shard: shard(7n),
    reason: 'shard-key',
  });
  assert.equal(
    (decide("SELECT * FROM accounts a WHERE a.id = '7'::bigint AND a.x > 1") as { shard: number }).shard,
    shard(7n),
  );
  assert.equal((decide('SELECT * FROM public.accounts WHERE 7 = id') as { shard: number }).shard, shard(7n));
  assert.equal(
    (decide('UPDATE accounts SET x = 1 WHERE id = $1', ['7']) as { shard: number }).shard,
    shard(7n),
  );
  assert.equal(
    (decide('INSERT INTO accounts (x, id) VALUES (1, $2)', ['x', '7']) as { shard: number }).shard,
    shard(7n),
  );
  assert.equal((decide('DELETE FROM accounts WHERE id IN (7, 7)') as { shard: number }).shard, shard(7n));
});

test('without the key: a scatter for a mergeable SELECT, a refusal otherwise, never a default shard', () => {
  assert.equal(decide('SELECT * FROM accounts').kind, 'scatter');
  assert.equal(decide('SELECT * FROM accounts WHERE id = 1 OR id = 2').kind, 'scatter');
  for (const sql of [
    'UPDATE accounts SET x = 1',
    'SELECT DISTINCT x FROM accounts',
    'DELETE FROM accounts WHERE x = 1',
  ])
    assert.equal(decide(sql).kind, 'refuse', sql);
  const ins = decide('INSERT INTO accounts (id) VALUES (1), (2), (3), (4), (5)');
  assert.equal(ins.kind, [1n, 2n, 3n, 4n, 5n].every((k) => shard(k) === shard(1n)) ? 'shard' : 'refuse');
});

test('reference, default-shard and table-less statements', () => {
  assert.deepEqual(decide('SELECT * FROM countries'), {
    kind: 'shard',
    shard: 2,
    reason: 'reference-read',
    any: true,
  });
  assert.deepEqual(decide("INSERT INTO countries VALUES ('x')"), { kind: 'all', reason: 'reference-write' });
  assert.deepEqual(decide('SELECT * FROM notes'), { kind: 'shard', shard: 2, reason: 'default-shard' });
  assert.deepEqual(decide('SELECT now()'), { kind: 'shard', shard: 2, reason: 'no-table', any: true });
  assert.deepEqual(decide('CREATE INDEX ON accounts (x)'), { kind: 'all', reason: 'sharded-table-ddl' });
  assert.deepEqual(decide('DROP TABLE countries'), { kind: 'all', reason: 'reference-table-ddl' });
});

test('wrong key types and NULL keys are refused with the SQLSTATE the server would use', () => {
  const bad = decide('SELECT * FROM accounts WHERE id = $1', ['seven']) as { kind: string; code: string };
  assert.deepEqual([bad.kind, bad.code], ['refuse', '22P02']);
  assert.equal((decide('SELECT * FROM accounts WHERE id = $1', [null]) as { code: string }).code, '23502');
  assert.equal(
    (decide('SELECT * FROM accounts WHERE id = 99999999999999999999') as { code: string }).code,
    '22P02',
  );
});

test('the scatter rewrite: LIMIT+OFFSET pushed down, avg as sum plus a hidden count', () => {
  const plan = (sql: string): MergePlan => (decide(sql) as { plan: MergePlan }).plan;
  assert.equal(
    plan('SELECT id FROM accounts ORDER BY id LIMIT 5 OFFSET 10').sql,
    'SELECT id FROM accounts ORDER BY id LIMIT (5+10) OFFSET 0',
  );
  assert.equal(
    plan('SELECT id FROM accounts ORDER BY id LIMIT $1 OFFSET $2').sql,
    'SELECT id FROM accounts ORDER BY id LIMIT (($1)::bigint+($2)::bigint) OFFSET (($2)::bigint*0)',
  );
  assert.equal(
    plan('SELECT x, avg(y) FROM accounts GROUP BY x LIMIT 3').sql,
    'SELECT x, sum(y) , count(y) AS "scaleout_avg_count_1" FROM accounts GROUP BY x LIMIT ALL',
  );
});

test('merging: NULLs sort as PostgreSQL sorts them, aggregates combine exactly', () => {
  const f = (name: string, typeOid: number): Field => ({
    name,
    tableOid: 0,
    column: 0,
    typeOid,
    typeLen: -1,
    typeMod: -1,
    format: 0,
  });
  const b = (v: string | null): Buffer | null => (v === null ? null : Buffer.from(v));
  const sorted = mergeRows(
    {
      sql: '',
      aggregates: undefined,
      avgCount: new Map(),
      hidden: 0,
      order: [{ col: 1, desc: false, nullsFirst: false }],
      limit: { text: '4' },
    },
    [f('n', 1700)],
    [
      [[b('10.5')], [b(null)]],
      [[b('-2')], [b('9.99')], [b('100')]],
    ],
  );
  assert.deepEqual(
    sorted.rows.map((r) => r[0]?.toString() ?? null),
    ['-2', '9.99', '10.5', '100'],
  );
  const agg = mergeRows(
    {
      sql: '',
      aggregates: ['count', 'sum', 'min', 'avg'],
      avgCount: new Map([[3, 4]]),
      hidden: 1,
      order: [],
    },
    [f('count', 20), f('sum', 1700), f('min', 23), f('sum', 20), f('scaleout_avg_count_3', 20)],
    [
      [[b('2'), b('9223372036854775807'), b('5'), b('3'), b('2')]],
      [[b('1'), b('1.25'), b('-4'), b('4'), b('2')]],
    ],
  );
  assert.deepEqual(
    agg.fields.map((x) => [x.name, x.typeOid]),
    [
      ['count', 20],
      ['sum', 1700],
      ['min', 23],
      ['avg', 1700],
    ],
  );
  assert.deepEqual(
    agg.rows[0]!.map((v) => v?.toString()),
    ['3', '9223372036854775808.25', '-4', '1.7500000000000000'],
  );
});
