import type { Balancer, Endpoint, PickContext, RandomSource, Selection } from './types.js';
import { murmur3 } from './hash.js';
import { emptySelection, TableWalkSelection } from './selection.js';
import { quantizeWeight, weightOf } from './weights.js';

export interface RingHashOptions {
  /** Points on the ring for an endpoint of the reference weight (the heaviest when the scale is set). */
  pointsPerTarget?: number;
  /** Upper bound on points over all endpoints. */
  maxPoints?: number;
}

export const DEFAULT_RING_POINTS_PER_TARGET = 256;
export const DEFAULT_RING_MAX_POINTS = 1 << 18;

/** Ranks are packed under the hash in one float64 sort key, so at most 2^20 endpoints. */
const RANK_SPACE = 2 ** 20;

/** An immutable ring: sorted point hashes, their owners (indexes into `endpoints`, sorted by id). */
interface Ring<E> {
  readonly points: Uint32Array;
  readonly owners: Uint32Array;
  /** bucketStart[b] = first point with (hash >>> bucketShift) >= b; narrows a lookup to ~1 point. */
  readonly bucketStart: Uint32Array;
  readonly bucketShift: number;
  readonly endpoints: readonly E[];
  /** id → points owned; tells whether an update changes the ring. */
  readonly counts: ReadonlyMap<string, number>;
}

/**
 * Consistent hashing on a ring (ketama / Envoy RING_HASH). Endpoint `id` owns points at
 * murmur3(id, seed = j) for j < its point count; a key goes to the owner of the first point at or
 * after murmur3(key). A retry walks the ring on to the next distinct endpoint.
 *
 * Point counts are round(weight × scale), at least 1. The scale is sticky: set from the heaviest
 * endpoint on the first build and changed only when the heaviest would own more than 4× or fewer than
 * 1/4 of `pointsPerTarget` points (or the ring would pass `maxPoints`). So adding or removing an
 * endpoint, or a slow-start step, adds or removes only that endpoint's points: keys move only to or
 * from it. Counts depend on the endpoint's own id and weight and on the scale, never on list order, so
 * balancers that set their scale from the same heaviest weight build the same ring. The ring is rebuilt (O(P log P)) only in
 * `update()` and only when a point count changed; fractional weights are quantized (weights.ts) so
 * slow start rebuilds it a few times per doubling of weight.
 *
 * No hash key: a uniformly random point, which is weighted random by ring share.
 */
export class RingHashBalancer<E extends Endpoint> implements Balancer<E> {
  readonly algorithm = 'ring-hash' as const;
  readonly input = 'hash-key' as const;
  private ring: Ring<E> | undefined;
  private scale = 0;
  private readonly pointsPerTarget: number;
  private readonly maxPoints: number;

  constructor(
    private readonly random: RandomSource = Math.random,
    options: RingHashOptions = {},
  ) {
    this.pointsPerTarget = options.pointsPerTarget ?? DEFAULT_RING_POINTS_PER_TARGET;
    this.maxPoints = options.maxPoints ?? DEFAULT_RING_MAX_POINTS;
  }

  update(endpoints: readonly E[]): void {
    if (endpoints.length === 0) {
      this.ring = undefined;
      return;
    }
    if (endpoints.length > RANK_SPACE) throw new Error(`ring-hash supports at most ${RANK_SPACE} targets`);
    const weights = endpoints.map((e) => quantizeWeight(weightOf(e)));
    this.adjustScale(weights);
    let counts = countPoints(endpoints, weights, this.scale);
    if (sumOf(counts) > this.maxPoints) {
      this.scale *= this.maxPoints / sumOf(counts);
      counts = countPoints(endpoints, weights, this.scale);
    }
    const ring = this.ring;
    if (ring && sameCounts(ring.counts, counts)) {
      // Same ring; only refresh the endpoint objects in case the caller replaced them.
      this.ring = { ...ring, endpoints: sortById(endpoints) };
      return;
    }
    this.ring = buildRing(sortById(endpoints), counts);
  }

  select(ctx?: PickContext): Selection<E> {
    const ring = this.ring;
    if (ring === undefined) return emptySelection();
    const key = ctx?.hashKey;
    // An empty or missing key has nothing to be consistent about: spread such requests at random.
    const hash = key ? murmur3(key) : Math.floor(this.random() * 2 ** 32);
    return new TableWalkSelection(ring.endpoints, ring.owners, firstPointAtOrAfter(ring, hash));
  }

  private adjustScale(weights: number[]): void {
    let heaviest = 0;
    for (const w of weights) if (w > heaviest) heaviest = w;
    const heaviestPoints = heaviest * this.scale;
    if (heaviestPoints > 4 * this.pointsPerTarget || heaviestPoints < this.pointsPerTarget / 4) {
      this.scale = this.pointsPerTarget / heaviest;
    }
  }
}

function countPoints<E extends Endpoint>(endpoints: readonly E[], weights: number[], scale: number) {
  const counts = new Map<string, number>();
  endpoints.forEach((e, i) => counts.set(e.id, Math.max(1, Math.round(weights[i]! * scale))));
  return counts;
}

function sumOf(counts: Map<string, number>): number {
  let sum = 0;
  for (const c of counts.values()) sum += c;
  return sum;
}

function sameCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, count] of b) if (a.get(id) !== count) return false;
  return true;
}

export function sortById<E extends Endpoint>(endpoints: readonly E[]): E[] {
  return [...endpoints].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function buildRing<E extends Endpoint>(endpoints: E[], counts: Map<string, number>): Ring<E> {
  let total = 0;
  for (const e of endpoints) total += counts.get(e.id)!;
  // hash × 2^20 + rank stays below 2^52, so a plain numeric sort orders by hash, then by id.
  const keys = new Float64Array(total);
  let k = 0;
  for (let rank = 0; rank < endpoints.length; rank++) {
    const id = endpoints[rank]!.id;
    const count = counts.get(id)!;
    for (let j = 0; j < count; j++) keys[k++] = murmur3(id, j) * RANK_SPACE + rank;
  }
  keys.sort();
  const points = new Uint32Array(total);
  const owners = new Uint32Array(total);
  for (let i = 0; i < total; i++) {
    const key = keys[i]!;
    const rank = key % RANK_SPACE;
    owners[i] = rank;
    points[i] = (key - rank) / RANK_SPACE;
  }
  return { points, owners, ...buildBuckets(points), endpoints, counts };
}

/**
 * Index of the first point >= hash, wrapping to 0 past the end. The bucket index (one bucket per point
 * or so, by the hash's top bits) leaves a binary search over a handful of points: O(1) expected.
 */
function firstPointAtOrAfter<E>(ring: Ring<E>, hash: number): number {
  const { points, bucketStart } = ring;
  const bucket = hash >>> ring.bucketShift;
  let lo = bucketStart[bucket]!;
  let hi = bucketStart[bucket + 1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

function buildBuckets(points: Uint32Array): { bucketStart: Uint32Array; bucketShift: number } {
  const bits = Math.min(20, Math.max(1, Math.ceil(Math.log2(points.length))));
  const shift = 32 - bits;
  const buckets = 2 ** bits;
  const bucketStart = new Uint32Array(buckets + 1);
  let p = 0;
  for (let b = 0; b < buckets; b++) {
    while (p < points.length && points[p]! >>> shift < b) p++;
    bucketStart[b] = p;
  }
  bucketStart[buckets] = points.length;
  return { bucketStart, bucketShift: shift };
}
