import type { Endpoint, Selection } from './types.js';

const EMPTY: Selection<never> = Object.freeze({ next: () => undefined });

/** The selection over an empty eligible set: `next()` is undefined straight away. */
export function emptySelection<E extends Endpoint>(): Selection<E> {
  return EMPTY;
}

/**
 * Offers `list[first]`, then `list[second]` (when second >= 0), then every other endpoint in list
 * order after `first`, each exactly once. O(1) per `next()`, no allocation beyond this object.
 * The list is the snapshot the pick was made on, so an `update()` mid-request cannot confuse a retry.
 */
export class OrderedSelection<E extends Endpoint> implements Selection<E> {
  private remaining: number;
  private cursor: number;
  private phase: 0 | 1 | 2 = 0; // 0: offer first, 1: offer second, 2: walk the rest
  private readonly second: number;

  constructor(
    private readonly list: readonly E[],
    private readonly first: number,
    second = -1,
  ) {
    this.remaining = list.length;
    this.cursor = first;
    this.second = second === first ? -1 : second;
  }

  next(): E | undefined {
    if (this.remaining === 0) return undefined;
    this.remaining--;
    if (this.phase === 0) {
      this.phase = 1;
      return this.list[this.first];
    }
    if (this.phase === 1) {
      this.phase = 2;
      if (this.second >= 0) return this.list[this.second];
    }
    const n = this.list.length;
    let i = this.cursor;
    do {
      i = i + 1 === n ? 0 : i + 1;
    } while (i === this.second);
    this.cursor = i;
    return this.list[i];
  }
}

/**
 * For the hash tables (ring, maglev): `owners` is a circular array of endpoint indexes. Offers the
 * owner at `start`, then walks on to the next distinct owners, so a retry for a key is deterministic
 * and the same on every balancer instance. Endpoints that own no slot (tiny weights) come last, in
 * `endpoints` order. The seen-set is allocated only when a retry happens.
 */
export class TableWalkSelection<E extends Endpoint> implements Selection<E> {
  private seen: Uint8Array | undefined;
  private offered = 0;
  private position: number;
  private walked = 0;
  private leftoverCursor = 0;

  constructor(
    private readonly endpoints: readonly E[],
    private readonly owners: Uint32Array,
    start: number,
  ) {
    this.position = start;
  }

  next(): E | undefined {
    const endpoints = this.endpoints;
    const n = endpoints.length;
    if (this.offered >= n) return undefined;
    const owners = this.owners;
    if (this.offered === 0) {
      this.offered = 1;
      return endpoints[owners[this.position]!];
    }
    let seen = this.seen;
    if (!seen) {
      seen = this.seen = new Uint8Array(n);
      seen[owners[this.position]!] = 1;
    }
    const size = owners.length;
    while (this.walked < size) {
      this.walked++;
      this.position = this.position + 1 === size ? 0 : this.position + 1;
      const owner = owners[this.position]!;
      if (seen[owner] === 0) {
        seen[owner] = 1;
        this.offered++;
        return endpoints[owner];
      }
    }
    while (seen[this.leftoverCursor] === 1) this.leftoverCursor++;
    seen[this.leftoverCursor] = 1;
    this.offered++;
    return endpoints[this.leftoverCursor];
  }
}
