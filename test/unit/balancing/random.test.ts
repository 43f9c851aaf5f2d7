// random and power-of-two: weights respected statistically, with a seeded random source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBalancer } from '../../../src/balancing/index.js';
import { countPicks, endpoint, endpoints, seededRandom, type TestEndpoint } from './helpers.js';

const PICKS = 20000;

for (const name of ['random', 'power-of-two'] as const) {
  test(`${name}: shares follow weights within statistical tolerance (idle endpoints)`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.1, max: 10, noNaN: true }), { minLength: 2, maxLength: 6 }),
        fc.integer(),
        (weights, seed) => {
          const balancer = createBalancer<TestEndpoint>(name, { random: seededRandom(seed) });
          const list = endpoints(weights.length, weights);
          balancer.update(list);
          const counts = countPicks(balancer, PICKS);
          const total = weights.reduce((a, b) => a + b, 0);
          list.forEach((e, i) => {
            const expected = (PICKS * weights[i]!) / total;
            // Five standard deviations of a binomial count: fails by chance about once in 3 million.
            const sd = Math.sqrt(expected * (1 - weights[i]! / total));
            assert.ok(
              Math.abs((counts.get(e.id) ?? 0) - expected) <= 5 * sd + 1,
              `${e.id}: ${counts.get(e.id)} vs ${expected}`,
            );
          });
        },
      ),
      { numRuns: 25 },
    );
  });

  test(`${name}: the random source is used, so a seed reproduces the same picks`, () => {
    const run = (seed: number) => {
      const balancer = createBalancer<TestEndpoint>(name, { random: seededRandom(seed) });
      balancer.update(endpoints(5));
      return Array.from({ length: 50 }, () => balancer.select().next()!.id).join();
    };
    assert.equal(run(7), run(7));
    assert.notEqual(run(7), run(8));
  });
}

test('power-of-two: the pick is the less loaded of two distinct samples, the other is the first retry', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(10), { minLength: 2, maxLength: 10 }), fc.integer(), (loads, seed) => {
      const list = loads.map((load, i) => ({ ...endpoint(`e${i}`), outstanding: load }));
      const balancer = createBalancer<TestEndpoint>('power-of-two', { random: seededRandom(seed) });
      balancer.update(list);
      for (let i = 0; i < 20; i++) {
        const selection = balancer.select();
        const first = selection.next()!;
        const second = selection.next()!;
        assert.notEqual(first, second);
        assert.ok(first.outstanding <= second.outstanding, `${first.outstanding} > ${second.outstanding}`);
      }
    }),
    { numRuns: 200 },
  );
});

test('power-of-two: load steers traffic away from a busy endpoint but never starves it of samples', () => {
  const list = endpoints(4);
  list[0]!.outstanding = 50;
  const balancer = createBalancer<TestEndpoint>('power-of-two', { random: seededRandom(3) });
  balancer.update(list);
  const counts = countPicks(balancer, 4000);
  assert.equal(counts.get(list[0]!.id) ?? 0, 0, 'the busy endpoint loses every comparison');
  for (const e of list.slice(1))
    assert.ok(Math.abs(counts.get(e.id)! - 4000 / 3) < 150, `${counts.get(e.id)}`);
});

test('power-of-two: weights count in the load comparison (outstanding per unit of weight)', () => {
  const heavy = { ...endpoint('heavy', 4), outstanding: 6 };
  const light = { ...endpoint('light', 1), outstanding: 2 };
  const balancer = createBalancer<TestEndpoint>('power-of-two', { random: seededRandom(5) });
  balancer.update([heavy, light]);
  for (let i = 0; i < 20; i++) assert.equal(balancer.select().next(), heavy); // 1.5 < 2
});

test('power-of-two: a single endpoint is offered once', () => {
  const balancer = createBalancer<TestEndpoint>('power-of-two');
  const only = endpoint('only');
  balancer.update([only]);
  const selection = balancer.select();
  assert.equal(selection.next(), only);
  assert.equal(selection.next(), undefined);
});
