import type { ReasonCode, TargetSpec, TargetState, TargetTransition } from '../core/types.js';
import type { Endpoint } from '../balancing/types.js';
import { HealthStateMachine, type HealthThresholds } from '../health/state-machine.js';

const HISTORY_LENGTH = 20;

/**
 * One registered target at run time: its address, live load counters (read by the balancers), health
 * from active checks, passive ejection, and admin state. Its public `state` is derived from these,
 * in ELB's order of precedence: draining > admin-disabled (unused) > ejected/unhealthy > initial > healthy.
 */
export class Target implements Endpoint {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  configuredWeight: number;
  /** Effective weight seen by the balancers. */
  weight: number;
  outstanding = 0;
  connections = 0;
  /** The part of `outstanding` in flight in other worker processes (see lb/cluster.ts). */
  remoteOutstanding = 0;

  readonly health: HealthStateMachine;
  adminDisabled = false;
  draining = false;
  drainingSince = 0;
  /** Passive outlier ejection: not eligible until this time (epoch ms). */
  ejectedUntil = 0;
  ejectionCount = 0;
  /** Share multiplier from slow start and gray-failure detection, 0 < factor <= 1. */
  slowStartFactor = 1;
  /** When the current slow start began (epoch ms). */
  slowStartBegin = 0;
  grayFactor = 1;

  state: TargetState = 'initial';
  reason: ReasonCode = 'Elb.InitialHealthChecking';
  detail: string | undefined;
  readonly history: TargetTransition[] = [];

  constructor(spec: TargetSpec, thresholds: HealthThresholds) {
    this.id = spec.id;
    this.host = spec.host;
    this.port = spec.port;
    this.configuredWeight = spec.weight;
    this.weight = spec.weight;
    this.health = new HealthStateMachine(thresholds);
  }

  /**
   * A detached copy with the same health, admin state and counters, for "what if" questions (the admin
   * API's dry runs). Kept here so that a new field is copied where it is declared.
   */
  clone(thresholds: HealthThresholds): Target {
    const copy = new Target(
      { id: this.id, host: this.host, port: this.port, weight: this.configuredWeight },
      thresholds,
    );
    copy.health.force(this.health.state, this.health.reason, this.health.detail);
    const { health: _health, history, id: _id, host: _host, port: _port, ...fields } = this;
    Object.assign(copy, fields);
    copy.history.push(...history);
    return copy;
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  /** Whether the balancer may offer this target while at least one target is healthy. */
  isHealthyAndInService(now: number): boolean {
    return !this.draining && !this.adminDisabled && !this.isEjected(now) && this.health.state === 'healthy';
  }

  /** Whether fail-open may use this target (every in-service target is unhealthy). */
  isInService(): boolean {
    return !this.draining && !this.adminDisabled;
  }

  recomputeWeight(): void {
    this.weight = Math.max(this.configuredWeight * this.slowStartFactor * this.grayFactor, 1e-3);
  }

  /** Recomputes the derived state; returns the transition if it changed. */
  refreshState(now: number): TargetTransition | undefined {
    let state: TargetState;
    let reason: ReasonCode;
    let detail: string | undefined;
    if (this.draining) {
      state = 'draining';
      reason = 'Target.DeregistrationInProgress';
    } else if (this.adminDisabled) {
      state = 'unused';
      reason = 'Target.AdminDisabled';
    } else if (this.isEjected(now)) {
      state = 'unhealthy';
      reason = 'Target.OutlierEjected';
      detail = `ejected until ${new Date(this.ejectedUntil).toISOString()}`;
    } else {
      state = this.health.state;
      reason = this.health.reason;
      detail = this.health.detail;
    }
    if (state === this.state && reason === this.reason) {
      this.detail = detail;
      return undefined;
    }
    const transition: TargetTransition = { at: now, from: this.state, to: state, reason, detail };
    this.state = state;
    this.reason = reason;
    this.detail = detail;
    this.history.push(transition);
    if (this.history.length > HISTORY_LENGTH) this.history.shift();
    return transition;
  }
}
