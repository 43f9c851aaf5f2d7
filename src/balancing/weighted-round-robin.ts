import type { Balancer, Endpoint, Selection } from './types.js';
import { emptySelection, OrderedSelection } from './selection.js';
import { weightOf } from './weights.js';

/** Scheduling state of one endpoint, kept across updates by id. */
interface Slot<E> {
  endpoint: E;
  /** Position in the current endpoint list; also the tie-break, so equal weights rotate in list order. */
  index: number;
  weight: number;
  /** Next turn, in virtual time: base + (progress + 1/2) / weight. */
  deadline: number;
  base: number;
  progress: number;
}

/** Virtual time is shifted back by this much once it passes it, to keep full float precision. */
const REBASE_AT = 2 ** 20;

/**
 * Smooth weighted round robin, as a deadline scheduler (stride scheduling) on a binary heap.
 *
 * Why not nginx's loop: nginx's smooth WRR gives even interleaving and exact shares per cycle but
 * scans every endpoint on every pick (O(n)). Here each endpoint's turns fall at virtual times
 * (k + 1/2) / weight, k = 0, 1, 2, …, and a pick takes the earliest turn (O(log n)). With the half-step
 * offset (Sainte-Laguë's divisors) every unit of virtual time holds exactly `weight` turns of each
 * whole-number weight, so over a cycle of sum(weights) picks the shares are exact, and turns of each
 * endpoint are spread evenly, as with nginx: weights {5,1,1} give a a a b c a a. Equal weights rotate.
 *
 * Weights may be fractional and may change between picks (slow start): `update()` rescales the time
 * an endpoint has left to its next turn by old/new weight, so it speeds up or slows down smoothly
 * without losing its place. Weights are read in `update()`, which the registry calls on every weight
 * event. A retry walks on in list order from the pick (it does not consume turns).
 */
export class WeightedRoundRobinBalancer<E extends Endpoint> implements Balancer<E> {
  readonly algorithm = 'weighted-round-robin' as const;
  readonly input = 'none' as const;
  private endpoints: readonly E[] = [];
  private heap: Slot<E>[] = [];
  private slots = new Map<string, Slot<E>>();
  /** Virtual time of the latest pick. */
  private now = 0;

  update(endpoints: readonly E[]): void {
    const slots = new Map<string, Slot<E>>();
    const heap: Slot<E>[] = [];
    for (let index = 0; index < endpoints.length; index++) {
      const endpoint = endpoints[index]!;
      const weight = weightOf(endpoint);
      let slot = this.slots.get(endpoint.id);
      if (slot === undefined) {
        // A newcomer takes its first turn half a period from now, like everyone did at the start.
        slot = { endpoint, index, weight, base: this.now, progress: 0, deadline: this.now + 0.5 / weight };
      } else {
        slot.endpoint = endpoint;
        slot.index = index;
        if (slot.weight !== weight) this.reweigh(slot, weight);
      }
      slots.set(endpoint.id, slot);
      heap.push(slot);
    }
    for (let i = (heap.length >>> 1) - 1; i >= 0; i--) siftDown(heap, i);
    this.endpoints = endpoints.slice(); // our own snapshot, safe if the caller reuses the array
    this.slots = slots;
    this.heap = heap;
  }

  select(): Selection<E> {
    const heap = this.heap;
    if (heap.length === 0) return emptySelection();
    const slot = heap[0]!;
    this.now = slot.deadline;
    slot.progress += 1;
    if (slot.progress >= slot.weight) {
      // Whole periods done: move the base instead of letting progress grow, so deadlines stay exact.
      const periods = slot.weight >= 1 ? 1 : Math.floor(slot.progress / slot.weight);
      slot.progress -= periods * slot.weight;
      slot.base += periods;
    }
    slot.deadline = slot.base + (slot.progress + 0.5) / slot.weight;
    siftDown(heap, 0);
    if (this.now > REBASE_AT) this.rebase();
    return new OrderedSelection(this.endpoints, slot.index);
  }

  private reweigh(slot: Slot<E>, weight: number): void {
    const remaining = ((slot.deadline - this.now) * slot.weight) / weight;
    slot.weight = weight;
    slot.base = this.now;
    slot.progress = remaining * weight - 0.5;
    slot.deadline = this.now + remaining;
  }

  private rebase(): void {
    this.now -= REBASE_AT;
    for (const slot of this.heap) {
      slot.base -= REBASE_AT;
      slot.deadline = slot.base + (slot.progress + 0.5) / slot.weight;
    }
    for (let i = (this.heap.length >>> 1) - 1; i >= 0; i--) siftDown(this.heap, i);
  }
}

function earlier<E>(a: Slot<E>, b: Slot<E>): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.index < b.index);
}

function siftDown<E>(heap: Slot<E>[], i: number): void {
  const n = heap.length;
  const item = heap[i]!;
  while (true) {
    const left = 2 * i + 1;
    if (left >= n) break;
    const right = left + 1;
    const child = right < n && earlier(heap[right]!, heap[left]!) ? right : left;
    if (!earlier(heap[child]!, item)) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = item;
}
