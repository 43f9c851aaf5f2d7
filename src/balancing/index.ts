import type { AlgorithmName, Balancer, Endpoint, RandomSource } from './types.js';
import { RoundRobinBalancer } from './round-robin.js';

export type * from './types.js';

export interface BalancerOptions {
  random?: RandomSource;
}

export const ALGORITHMS: readonly AlgorithmName[] = ['round-robin'];

export function createBalancer<E extends Endpoint>(name: AlgorithmName, _options: BalancerOptions = {}): Balancer<E> {
  switch (name) {
    case 'round-robin':
      return new RoundRobinBalancer<E>();
    default:
      throw new Error(`unknown balancing algorithm "${name}"`);
  }
}
