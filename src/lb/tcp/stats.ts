/** Listener-wide counters (plain fields, updated in place; read them for metrics or the admin API). */
export interface TcpListenerStats {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections open now (connecting or forwarding). */
  active: number;
  /** Client connections closed at once because no target was eligible. */
  noTarget: number;
  /** Failed connect attempts to targets (each attempt counts; timeouts included). */
  connectFailures: number;
  connectTimeouts: number;
  /** Client connections closed because every attempt to reach a target failed. */
  failedConnections: number;
  /** Connections cut by the idle timeout. */
  idleTimeouts: number;
  /** Connections cut at a drain deadline (target drain or listener shutdown). */
  drainClosed: number;
  /** Bytes from clients to targets, and from targets to clients. */
  bytesIn: number;
  bytesOut: number;
}

/** Per-target counters of one listener. */
export interface TcpTargetStats {
  /** Connections holding this target now (connecting or forwarding). */
  active: number;
  /** Connections that reached this target. */
  total: number;
  bytesIn: number;
  bytesOut: number;
  connectFailures: number;
}

export function newTcpListenerStats(): TcpListenerStats {
  return {
    accepted: 0,
    active: 0,
    noTarget: 0,
    connectFailures: 0,
    connectTimeouts: 0,
    failedConnections: 0,
    idleTimeouts: 0,
    drainClosed: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}

export function newTcpTargetStats(): TcpTargetStats {
  return { active: 0, total: 0, bytesIn: 0, bytesOut: 0, connectFailures: 0 };
}
