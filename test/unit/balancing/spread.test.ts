// Every algorithm over many picks: equal weights give near-equal shares, and every weight-aware
// algorithm gives shares in proportion to weight (round-robin ignores weights by design).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALGORITHMS } from '../../../src/balancing/index.js';
import { countPicks, endpoints, makeBalancer } from './helpers.js';

const PICKS = 24000;
const keyFor = (i: number) => `203.0.113.${i % 251}:${1024 + i}`;

for (const name of ALGORITHMS) {
  for (const n of [4, 12]) {
    test(`${name}: ${n} equal endpoints get near-equal shares`, () => {
      const balancer = makeBalancer(name, n);
      const list = endpoints(n);
      balancer.update(list);
      const counts = countPicks(balancer, PICKS, keyFor);
      const expected = PICKS / n;
      const tolerance = name === 'ring-hash' || name === 'maglev' ? 0.25 : 0.08;
      for (const e of list) {
        const c = counts.get(e.id) ?? 0;
        assert.ok(Math.abs(c / expected - 1) < tolerance, `${e.id}: ${c} vs ${expected}`);
      }
    });
  }

  if (name === 'round-robin') continue;
  test(`${name}: shares follow weights 1:2:3:6`, () => {
    const balancer = makeBalancer(name, 99);
    const weights = [1, 2, 3, 6];
    const list = endpoints(4, weights);
    balancer.update(list);
    const counts = countPicks(balancer, PICKS, keyFor);
    const tolerance = name === 'ring-hash' || name === 'maglev' ? 0.2 : 0.06;
    list.forEach((e, i) => {
      const expected = (PICKS * weights[i]!) / 12;
      const c = counts.get(e.id) ?? 0;
      assert.ok(
        Math.abs(c / expected - 1) < tolerance,
        `${e.id} (weight ${weights[i]}): ${c} vs ${expected}`,
      );
    });
  });
}

test('round-robin: ignores weights and rotates exactly', () => {
  const balancer = makeBalancer('round-robin');
  const list = endpoints(3, [1, 5, 10]);
  balancer.update(list);
  const counts = countPicks(balancer, 3000);
  assert.deepEqual([...counts.values()], [1000, 1000, 1000]);
});
