import type { Balancer, Endpoint, RandomSource, Selection } from './types.js';
import { emptySelection, OrderedSelection } from './selection.js';
import { weightOf, WeightedSampler } from './weights.js';

/**
 * Power of two choices: sample two distinct endpoints (in proportion to weight), keep the one with
 * fewer outstanding requests per unit of weight. O(log n) and nearly as good as a full least-load
 * scan, without herding every balancer onto the same least-loaded target. The loser is the first
 * retry; after it the rest follow in list order. Sampling weights are read in `update()`, loads live.
 */
export class PowerOfTwoBalancer<E extends Endpoint> implements Balancer<E> {
  readonly algorithm = 'power-of-two' as const;
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
    const n = list.length;
    if (n === 0) return emptySelection();
    if (n === 1) return new OrderedSelection(list, 0);
    const a = this.sampler.pick(this.random);
    const b = this.sampler.pickOther(this.random, a);
    const endpointA = list[a]!;
    const endpointB = list[b]!;
    // On a tie the first sample wins; it is already random.
    return endpointB.outstanding / weightOf(endpointB) < endpointA.outstanding / weightOf(endpointA)
      ? new OrderedSelection(list, b, a)
      : new OrderedSelection(list, a, b);
  }
}
