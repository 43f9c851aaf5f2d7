import type { Balancer, Endpoint, RandomSource, Selection } from './types.js';
import { emptySelection, OrderedSelection } from './selection.js';
import { weightOf, WeightedSampler } from './weights.js';

/**
 * Weighted random: each pick independent, endpoint i with probability weight_i / sum(weights).
 * Stateless between picks, so many balancer instances need no coordination. O(log n) per pick.
 * Weights are read in `update()`. A retry walks on in list order from the pick.
 */
export class RandomBalancer<E extends Endpoint> implements Balancer<E> {
  readonly algorithm = 'random' as const;
  readonly input = 'none' as const;
  private endpoints: readonly E[] = [];
  private sampler = new WeightedSampler(new Float64Array(0));

  constructor(private readonly random: RandomSource = Math.random) {}

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints.slice(); // our own snapshot, safe if the caller reuses the array
    this.sampler = new WeightedSampler(Float64Array.from(endpoints, weightOf));
  }

  select(): Selection<E> {
    const list = this.endpoints;
    if (list.length === 0) return emptySelection();
    return new OrderedSelection(list, this.sampler.pick(this.random));
  }
}
