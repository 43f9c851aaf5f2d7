import type { Balancer, Endpoint } from './types.js';
import { LeastLoadBalancer } from './least-load.js';

/**
 * Fewest open upstream connections relative to weight (HAProxy's leastconn). Suits long-lived
 * connections (TCP, WebSocket, database sessions) where a connection, not a request, is the load.
 */
export class LeastConnectionsBalancer<E extends Endpoint>
  extends LeastLoadBalancer<E>
  implements Balancer<E>
{
  readonly algorithm = 'least-connections' as const;
  protected readonly counter = 'connections' as const;
}
