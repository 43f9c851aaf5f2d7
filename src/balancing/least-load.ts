import type { Endpoint, Selection } from './types.js';
import { emptySelection, OrderedSelection } from './selection.js';
import { MIN_WEIGHT, weightOf } from './weights.js';

/** Virtual time is shifted back once it passes this, to keep full float precision. */
const REBASE_AT = 2 ** 40;

/**
 * Shared core of least-outstanding and least-connections: picks an endpoint with the lowest
 * load / weight, reading the live counters the registry and proxy keep on each endpoint.
 *
 * The scan is O(n): the counters change in place on every request with no event to the balancer, so
 * no index can be kept; for the pools this serves (up to ~100 targets) it is a tight loop over an array
 * (see bench/balancing.ts).
 *
 * Ties (for example every endpoint idle) go to the endpoint that is furthest behind its weighted share:
 * each endpoint has a virtual finish time that grows by 1/weight per pick (start-time fair queuing), so
 * at low concurrency traffic still follows the weights (and slow start works), and equal endpoints
 * rotate. Exact ties fall to the first one after the previous pick. A retry walks on in list order.
 */
export abstract class LeastLoadBalancer<E extends Endpoint> {
  readonly input = 'none' as const;
  private endpoints: readonly E[] = [];
  private finish = new Float64Array(0);
  /** Virtual time: the start of the latest pick. An endpoint that fell behind it restarts from it. */
  private clock = 0;
  private cursor = 0;

  /** The counter this algorithm balances on. */
  protected abstract readonly counter: 'outstanding' | 'connections';

  update(endpoints: readonly E[]): void {
    const previous = new Map<string, number>();
    for (let i = 0; i < this.endpoints.length; i++) previous.set(this.endpoints[i]!.id, this.finish[i]!);
    const finish = new Float64Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) finish[i] = previous.get(endpoints[i]!.id) ?? this.clock;
    this.endpoints = endpoints.slice(); // our own snapshot, safe if the caller reuses the array
    this.finish = finish;
    if (this.cursor >= endpoints.length) this.cursor = 0;
  }

  select(): Selection<E> {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return emptySelection();
    const finish = this.finish;
    const byConnections = this.counter === 'connections';
    let best = -1;
    let bestLoad = Infinity;
    let bestFinish = Infinity;
    // Two plain passes (cursor..end, then start..cursor) instead of a wrapping index: the tightest loop.
    for (let pass = 0; pass < 2; pass++) {
      const from = pass === 0 ? this.cursor : 0;
      const to = pass === 0 ? n : this.cursor;
      for (let i = from; i < to; i++) {
        const endpoint = list[i]!;
        const w = endpoint.weight;
        const load =
          (byConnections ? endpoint.connections : endpoint.outstanding) /
          (w > 0 && w < Infinity ? w : MIN_WEIGHT);
        if (!(load <= bestLoad)) continue; // also skips NaN from a broken counter
        if (load < bestLoad || finish[i]! < bestFinish) {
          best = i;
          bestLoad = load;
          bestFinish = finish[i]!;
        }
      }
    }
    if (best < 0) {
      // Only when every load is NaN (a counter bug): still answer, and keep virtual time finite.
      best = this.cursor;
      bestFinish = finish[best]!;
    }
    const start = bestFinish > this.clock ? bestFinish : this.clock;
    this.clock = start;
    finish[best] = start + 1 / weightOf(list[best]!);
    this.cursor = best + 1 === n ? 0 : best + 1;
    if (start > REBASE_AT) this.rebase();
    return new OrderedSelection(list, best);
  }

  private rebase(): void {
    this.clock -= REBASE_AT;
    for (let i = 0; i < this.finish.length; i++) this.finish[i] = Math.max(0, this.finish[i]! - REBASE_AT);
  }
}
