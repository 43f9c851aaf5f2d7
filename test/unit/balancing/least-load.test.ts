import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBalancer } from '../../../src/balancing/index.js';
import { countPicks, endpoint, endpoints, type TestEndpoint } from './helpers.js';

const counters = {
  'least-outstanding': 'outstanding',
  'least-connections': 'connections',
} as const;

for (const [name, counter] of Object.entries(counters) as [
  keyof typeof counters,
  'outstanding' | 'connections',
][]) {
  const other = counter === 'outstanding' ? 'connections' : 'outstanding';

  test(`${name}: always picks an endpoint with the lowest ${counter} per unit of weight`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.nat(20), fc.nat(20)), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.array(fc.tuple(fc.nat(19), fc.integer({ min: -1, max: 1 })), { maxLength: 60 }),
        (initial, changes) => {
          const balancer = createBalancer<TestEndpoint>(name);
          const list = initial.map(([w, load, noise], i) => ({
            ...endpoint(`e${i}`, w),
            [counter]: load,
            [other]: noise,
          }));
          balancer.update(list);
          for (const [index, delta] of changes) {
            const changed = list[index % list.length]!;
            changed[counter] = Math.max(0, changed[counter] + delta);
            const picked = balancer.select().next()!;
            const minimum = Math.min(...list.map((e) => e[counter] / e.weight));
            assert.equal(picked[counter] / picked.weight, minimum);
            picked[counter]++; // the request is now in flight
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test(`${name}: equal idle endpoints rotate instead of always taking the first`, () => {
    const balancer = createBalancer<TestEndpoint>(name);
    const list = endpoints(4);
    balancer.update(list);
    const picks = Array.from({ length: 8 }, () => balancer.select().next()!.id);
    assert.deepEqual(
      picks,
      [...list, ...list].map((e) => e.id),
    );
  });

  test(`${name}: ties among equal endpoints rotate even under load`, () => {
    const balancer = createBalancer<TestEndpoint>(name);
    const list = endpoints(3);
    for (const e of list) e[counter] = 5;
    balancer.update(list);
    const counts = countPicks(balancer, 300);
    assert.deepEqual([...counts.values()], [100, 100, 100]);
  });

  test(`${name}: at low concurrency (all idle) traffic still follows the weights`, () => {
    const balancer = createBalancer<TestEndpoint>(name);
    const list = endpoints(3, [1, 2, 5]);
    balancer.update(list);
    const counts = countPicks(balancer, 800);
    assert.deepEqual(
      list.map((e) => counts.get(e.id)),
      [100, 200, 500],
    );
  });

  test(`${name}: with requests completing at equal speed, shares follow weights`, () => {
    const balancer = createBalancer<TestEndpoint>(name);
    const list = endpoints(3, [1, 1, 2]);
    balancer.update(list);
    const inFlight: TestEndpoint[] = [];
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const e = balancer.select().next()!;
      e[counter]++;
      inFlight.push(e);
      counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
      if (inFlight.length > 8) inFlight.shift()![counter]--; // FIFO completion keeps 8 in flight
    }
    const shares = list.map((e) => counts.get(e.id)! / 4000);
    assert.ok(Math.abs(shares[0]! - 0.25) < 0.03 && Math.abs(shares[2]! - 0.5) < 0.03, `shares ${shares}`);
  });

  test(`${name}: an endpoint that was busy for long does not grab every tie once free`, () => {
    const balancer = createBalancer<TestEndpoint>(name);
    const list = endpoints(3);
    balancer.update(list);
    list[0]![counter] = 100;
    countPicks(balancer, 1000); // e1 and e2 share the work while e0 is busy
    list[0]![counter] = 0;
    const next = Array.from({ length: 6 }, () => balancer.select().next()!.id);
    assert.ok(next.filter((id) => id === list[0]!.id).length <= 3, next.join(','));
  });

  test(`${name}: a new endpoint keeps no stale advantage or debt`, () => {
    const balancer = createBalancer<TestEndpoint>(name);
    const list = endpoints(2);
    balancer.update(list);
    countPicks(balancer, 1000);
    const added = endpoint('added');
    balancer.update([...list, added]);
    const counts = countPicks(balancer, 30);
    assert.deepEqual([...counts.values()].sort(), [10, 10, 10]);
  });
}

test('least-outstanding: a broken counter (NaN) never wins, and everything recovers once it is fixed', () => {
  const balancer = createBalancer<TestEndpoint>('least-outstanding');
  const list = endpoints(3, [1, 2, 5]);
  balancer.update(list);
  list[0]!.outstanding = NaN;
  for (let i = 0; i < 10; i++) assert.notEqual(balancer.select().next(), list[0]);
  for (const e of list) e.outstanding = NaN;
  assert.ok(balancer.select().next(), 'still answers when every counter is broken');
  for (const e of list) e.outstanding = 0;
  const counts = countPicks(balancer, 800);
  assert.deepEqual(
    list.map((e) => counts.get(e.id)),
    [100, 200, 500],
  );
});
