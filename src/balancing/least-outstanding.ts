import type { Balancer, Endpoint } from './types.js';
import { LeastLoadBalancer } from './least-load.js';

/**
 * Fewest requests in flight relative to weight (Envoy's LEAST_REQUEST, exact rather than sampled).
 * Best when request costs vary; the counter includes requests still connecting or queued.
 */
export class LeastOutstandingBalancer<E extends Endpoint>
  extends LeastLoadBalancer<E>
  implements Balancer<E>
{
  readonly algorithm = 'least-outstanding' as const;
  protected readonly counter = 'outstanding' as const;
}
