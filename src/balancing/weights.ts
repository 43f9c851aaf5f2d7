import type { Endpoint } from './types.js';

/** Stand-in for a weight that is not a positive finite number (the registry floors weights here too). */
export const MIN_WEIGHT = 1e-3;

/**
 * An endpoint's weight as the algorithms use it. A bad value (0, negative, NaN, Infinity) must neither
 * crash the data plane nor take all traffic, so it counts as the smallest share.
 */
export function weightOf(endpoint: Endpoint): number {
  const w = endpoint.weight;
  return w > 0 && w < Infinity ? w : MIN_WEIGHT;
}

/** Steps per doubling of weight for fractional weights; 8 keeps each weight within ±4.4% of its value. */
const STEPS_PER_DOUBLING = 8;

/**
 * The weight hash-based algorithms build their tables with. Whole numbers (configured weights) are kept
 * exactly; fractional ones (slow start, gray-failure cuts) snap to a logarithmic grid, so a slow-start
 * ramp rebuilds a table about 8 times per doubling of weight instead of on every small step. A pure
 * function of the weight, so two balancers that see the same weights build the same table.
 */
export function quantizeWeight(weight: number): number {
  if (Number.isInteger(weight)) return weight;
  return 2 ** (Math.round(Math.log2(weight) * STEPS_PER_DOUBLING) / STEPS_PER_DOUBLING);
}

/**
 * Weighted sampling over a snapshot of weights: prefix sums and a binary search, O(log n) per draw
 * and no allocation. (Walker's alias method would be O(1) but costs more to build on every update.)
 */
export class WeightedSampler {
  readonly total: number;
  private readonly cumulative: Float64Array;
  private readonly weights: Float64Array;

  constructor(weights: Float64Array) {
    this.weights = weights;
    this.cumulative = new Float64Array(weights.length);
    let sum = 0;
    for (let i = 0; i < weights.length; i++) this.cumulative[i] = sum += weights[i]!;
    this.total = sum;
  }

  /** The index whose share covers `x`, for x in [0, total). */
  indexAt(x: number): number {
    const cumulative = this.cumulative;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** A random index, each with probability weight / total. */
  pick(random: () => number): number {
    return this.indexAt(random() * this.total);
  }

  /** A random index other than `excluded`, in proportion to weight among the others. Needs n >= 2. */
  pickOther(random: () => number, excluded: number): number {
    const excludedWeight = this.weights[excluded]!;
    const excludedStart = this.cumulative[excluded]! - excludedWeight;
    let x = random() * (this.total - excludedWeight);
    if (x >= excludedStart) x += excludedWeight; // skip over the excluded share
    const i = this.indexAt(x);
    if (i !== excluded) return i;
    // Only reachable through float rounding at a share boundary: take a neighbour.
    return excluded + 1 < this.weights.length ? excluded + 1 : excluded - 1;
  }
}
