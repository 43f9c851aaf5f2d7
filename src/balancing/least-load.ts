import type { Endpoint, Selection } from './types.js';
import { emptySelection, OrderedSelection } from './selection.js';
import { weightOf } from './weights.js';

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
  protected abstract loadOf(endpoint: E): number;

  update(endpoints: readonly E[]): void {
    const previous = new Map<string, number>();
    for (let i = 0; i < this.endpoints.length; i++) previous.set(this.endpoints[i]!.id, this.finish[i]!);
    const finish = new Float64Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) finish[i] = previous.get(endpoints[i]!.id) ?? this.clock;
    this.endpoints = endpoints;
    this.finish = finish;
    if (this.cursor >= endpoints.length) this.cursor = 0;
  }

  select(): Selection<E> {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return emptySelection();
    const finish = this.finish;
    let i = this.cursor;
    let best = i;
    let bestLoad = this.loadOf(list[i]!) / weightOf(list[i]!);
    let bestFinish = finish[i]!;
    for (let step = 1; step < n; step++) {
      i = i + 1 === n ? 0 : i + 1;
      const endpoint = list[i]!;
      const load = this.loadOf(endpoint) / weightOf(endpoint);
      if (load < bestLoad || (load === bestLoad && finish[i]! < bestFinish)) {
        best = i;
        bestLoad = load;
        bestFinish = finish[i]!;
      }
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
