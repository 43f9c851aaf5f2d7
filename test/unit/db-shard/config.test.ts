import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterSpecs, ConfigError, validateDatabaseConfig } from '../../../src/db/config.js';

const url = (port: number): string => `postgres://app@127.0.0.1:${port}/app`;

test('the unsharded form is unchanged: one cluster from primary + replicas', () => {
  const c = validateDatabaseConfig({ primary: url(5432), replicas: [url(5433)] }, 'test');
  assert.deepEqual(clusterSpecs(c), [{ name: 'main', primary: url(5432), replicas: [url(5433)] }]);
  assert.equal(c.shards, undefined);
});

test('a shard map: shards, sharded tables, reference tables, default shard', () => {
  const c = validateDatabaseConfig(
    {
      shards: [
        { primary: url(1), replicas: [url(2)] },
        { name: 'east', primary: url(3) },
      ],
      sharded_tables: [{ table: 'Accounts', key: 'ID', type: 'bigint' }],
      reference_tables: ['public.countries'],
      default_shard: 1,
    },
    'test',
  );
  assert.deepEqual(
    clusterSpecs(c).map((s) => [s.name, s.primary, s.replicas.length]),
    [
      ['shard0', url(1), 1],
      ['east', url(3), 0],
    ],
  );
  assert.deepEqual(c.sharded_tables, [{ table: 'accounts', key: 'id', type: 'bigint' }]);
  assert.deepEqual(c.reference_tables, ['public.countries']);
  assert.equal(c.two_phase_commit, false);
});

for (const [name, raw, expected] of [
  ['neither primary nor shards', {}, /database\.primary: required/],
  ['both primary and shards', { primary: url(1), shards: [{ primary: url(2) }] }, /either primary/],
  ['default shard out of range', { shards: [{ primary: url(1) }], default_shard: 1 }, /below the number/],
  [
    'a table listed twice',
    {
      shards: [{ primary: url(1) }],
      sharded_tables: [{ table: 't', key: 'k', type: 'int' }],
      reference_tables: ['t'],
    },
    /reference_tables\.0: "t" is also listed/,
  ],
  [
    'an unknown key type',
    { shards: [{ primary: url(1) }], sharded_tables: [{ table: 't', key: 'k', type: 'float' }] },
    /sharded_tables\.0\.type/,
  ],
  [
    'sharded tables without shards',
    { primary: url(1), sharded_tables: [], reference_tables: ['x'] },
    /needs shards/,
  ],
] as const) {
  test(`config refused: ${name}`, () => {
    assert.throws(
      () => validateDatabaseConfig(raw, 'f.yaml'),
      (err: Error) => err instanceof ConfigError && expected.test(err.message),
    );
  });
}
