// ring-hash and maglev: same key → same endpoint, minimal movement when the set changes, weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBalancer, murmur3 } from '../../../src/balancing/index.js';
import {
  countPicks,
  endpoint,
  endpoints,
  keyOwner,
  makeBalancer,
  seededRandom,
  TEST_MAGLEV_SIZE,
  type TestEndpoint,
} from './helpers.js';

const KEYS = Array.from({ length: 4000 }, (_, i) => `client-${i}`);

function owners(balancer: ReturnType<typeof makeBalancer>): string[] {
  return KEYS.map((k) => keyOwner(balancer, k));
}

/**
 * Movement tests use maglev's production table size: with a small table, a few per cent of keys
 * shift between survivors for unlucky id sets (seen: 7% at 4099 slots), while at 65537 slots the
 * worst over 150 random sets was under 1%.
 */
function balancerForMovement(name: 'ring-hash' | 'maglev') {
  return createBalancer<TestEndpoint>(name, { random: seededRandom(1) });
}

const idSet = (min: number, max: number) =>
  fc.uniqueArray(fc.stringMatching(/^[a-z0-9.:-]{1,16}$/), { minLength: min, maxLength: max });

for (const name of ['ring-hash', 'maglev'] as const) {
  test(`${name}: the same key always gets the same endpoint, on any instance, whatever the list order`, () => {
    fc.assert(
      fc.property(
        idSet(1, 12),
        fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 20 }),
        (ids, keys) => {
          const a = makeBalancer(name, 1);
          const b = makeBalancer(name, 2);
          a.update(ids.map((id) => endpoint(id)));
          b.update([...ids].reverse().map((id) => endpoint(id)));
          for (const hashKey of keys) {
            const first = keyOwner(a, hashKey);
            assert.equal(keyOwner(a, hashKey), first);
            assert.equal(keyOwner(b, hashKey), first);
            // Retries follow the same deterministic order too.
            const order = (x: typeof a) => {
              const s = x.select({ hashKey });
              return Array.from({ length: ids.length }, () => s.next()!.id).join();
            };
            assert.equal(order(a), order(b));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test(`${name}: adding an endpoint moves only about 1/n of keys, all of them to the newcomer`, () => {
    fc.assert(
      fc.property(idSet(3, 9), fc.stringMatching(/^new-[a-z0-9]{1,8}$/), (ids, added) => {
        const balancer = balancerForMovement(name);
        const list = ids.map((id) => endpoint(id));
        balancer.update(list);
        const before = owners(balancer);
        balancer.update([...list, endpoint(added)]);
        const after = owners(balancer);
        let moved = 0;
        let movedElsewhere = 0;
        before.forEach((owner, i) => {
          if (owner === after[i]) return;
          moved++;
          if (after[i] !== added) movedElsewhere++;
        });
        const ideal = KEYS.length / (ids.length + 1);
        assert.ok(moved < ideal * 1.6 && moved > ideal * 0.4, `moved ${moved}, ideal ${ideal.toFixed(0)}`);
        if (name === 'ring-hash') assert.equal(movedElsewhere, 0);
        // Maglev reshuffles a few slots between survivors (Eisenbud et al. §3.4); keep it small.
        else assert.ok(movedElsewhere < KEYS.length * 0.03, `${movedElsewhere} keys moved between survivors`);
      }),
      { numRuns: 30 },
    );
  });

  test(`${name}: removing an endpoint moves its keys and (almost) no others`, () => {
    fc.assert(
      fc.property(idSet(3, 9), fc.nat(), (ids, which) => {
        const balancer = balancerForMovement(name);
        const list = ids.map((id) => endpoint(id));
        balancer.update(list);
        const before = owners(balancer);
        const removed = list[which % list.length]!;
        balancer.update(list.filter((e) => e !== removed));
        const after = owners(balancer);
        let strayMoves = 0;
        before.forEach((owner, i) => {
          if (owner === removed.id) assert.notEqual(after[i], removed.id);
          else if (owner !== after[i]) strayMoves++;
        });
        if (name === 'ring-hash') assert.equal(strayMoves, 0);
        else assert.ok(strayMoves < KEYS.length * 0.03, `${strayMoves} keys moved between survivors`);
      }),
      { numRuns: 30 },
    );
  });

  test(`${name}: removing and re-adding an endpoint restores the original mapping`, () => {
    const balancer = makeBalancer(name);
    const list = endpoints(5);
    balancer.update(list);
    const before = owners(balancer);
    balancer.update(list.slice(1));
    balancer.update(list);
    assert.deepEqual(owners(balancer), before);
  });

  test(`${name}: equal weights spread keys near-equally`, () => {
    for (const n of [2, 4, 10]) {
      const balancer = makeBalancer(name);
      balancer.update(endpoints(n));
      const counts = countPicks(balancer, 20000, (i) => `session-${i}`);
      for (const c of counts.values()) {
        assert.ok(Math.abs(c / (20000 / n) - 1) < 0.25, `n=${n}: ${[...counts.values()]}`);
      }
    }
  });

  test(`${name}: keys spread in proportion to weight`, () => {
    const balancer = makeBalancer(name);
    const list = endpoints(3, [1, 2, 4]);
    balancer.update(list);
    const counts = countPicks(balancer, 28000, (i) => `session-${i}`);
    list.forEach((e, i) => {
      const expected = (28000 * [1, 2, 4][i]!) / 7;
      assert.ok(
        Math.abs(counts.get(e.id)! / expected - 1) < 0.2,
        `${e.id}: ${counts.get(e.id)} vs ${expected}`,
      );
    });
  });

  test(`${name}: without a hash key, picks are weighted random (and use the random source)`, () => {
    const balancer = makeBalancer(name, 11);
    const list = endpoints(2, [1, 3]);
    balancer.update(list);
    const counts = countPicks(balancer, 8000);
    assert.ok(Math.abs(counts.get(list[1]!.id)! / 6000 - 1) < 0.1, `${[...counts.values()]}`);
    const emptyKey = countPicks(balancer, 8000, () => '');
    assert.ok(Math.abs(emptyKey.get(list[1]!.id)! / 6000 - 1) < 0.1, 'an empty key counts as no key');
  });

  test(`${name}: small slow-start steps do not reshuffle keys; the share follows the weight`, () => {
    const balancer = balancerForMovement(name);
    const list = endpoints(4);
    const ramping = list[3]!;
    ramping.weight = 0.5;
    balancer.update(list);
    const before = owners(balancer);
    ramping.weight = 0.51; // within the same quantization step
    balancer.update(list);
    assert.deepEqual(owners(balancer), before);
    ramping.weight = 1;
    balancer.update(list);
    const after = owners(balancer);
    // Growing a weight moves keys to the grown endpoint (ring: only there; maglev: nearly only).
    const strayMoves = before.filter((owner, i) => owner !== after[i] && after[i] !== ramping.id).length;
    if (name === 'ring-hash') assert.equal(strayMoves, 0);
    else assert.ok(strayMoves < KEYS.length * 0.03, `${strayMoves} keys moved between the others`);
    const share = after.filter((o) => o === ramping.id).length / KEYS.length;
    assert.ok(share > 0.18 && share < 0.32, `share ${share}`);
  });

  test(`${name}: retries walk on to distinct endpoints, the same way for the same key`, () => {
    const balancer = makeBalancer(name);
    const list = endpoints(6);
    balancer.update(list);
    const walk = (key: string) => {
      const s = balancer.select({ hashKey: key });
      return Array.from({ length: 6 }, () => s.next()!.id);
    };
    const a = walk('user-42');
    assert.equal(new Set(a).size, 6);
    assert.deepEqual(walk('user-42'), a);
    if (name === 'ring-hash') {
      // When the first choice goes away, the key moves to what was its first retry.
      balancer.update(list.filter((e) => e.id !== a[0]));
      assert.equal(keyOwner(balancer, 'user-42'), a[1]);
    }
  });
}

test('maglev: every slot of the table is owned, in proportion to weight', () => {
  const balancer = createBalancer<TestEndpoint>('maglev', { maglevTableSize: TEST_MAGLEV_SIZE });
  const list = endpoints(3, [1, 1, 2]);
  balancer.update(list);
  // Without a key a pick is a uniformly random slot: sweeping the random source over every slot
  // once counts the table exactly.
  let slot = 0;
  const sweep = createBalancer<TestEndpoint>('maglev', {
    maglevTableSize: TEST_MAGLEV_SIZE,
    random: () => (slot++ + 0.5) / TEST_MAGLEV_SIZE,
  });
  sweep.update(list);
  const counts = countPicks(sweep, TEST_MAGLEV_SIZE);
  const shares = list.map((e) => counts.get(e.id)! / TEST_MAGLEV_SIZE);
  assert.ok(Math.abs(shares[0]! - 0.25) < 0.002 && Math.abs(shares[2]! - 0.5) < 0.002, `${shares}`);
});

test('ring-hash: a ring far larger than the cap is scaled down, still one point per endpoint at least', () => {
  const balancer = createBalancer<TestEndpoint>('ring-hash', {
    ringPointsPerTarget: 1000,
    ringMaxPoints: 500,
  });
  const list = [endpoint('a', 1000), endpoint('b', 1)];
  balancer.update(list);
  const counts = countPicks(balancer, 5000, (i) => `k${i}`);
  assert.ok(counts.get('a')! > 4500, `a got ${counts.get('a')}`);
  const s = balancer.select({ hashKey: 'k1' });
  assert.deepEqual(new Set([s.next()!.id, s.next()!.id]), new Set(['a', 'b']));
});

test('ring-hash: a key goes to the owner of the first point clockwise from murmur3(key) (brute force)', () => {
  fc.assert(
    fc.property(
      idSet(1, 8),
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 30 }),
      (ids, pointsPerTarget, keys) => {
        const balancer = createBalancer<TestEndpoint>('ring-hash', { ringPointsPerTarget: pointsPerTarget });
        balancer.update(ids.map((id) => endpoint(id)));
        // Equal weights: every endpoint owns exactly pointsPerTarget points, at murmur3(id, seed = j).
        const points = ids.flatMap((id) =>
          Array.from({ length: pointsPerTarget }, (_, j) => ({ id, at: murmur3(id, j) })),
        );
        for (const key of keys) {
          const h = murmur3(key);
          const distance = (at: number) => (at - h + 2 ** 32) % 2 ** 32;
          let best = points[0]!;
          for (const p of points) {
            const d = distance(p.at);
            const bd = distance(best.at);
            if (d < bd || (d === bd && p.id < best.id)) best = p;
          }
          assert.equal(keyOwner(balancer, key), best.id);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('ring-hash: with mixed weights, adding or removing any endpoint never moves keys between the others', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z0-9]{1,10}$/), fc.integer({ min: 1, max: 4 })), {
        selector: ([id]) => id,
        minLength: 2,
        maxLength: 8,
      }),
      fc.nat(),
      (set, which) => {
        const balancer = balancerForMovement('ring-hash');
        const list = set.map(([id, weight]) => endpoint(id, weight));
        const changed = list[which % list.length]!;
        const others = list.filter((e) => e !== changed);
        balancer.update(others);
        const without = owners(balancer);
        balancer.update(list);
        const withIt = owners(balancer);
        without.forEach((owner, i) => assert.ok(withIt[i] === owner || withIt[i] === changed.id, `key ${i}`));
        balancer.update(others);
        assert.deepEqual(owners(balancer), without);
      },
    ),
    { numRuns: 60 },
  );
});
