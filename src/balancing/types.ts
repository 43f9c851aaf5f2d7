// The one interface every balancing algorithm implements. Pure code: no I/O, no timers, no imports
// from lb/dns/db. The load balancer, the DNS server and the db-proxy all drive balancers this way.

/**
 * What an algorithm can see of a target. The registry owns these objects and mutates the counters in
 * place, so algorithms read live load without copying.
 */
export interface Endpoint {
  readonly id: string;
  /** Effective weight (> 0): configured weight scaled by slow start or a gray-failure share cut. */
  weight: number;
  /** Requests in flight, counted from selection (so connecting and queued requests count too). */
  outstanding: number;
  /** Open upstream connections (busy or idle-but-owned by a request). */
  connections: number;
}

/** Per-request input to a pick. Only hash-based algorithms read `hashKey`. */
export interface PickContext {
  hashKey?: string;
}

/**
 * Candidates in order of preference. The first `next()` is the pick; a retry calls `next()` again and
 * gets a different endpoint. Returns undefined once every endpoint has been offered.
 */
export interface Selection<E extends Endpoint = Endpoint> {
  next(): E | undefined;
}

/** What an algorithm needs from the request, so config validation can refuse a bad combination. */
export type BalancerInput = 'none' | 'hash-key';

export interface Balancer<E extends Endpoint = Endpoint> {
  readonly algorithm: AlgorithmName;
  readonly input: BalancerInput;
  /** Replaces the eligible set (called on health, admin or weight events). Keeps internal state when possible. */
  update(endpoints: readonly E[]): void;
  /** Starts a selection over the current eligible set. */
  select(ctx?: PickContext): Selection<E>;
}

export type AlgorithmName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'least-outstanding'
  | 'least-connections'
  | 'power-of-two'
  | 'random'
  | 'ring-hash'
  | 'maglev';

/** Randomness is injected so tests can be deterministic. Returns a float in [0, 1). */
export type RandomSource = () => number;
