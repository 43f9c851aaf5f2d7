// A server the proxy routes to (the primary or one replica): its address, its pool, and, for replicas,
// what the lag monitor last saw. Health and bans live on the shared registry Target.
import type { Target } from '../registry/target.js';
import { ServerPool, type PoolOptions } from './pool.js';
import type { ServerEndpoint } from './server-connection.js';

export class Backend {
  readonly pool: ServerPool;
  /** Last replayed WAL position seen by the lag monitor (replicas), or the primary's insert position. */
  lsn = 0n;
  lagBytes = 0;
  lagSeconds = 0;
  /** Over max_lag (with hysteresis): gets no reads. */
  lagging = false;
  /** Reachable and (for replicas) in recovery, per the last check. */
  up = false;
  lastCheckAt = 0;
  lastError: string | undefined;
  consecutiveBans = 0;
  /** Index of the shard (cluster) this server belongs to; 0 when unsharded. */
  shard = 0;

  constructor(
    readonly endpoint: ServerEndpoint,
    readonly target: Target,
    poolOptions: PoolOptions,
  ) {
    this.pool = new ServerPool(endpoint, poolOptions);
  }

  get id(): string {
    return this.endpoint.id;
  }
  get role(): 'primary' | 'replica' {
    return this.endpoint.role;
  }
}
