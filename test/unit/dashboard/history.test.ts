import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { History } from '../../../src/dashboard/history.js';

describe('History', () => {
  it('keeps series aligned on one time axis, with nulls where a series had no value', () => {
    const h = new History(10);
    h.record('a', { rps: 1 });
    h.commit(1000);
    h.record('a', { rps: 2 });
    h.record('b', { rps: 5, p99: 3 });
    h.commit(2000);
    h.commit(3000);
    const v = h.view();
    assert.deepEqual(v.times, [1, 2, 3]);
    assert.deepEqual(v.series.a, { rps: [1, 2, null] });
    assert.deepEqual(v.series.b, { rps: [null, 5, null], p99: [null, 3, null] });
    assert.deepEqual(h.tail('b', 'rps', 2), [5, null]);
    assert.deepEqual(h.view(['b'], 1), { times: [3], series: { b: { rps: [null], p99: [null] } } });
  });

  it('is bounded, and forgets a series not seen for the whole window', () => {
    const h = new History(3);
    h.record('gone', { rps: 1 });
    for (let i = 1; i <= 5; i++) {
      h.record('kept', { rps: i });
      h.commit(i * 1000);
    }
    const v = h.view();
    assert.deepEqual(v.times, [3, 4, 5]);
    assert.deepEqual(v.series.kept, { rps: [3, 4, 5] });
    assert.equal(v.series.gone, undefined);
    assert.equal(h.length, 3);
  });
});
