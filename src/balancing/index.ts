import type { AlgorithmName, Balancer, BalancerInput, Endpoint, RandomSource } from './types.js';
import { LeastConnectionsBalancer } from './least-connections.js';
import { LeastOutstandingBalancer } from './least-outstanding.js';
import { MaglevBalancer } from './maglev.js';
import { PowerOfTwoBalancer } from './power-of-two.js';
import { RandomBalancer } from './random.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

export type * from './types.js';
export { murmur3 } from './hash.js';
export { DEFAULT_MAGLEV_TABLE_SIZE } from './maglev.js';
export { DEFAULT_RING_MAX_POINTS, DEFAULT_RING_POINTS_PER_TARGET } from './ring-hash.js';

export interface BalancerOptions {
  /** Source of randomness in [0, 1) for random, power-of-two and the hash fallbacks. Default Math.random. */
  random?: RandomSource;
  /** ring-hash: points for an endpoint of the reference weight. Default 256. */
  ringPointsPerTarget?: number;
  /** ring-hash: upper bound on points over all endpoints. Default 262144. */
  ringMaxPoints?: number;
  /** maglev: lookup table size, a prime. Default 65537; smaller primes (e.g. 4099) suit tests. */
  maglevTableSize?: number;
}

/** What each algorithm reads from the request (HAProxy's idea: config can refuse a bad combination). */
export const ALGORITHM_INPUT: Readonly<Record<AlgorithmName, BalancerInput>> = {
  'round-robin': 'none',
  'weighted-round-robin': 'none',
  'least-outstanding': 'none',
  'least-connections': 'none',
  'power-of-two': 'none',
  random: 'none',
  'ring-hash': 'hash-key',
  maglev: 'hash-key',
};

export const ALGORITHMS = Object.keys(ALGORITHM_INPUT) as readonly AlgorithmName[];

export function isAlgorithmName(name: string): name is AlgorithmName {
  return Object.hasOwn(ALGORITHM_INPUT, name);
}

/** Whether the algorithm needs `ctx.hashKey` to do its job (without one it falls back to random). */
export function needsHashKey(name: AlgorithmName): boolean {
  return ALGORITHM_INPUT[name] === 'hash-key';
}

export function createBalancer<E extends Endpoint>(
  name: AlgorithmName,
  options: BalancerOptions = {},
): Balancer<E> {
  validateOptions(options);
  const random = options.random ?? Math.random;
  switch (name) {
    case 'round-robin':
      return new RoundRobinBalancer<E>();
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer<E>();
    case 'least-outstanding':
      return new LeastOutstandingBalancer<E>();
    case 'least-connections':
      return new LeastConnectionsBalancer<E>();
    case 'power-of-two':
      return new PowerOfTwoBalancer<E>(random);
    case 'random':
      return new RandomBalancer<E>(random);
    case 'ring-hash':
      return new RingHashBalancer<E>(random, {
        pointsPerTarget: options.ringPointsPerTarget,
        maxPoints: options.ringMaxPoints,
      });
    case 'maglev':
      return new MaglevBalancer<E>(random, options.maglevTableSize);
    default:
      throw new Error(
        `unknown balancing algorithm "${String(name)}"; expected one of ${ALGORITHMS.join(', ')}`,
      );
  }
}

function validateOptions(options: BalancerOptions): void {
  const { random, ringPointsPerTarget, ringMaxPoints, maglevTableSize } = options;
  if (random !== undefined && typeof random !== 'function')
    throw new Error('balancer option "random" must be a function');
  checkInteger('ringPointsPerTarget', ringPointsPerTarget, 1, 1 << 16);
  checkInteger('ringMaxPoints', ringMaxPoints, 1, 1 << 24);
  checkInteger('maglevTableSize', maglevTableSize, 2, 1 << 24);
}

function checkInteger(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`balancer option "${name}" must be an integer from ${min} to ${max}, got ${value}`);
  }
}
