// Shared helpers for the balancing tests (not a test file itself).
import {
  ALGORITHMS,
  createBalancer,
  type AlgorithmName,
  type Balancer,
  type Endpoint,
} from '../../../src/balancing/index.js';

export interface TestEndpoint extends Endpoint {
  weight: number;
  outstanding: number;
  connections: number;
}

export function endpoint(id: string, weight = 1, outstanding = 0, connections = 0): TestEndpoint {
  return { id, weight, outstanding, connections };
}

/** Endpoints t0..t(n-1); weights default to 1. */
export function endpoints(n: number, weights: number[] = []): TestEndpoint[] {
  return Array.from({ length: n }, (_, i) => endpoint(`10.0.0.${i}:80`, weights[i] ?? 1));
}

/** mulberry32: a small seeded PRNG, so statistical tests give the same figures every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Small maglev tables keep the tests fast; 4099 is prime. */
export const TEST_MAGLEV_SIZE = 4099;

export function makeBalancer(name: AlgorithmName, seed = 1): Balancer<TestEndpoint> {
  return createBalancer<TestEndpoint>(name, {
    random: seededRandom(seed),
    maglevTableSize: TEST_MAGLEV_SIZE,
  });
}

export { ALGORITHMS };

/** Picks `count` times (first `next()` only) and counts picks per id. */
export function countPicks(balancer: Balancer<TestEndpoint>, count: number, key?: (i: number) => string) {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const picked = balancer.select(key ? { hashKey: key(i) } : undefined).next();
    if (!picked) throw new Error('no pick');
    counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1);
  }
  return counts;
}

export function keyOwner(balancer: Balancer<TestEndpoint>, key: string): string {
  return balancer.select({ hashKey: key }).next()!.id;
}
