// Shared vocabulary of scaleout (see DESIGN.md). No I/O here: lb, dns and db-proxy all import these.

/** ELB's target states. `unused` = registered but not eligible (admin-disabled, or no listener uses it). */
export type TargetState = 'initial' | 'healthy' | 'unhealthy' | 'draining' | 'unused';

/** ELB-style reason codes attached to a target's state. */
export type ReasonCode =
  | 'Elb.RegistrationInProgress'
  | 'Elb.InitialHealthChecking'
  | 'Target.ResponseCodeMismatch'
  | 'Target.Timeout'
  | 'Target.FailedHealthChecks'
  | 'Target.ConnectionRefused'
  | 'Target.OutlierEjected'
  | 'Target.NotRegistered'
  | 'Target.AdminDisabled'
  | 'Target.DeregistrationInProgress'
  | 'Target.HealthCheckDisabled'
  | 'Target.Healthy';

/** Where a target listens. `id` is stable: "host:port" unless the config names it. */
export interface TargetAddress {
  readonly id: string;
  readonly host: string;
  readonly port: number;
}

/** A target as configured or registered. */
export interface TargetSpec extends TargetAddress {
  /** Relative share, 1..1000 (ELB weights for weighted target groups use 0..999). */
  readonly weight: number;
}

/** One health or admin transition, kept in a target's recent history. */
export interface TargetTransition {
  readonly at: number; // epoch ms
  readonly from: TargetState;
  readonly to: TargetState;
  readonly reason: ReasonCode;
  readonly detail?: string;
}

/** Parses "host:port", "[v6]:port" or ":port"; throws a plain Error with a readable message. */
export function parseHostPort(value: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  if (!m) throw new Error(`"${value}" is not host:port`);
  const host = m[1] ?? (m[2] || defaultHost);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${value}": port out of range`);
  return { host, port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
