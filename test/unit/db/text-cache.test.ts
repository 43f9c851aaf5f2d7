import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TextCache } from '../../../src/db/text-cache.js';

test('the statement cache keeps at most its size, dropping the oldest entry first', () => {
  const cache = new TextCache<number>(2);
  assert.equal(cache.add('SELECT 1', 1), 1);
  cache.add('SELECT 2', 2);
  cache.add('SELECT 3', 3);
  assert.equal(cache.get('SELECT 1'), undefined);
  assert.equal(cache.get('SELECT 2'), 2);
  assert.equal(cache.get('SELECT 3'), 3);
});
