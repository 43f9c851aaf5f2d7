import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBalancer } from '../../../src/balancing/index.js';
import { countPicks, endpoint, endpoints, type TestEndpoint } from './helpers.js';

const wrr = () => createBalancer<TestEndpoint>('weighted-round-robin');

function sequence(balancer: ReturnType<typeof wrr>, count: number): string[] {
  return Array.from({ length: count }, () => balancer.select().next()!.id);
}

test('shares are exact in every cycle of sum(weights) picks, for any whole-number weights', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }), (weights) => {
      const balancer = wrr();
      const list = endpoints(weights.length, weights);
      balancer.update(list);
      const cycle = weights.reduce((a, b) => a + b, 0);
      for (let c = 0; c < 4; c++) {
        const counts = new Map<string, number>();
        for (const id of sequence(balancer, cycle)) counts.set(id, (counts.get(id) ?? 0) + 1);
        list.forEach((e, i) => assert.equal(counts.get(e.id) ?? 0, weights[i], `cycle ${c}, ${e.id}`));
      }
    }),
    { numRuns: 200 },
  );
});

test('turns are interleaved evenly: no endpoint waits much longer than sum/weight picks', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 2, maxLength: 6 }), (weights) => {
      const balancer = wrr();
      const list = endpoints(weights.length, weights);
      balancer.update(list);
      const total = weights.reduce((a, b) => a + b, 0);
      const picks = sequence(balancer, total * 6);
      list.forEach((e, i) => {
        const positions = picks.flatMap((id, p) => (id === e.id ? [p] : []));
        for (let k = 1; k < positions.length; k++) {
          // Stride scheduling bounds each gap by the ideal gap plus one pick per other endpoint.
          const gap = positions[k]! - positions[k - 1]!;
          assert.ok(
            gap <= Math.ceil(total / weights[i]!) + weights.length,
            `gap ${gap} for weight ${weights[i]}`,
          );
        }
      });
    }),
    { numRuns: 200 },
  );
});

test('weights {5,1,1} interleave as a a a b c a a; equal weights rotate', () => {
  const balancer = wrr();
  balancer.update([endpoint('a', 5), endpoint('b', 1), endpoint('c', 1)]);
  assert.deepEqual(sequence(balancer, 14).join(''), 'aaabcaaaaabcaa');
  const equal = wrr();
  equal.update([endpoint('x'), endpoint('y'), endpoint('z')]);
  assert.equal(sequence(equal, 7).join(''), 'xyzxyzx');
});

test('fractional weights get proportional shares', () => {
  const balancer = wrr();
  const list = [endpoint('a', 0.25), endpoint('b', 1.5), endpoint('c', 0.75)];
  balancer.update(list);
  const counts = countPicks(balancer, 2500);
  assert.deepEqual([counts.get('a'), counts.get('b'), counts.get('c')], [250, 1500, 750]);
});

test('a weight change (slow start) takes effect smoothly and keeps other endpoints in rotation', () => {
  const balancer = wrr();
  const list = [endpoint('old-1', 1), endpoint('old-2', 1), endpoint('new', 0.1)];
  balancer.update(list);
  const counts = countPicks(balancer, 210);
  assert.ok(counts.get('new')! >= 9 && counts.get('new')! <= 11, `new got ${counts.get('new')} at 0.1`);
  // Ramp the newcomer up in small steps, as slow start does, then check the steady state.
  for (let step = 2; step <= 10; step++) {
    list[2]!.weight = step / 10;
    balancer.update(list);
    const picks = countPicks(balancer, 30);
    assert.ok(picks.get('old-1')! >= 8 && picks.get('old-2')! >= 8, 'old endpoints keep their turns');
  }
  assert.deepEqual([...countPicks(balancer, 300).values()].sort(), [100, 100, 100]);
});

test('an endpoint added later joins in without a burst and shares stay exact', () => {
  const balancer = wrr();
  const list = endpoints(3);
  balancer.update(list);
  sequence(balancer, 100);
  const added = endpoint('added');
  balancer.update([...list, added]);
  const next = sequence(balancer, 8);
  assert.ok(next.filter((id) => id === 'added').length <= 2, `no burst: ${next.join(',')}`);
  const counts = countPicks(balancer, 4000);
  for (const c of counts.values()) assert.ok(Math.abs(c - 1000) <= 1, `${c}`);
});

test('removing an endpoint leaves the others exact', () => {
  const balancer = wrr();
  const list = endpoints(4, [3, 2, 1, 4]);
  balancer.update(list);
  sequence(balancer, 7);
  balancer.update([list[0]!, list[1]!, list[3]!]);
  const counts = countPicks(balancer, 900);
  assert.ok(Math.abs(counts.get(list[0]!.id)! - 300) <= 1, 'share of weight 3');
  assert.ok(Math.abs(counts.get(list[1]!.id)! - 200) <= 1, 'share of weight 2');
  assert.ok(Math.abs(counts.get(list[3]!.id)! - 400) <= 1, 'share of weight 4');
});

test('stays exact across the virtual-time rebase after 2^20 cycles', () => {
  const balancer = wrr();
  const list = endpoints(3, [1, 2, 3]);
  balancer.update(list);
  for (let i = 0; i < 6 * 2 ** 20 + 6; i++) balancer.select();
  const counts = countPicks(balancer, 6000);
  assert.deepEqual(
    [counts.get(list[0]!.id), counts.get(list[1]!.id), counts.get(list[2]!.id)],
    [1000, 2000, 3000],
  );
});
