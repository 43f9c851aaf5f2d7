// Properties every algorithm shares: a Selection offers each eligible endpoint exactly once, then
// undefined; an empty set gives undefined at once; the factory knows every algorithm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ALGORITHMS,
  createBalancer,
  isAlgorithmName,
  needsHashKey,
  type AlgorithmName,
} from '../../../src/balancing/index.js';
import { endpoint, makeBalancer, type TestEndpoint } from './helpers.js';

const endpointSet = fc.uniqueArray(
  fc.record({
    id: fc.string({ minLength: 1, maxLength: 12 }),
    weight: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.double({ min: 0.001, max: 50, noNaN: true })),
    outstanding: fc.nat(5),
    connections: fc.nat(5),
  }),
  { selector: (e) => e.id, minLength: 1, maxLength: 12 },
);

function drain(selection: { next(): TestEndpoint | undefined }, limit: number): TestEndpoint[] {
  const offered: TestEndpoint[] = [];
  for (let i = 0; i < limit; i++) {
    const e = selection.next();
    if (e === undefined) break;
    offered.push(e);
  }
  return offered;
}

for (const name of ALGORITHMS) {
  test(`${name}: a selection offers every eligible endpoint exactly once, then undefined`, () => {
    fc.assert(
      fc.property(
        endpointSet,
        fc.array(fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), { minLength: 1, maxLength: 6 }),
        fc.integer(),
        (set, keys, seed) => {
          const list: TestEndpoint[] = set.map((e) => ({ ...e }));
          const balancer = makeBalancer(name, seed);
          balancer.update(list);
          for (const hashKey of keys) {
            const selection = balancer.select({ hashKey });
            const offered = drain(selection, list.length + 5);
            assert.equal(offered.length, list.length);
            assert.deepEqual(new Set(offered.map((e) => e.id)), new Set(list.map((e) => e.id)));
            assert.ok(
              offered.every((e) => list.includes(e)),
              'offers the caller’s own endpoint objects',
            );
            assert.equal(selection.next(), undefined);
            assert.equal(selection.next(), undefined);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test(`${name}: an empty eligible set gives undefined at once, before and after endpoints come and go`, () => {
    const balancer = makeBalancer(name);
    assert.equal(balancer.select({ hashKey: 'k' }).next(), undefined);
    balancer.update([endpoint('a'), endpoint('b')]);
    assert.ok(balancer.select({ hashKey: 'k' }).next(), 'a pick');
    balancer.update([]);
    assert.equal(balancer.select({ hashKey: 'k' }).next(), undefined);
    assert.equal(balancer.select().next(), undefined);
  });

  test(`${name}: a selection keeps its snapshot when the set changes before a retry`, () => {
    const balancer = makeBalancer(name);
    const list = [endpoint('a'), endpoint('b'), endpoint('c')];
    balancer.update(list);
    const selection = balancer.select({ hashKey: 'user-1' });
    const first = selection.next()!;
    balancer.update([endpoint('d')]);
    const rest = drain(selection, 10);
    assert.deepEqual(new Set([first, ...rest].map((e) => e.id)), new Set(['a', 'b', 'c']));
  });

  test(`${name}: survives bad weights (0, negative, NaN, Infinity) without losing any endpoint`, () => {
    const balancer = makeBalancer(name);
    const list = [
      endpoint('a', 0),
      endpoint('b', -3),
      endpoint('c', NaN),
      endpoint('d', Infinity),
      endpoint('e', 1),
    ];
    balancer.update(list);
    for (let i = 0; i < 50; i++) {
      const offered = drain(balancer.select({ hashKey: `k${i}` }), 10);
      assert.equal(new Set(offered.map((e) => e.id)).size, 5);
    }
  });
}

test('ALGORITHMS lists every algorithm once and the factory builds each under its own name', () => {
  assert.deepEqual([...ALGORITHMS].sort(), [
    'least-connections',
    'least-outstanding',
    'maglev',
    'power-of-two',
    'random',
    'ring-hash',
    'round-robin',
    'weighted-round-robin',
  ]);
  for (const name of ALGORITHMS) {
    const balancer = createBalancer(name, { maglevTableSize: 101 });
    assert.equal(balancer.algorithm, name);
    assert.equal(balancer.input, needsHashKey(name) ? 'hash-key' : 'none');
    assert.ok(isAlgorithmName(name), name);
  }
});

test('only ring-hash and maglev need a hash key', () => {
  assert.deepEqual(
    ALGORITHMS.filter((n) => needsHashKey(n)),
    ['ring-hash', 'maglev'],
  );
});

test('isAlgorithmName refuses unknown names, including inherited object keys', () => {
  for (const name of ['', 'roundrobin', 'toString', '__proto__', 'hasOwnProperty'])
    assert.equal(isAlgorithmName(name), false);
});

test('createBalancer gives clear errors for unknown names and bad options', () => {
  assert.throws(
    () => createBalancer('fastest' as AlgorithmName),
    /unknown balancing algorithm "fastest"; expected one of round-robin/,
  );
  assert.throws(
    () => createBalancer('maglev', { maglevTableSize: 65536 }),
    /maglev table size must be a prime number, got 65536/,
  );
  assert.throws(
    () => createBalancer('maglev', { maglevTableSize: 1.5 }),
    /"maglevTableSize" must be an integer/,
  );
  assert.throws(
    () => createBalancer('ring-hash', { ringPointsPerTarget: 0 }),
    /"ringPointsPerTarget" must be an integer from 1/,
  );
  assert.throws(() => createBalancer('ring-hash', { ringMaxPoints: -1 }), /"ringMaxPoints"/);
  assert.throws(
    () => createBalancer('random', { random: 42 as unknown as () => number }),
    /"random" must be a function/,
  );
});

for (const name of ALGORITHMS) {
  test(`${name}: a selection is unaffected when the caller later mutates the array it passed to update()`, () => {
    const balancer = makeBalancer(name);
    const list = [endpoint('a'), endpoint('b'), endpoint('c')];
    balancer.update(list);
    const selection = balancer.select({ hashKey: 'user-7' });
    const first = selection.next()!;
    list.length = 0;
    list.push(endpoint('x'));
    const rest = drain(selection, 10);
    assert.deepEqual(new Set([first, ...rest].map((e) => e.id)), new Set(['a', 'b', 'c']));
  });
}

const POOL = Array.from({ length: 10 }, (_, i) => `pool-${i}`);
const operation = fc.oneof(
  fc.record({
    kind: fc.constant('update' as const),
    members: fc.subarray(POOL),
    weights: fc.array(fc.double({ min: 0.001, max: 20, noNaN: true }), { minLength: 10, maxLength: 10 }),
  }),
  fc.record({
    kind: fc.constant('select' as const),
    key: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    take: fc.integer({ min: 1, max: 12 }),
  }),
);

for (const name of ALGORITHMS) {
  test(`${name}: any interleaving of updates (set and weight changes) and selections keeps the invariants`, () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 40 }), fc.integer(), (operations, seed) => {
        const balancer = makeBalancer(name, seed);
        const objects = new Map(POOL.map((id) => [id, endpoint(id)]));
        let current: TestEndpoint[] = [];
        for (const op of operations) {
          if (op.kind === 'update') {
            current = op.members.map((id, i) => Object.assign(objects.get(id)!, { weight: op.weights[i]! }));
            balancer.update(current);
          } else {
            const selection = balancer.select({ hashKey: op.key });
            const offered = drain(selection, op.take);
            assert.equal(offered.length, Math.min(op.take, current.length));
            assert.equal(new Set(offered).size, offered.length, 'no endpoint offered twice');
            assert.ok(
              offered.every((e) => current.includes(e)),
              'only eligible endpoints',
            );
          }
        }
      }),
      { numRuns: 120 },
    );
  });
}
