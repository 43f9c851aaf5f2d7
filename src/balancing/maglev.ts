import type { Balancer, Endpoint, PickContext, RandomSource, Selection } from './types.js';
import { murmur3 } from './hash.js';
import { sortById } from './ring-hash.js';
import { emptySelection, TableWalkSelection } from './selection.js';
import { quantizeWeight, weightOf } from './weights.js';

export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;

// Fixed seeds for an endpoint's two permutation hashes (any two distinct constants do).
const OFFSET_SEED = 0x6d61676c;
const SKIP_SEED = 0x65763031;

/** An immutable lookup table: slot → index into `endpoints` (sorted by id). */
interface Table<E> {
  readonly owners: Uint32Array;
  readonly endpoints: readonly E[];
  /** id → quantized weight the table was built with; tells whether an update changes it. */
  readonly weights: ReadonlyMap<string, number>;
}

/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as Envoy does it. Each endpoint
 * has a permutation of the M slots from two hashes of its id (offset, skip; M prime, so every skip
 * visits every slot). Endpoints take turns claiming their next free preferred slot until the table is
 * full; an endpoint of weight w takes a turn in w/heaviest of the rounds, so its share of slots is in
 * proportion to weight. A lookup is one hash and one array read (O(1)). Changing the set moves little
 * more than the minimal 1/n of keys (a few extra slots shift between survivors, as the paper shows).
 *
 * Retries walk the table on from the key's slot to the next distinct endpoint: a deterministic
 * secondary order per key, the same on every balancer, and roughly weighted.
 *
 * The table (M entries, O(M log M) to fill) is rebuilt only in `update()`, only when the ids or the
 * quantized weights changed (see weights.ts: slow start rebuilds it ~8 times per doubling of weight).
 * It is built over the endpoints sorted by id, so list order never changes it.
 *
 * No hash key: a uniformly random slot, which is weighted random by table share.
 */
export class MaglevBalancer<E extends Endpoint> implements Balancer<E> {
  readonly algorithm = 'maglev' as const;
  readonly input = 'hash-key' as const;
  private table: Table<E> | undefined;

  constructor(
    private readonly random: RandomSource = Math.random,
    private readonly tableSize = DEFAULT_MAGLEV_TABLE_SIZE,
  ) {
    if (!Number.isInteger(tableSize) || tableSize < 2 || !isPrime(tableSize)) {
      throw new Error(`maglev table size must be a prime number, got ${tableSize}`);
    }
  }

  update(endpoints: readonly E[]): void {
    if (endpoints.length === 0) {
      this.table = undefined;
      return;
    }
    const weights = new Map<string, number>();
    for (const e of endpoints) weights.set(e.id, quantizeWeight(weightOf(e)));
    const table = this.table;
    if (table && sameWeights(table.weights, weights)) {
      this.table = { ...table, endpoints: sortById(endpoints) };
      return;
    }
    this.table = buildTable(sortById(endpoints), weights, this.tableSize);
  }

  select(ctx?: PickContext): Selection<E> {
    const table = this.table;
    if (table === undefined) return emptySelection();
    const key = ctx?.hashKey;
    // An empty or missing key has nothing to be consistent about: spread such requests at random.
    const slot = key ? murmur3(key) % this.tableSize : Math.floor(this.random() * this.tableSize);
    return new TableWalkSelection(table.endpoints, table.owners, slot);
  }
}

function sameWeights(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, w] of b) if (a.get(id) !== w) return false;
  return true;
}

function buildTable<E extends Endpoint>(
  endpoints: E[],
  weights: Map<string, number>,
  size: number,
): Table<E> {
  const n = endpoints.length;
  const next = new Float64Array(n); // each endpoint's next preferred slot
  const skip = new Float64Array(n);
  const rate = new Float64Array(n); // share of rounds in which the endpoint claims a slot
  const credit = new Float64Array(n);
  let heaviest = 0;
  for (const w of weights.values()) if (w > heaviest) heaviest = w;
  for (let i = 0; i < n; i++) {
    const id = endpoints[i]!.id;
    next[i] = murmur3(id, OFFSET_SEED) % size;
    skip[i] = (murmur3(id, SKIP_SEED) % (size - 1)) + 1;
    rate[i] = weights.get(id)! / heaviest;
  }
  const owners = new Uint32Array(size);
  const taken = new Uint8Array(size);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      const earned = credit[i]! + rate[i]!;
      if (earned < 1) {
        credit[i] = earned;
        continue;
      }
      credit[i] = earned - 1;
      const step = skip[i]!;
      let slot = next[i]!;
      while (taken[slot] === 1) slot = slot + step >= size ? slot + step - size : slot + step;
      taken[slot] = 1;
      owners[slot] = i;
      filled++;
      next[i] = slot + step >= size ? slot + step - size : slot + step;
    }
  }
  return { owners, endpoints, weights };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}
