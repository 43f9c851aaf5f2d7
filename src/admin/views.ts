// Plain-data views of the load balancer's runtime for the admin API: what `GET /api/v1/status` shows,
// and the before/after pictures a dry run returns. Read-only: nothing here changes the runtime.
import type { TargetSpec } from '../core/types.js';
import type { GroupRuntime } from '../lb/group-runtime.js';
import type { LbRuntime } from '../lb/runtime.js';
import { Target } from '../registry/target.js';

export interface TargetView {
  id: string;
  address: string;
  state: string;
  reason: string;
  detail: string | null;
  /** Health from checks alone, apart from admin state and ejection. */
  health: { state: string; reason: string };
  configuredWeight: number;
  /** Effective weight: configured × slow start × gray-failure factor. */
  weight: number;
  adminDisabled: boolean;
  draining: boolean;
  drainingSince: string | null;
  ejectedUntil: string | null;
  slowStartFactor: number;
  grayFactor: number;
  inFlight: number;
  connections: number;
  history: Array<{ at: string; from: string; to: string; reason: string; detail: string | null }>;
}

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

export function targetView(t: Target, now = Date.now()): TargetView {
  return {
    id: t.id,
    address: t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`,
    state: t.state,
    reason: t.reason,
    detail: t.detail ?? null,
    health: { state: t.health.state, reason: t.health.reason },
    configuredWeight: t.configuredWeight,
    weight: round(t.weight),
    adminDisabled: t.adminDisabled,
    draining: t.draining,
    drainingSince: t.draining ? iso(t.drainingSince) : null,
    ejectedUntil: t.ejectedUntil > now ? iso(t.ejectedUntil) : null,
    slowStartFactor: round(t.slowStartFactor),
    grayFactor: round(t.grayFactor),
    inFlight: t.outstanding,
    connections: t.connections,
    history: t.history.map((h) => ({
      at: new Date(h.at).toISOString(),
      from: h.from,
      to: h.to,
      reason: h.reason,
      detail: h.detail ?? null,
    })),
  };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export function groupView(rt: GroupRuntime) {
  const s = rt.settings;
  return {
    name: rt.name,
    algorithm: s.algorithm,
    failOpen: rt.group.failOpen,
    healthCheck: s.healthCheck,
    slowStartMs: s.slowStart,
    deregistrationDelayMs: s.deregistrationDelay,
    stickiness: s.stickiness ?? null,
    targets: rt.group.list().map((t) => targetView(t)),
  };
}

/** Listener counters from worker processes (`--workers N`), when this process does not serve itself. */
export type WorkerListenerStats = () => Record<
  string,
  { retries: number; rejected: number; upstreamErrors: number; active: number; idle: number }
>;

export function listenersView(runtime: LbRuntime, fromWorkers?: WorkerListenerStats) {
  const config = runtime.config;
  const workers = fromWorkers?.() ?? {};
  return Object.entries(config?.listeners ?? {}).map(([name, settings]) => {
    const listener = runtime.listeners.get(name);
    const address = runtime.addresses.get(name);
    const w = workers[name];
    return {
      name,
      protocol: settings.protocol,
      listen: `${settings.listen.host}:${settings.listen.port}`,
      running: listener !== undefined || w !== undefined,
      servedBy: listener ? 'this process' : w ? 'worker processes' : null,
      address: address ? `${address.address}:${address.port}` : null,
      rules: settings.rules.map((r, i) => ({ name: r.name ?? `rule-${i + 1}`, ...r })),
      defaultAction: settings.defaultAction,
      stats: listener
        ? {
            ...listener.stats,
            responses: { ...listener.stats.responses },
            activeConnections: listener.activeConnections,
            idleUpstreamConnections: listener.idleUpstreamConnections(),
          }
        : w
          ? {
              retries: w.retries,
              rejected: w.rejected,
              upstreamErrors: w.upstreamErrors,
              activeConnections: w.active,
              idleUpstreamConnections: w.idle,
            }
          : null,
    };
  });
}

export function statusView(
  runtime: LbRuntime,
  stateFile: string | undefined,
  fromWorkers?: WorkerListenerStats,
) {
  return {
    listeners: listenersView(runtime, fromWorkers),
    targetGroups: [...runtime.groups.values()].map(groupView),
    stateFile: { path: stateFile ?? null, error: runtime.state.lastError ?? null },
  };
}

// ---- dry runs: the change applied to a scratch copy of the target ---------------------------------

export type TargetChange =
  | { kind: 'register'; spec: TargetSpec }
  | { kind: 'deregister' }
  | { kind: 'disable' }
  | { kind: 'enable' }
  | { kind: 'weight'; weight: number };

/**
 * What a target would look like after `change`, computed on a copy so the live target is untouched.
 * The copy goes through the real Target.refreshState(), so the predicted state follows the same rules.
 */
function missingTarget(): never {
  throw new Error('only a register change applies to a target that does not exist');
}

export function predictTarget(
  rt: GroupRuntime,
  current: Target | undefined,
  change: TargetChange,
  now = Date.now(),
): TargetView {
  const thresholds = {
    healthyThreshold: rt.settings.healthCheck.healthyThreshold,
    unhealthyThreshold: rt.settings.healthCheck.unhealthyThreshold,
  };
  const copy = current
    ? current.clone(thresholds)
    : new Target(change.kind === 'register' ? change.spec : missingTarget(), thresholds);
  if (!current && !rt.settings.healthCheck.enabled)
    copy.health.force('healthy', 'Target.HealthCheckDisabled');
  switch (change.kind) {
    case 'register':
      copy.draining = false;
      copy.drainingSince = 0;
      copy.configuredWeight = change.spec.weight;
      break;
    case 'deregister':
      if (!copy.draining) copy.drainingSince = now;
      copy.draining = true;
      break;
    case 'disable':
      copy.adminDisabled = true;
      break;
    case 'enable':
      copy.adminDisabled = false;
      break;
    case 'weight':
      copy.configuredWeight = change.weight;
      break;
  }
  copy.recomputeWeight();
  copy.refreshState(now);
  return targetView(copy, now);
}
