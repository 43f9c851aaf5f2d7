import type { Balancer, Endpoint, Selection } from './types.js';
import { emptySelection, OrderedSelection } from './selection.js';

/**
 * Plain round robin: each selection starts one step further along the list and then walks it in
 * order, so a retry takes the next target. Weights are ignored (see weighted-round-robin).
 */
export class RoundRobinBalancer<E extends Endpoint> implements Balancer<E> {
  readonly algorithm = 'round-robin' as const;
  readonly input = 'none' as const;
  private endpoints: readonly E[] = [];
  private cursor = 0;

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints.slice(); // our own snapshot, safe if the caller reuses the array
    if (this.cursor >= endpoints.length) this.cursor = 0;
  }

  select(): Selection<E> {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return emptySelection();
    const start = this.cursor;
    this.cursor = start + 1 === n ? 0 : start + 1;
    return new OrderedSelection(list, start);
  }
}
