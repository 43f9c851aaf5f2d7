import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyError, parseBinaryKey, parseKey, shardOf } from '../../../src/db/shard/hash.js';

test('keys of the wrong type are refused as the server would', () => {
  assert.throws(() => parseKey('bigint', 'abc'), KeyError);
  assert.throws(() => parseKey('bigint', '1.5'), KeyError);
  assert.throws(() => parseKey('int', '2147483648'), /out of range for type int/);
  assert.throws(() => parseKey('smallint', '40000'), /out of range/);
  assert.throws(() => parseKey('uuid', 'not-a-uuid'), /invalid input syntax for type uuid/);
  assert.throws(() => parseBinaryKey('bigint', Buffer.alloc(3)), /2, 4 or 8 bytes/);
});

test('equal values give the same shard however they are written', () => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(-12345n);
  assert.equal(
    shardOf('bigint', parseBinaryKey('bigint', b), 5),
    shardOf('bigint', parseKey('bigint', ' -12345'), 5),
  );
  const u = '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}';
  assert.equal(
    shardOf('uuid', parseKey('uuid', u), 3),
    shardOf('uuid', parseKey('uuid', 'a0eebc999c0b4ef8bb6d6bb9bd380a11'), 3),
  );
  // int and bigint hash alike for the same value (PostgreSQL folds int8 so cross-type hash joins work).
  for (const v of ['0', '7', '-7', '2147483647'])
    assert.equal(shardOf('int', parseKey('int', v), 7), shardOf('bigint', parseKey('bigint', v), 7));
});
