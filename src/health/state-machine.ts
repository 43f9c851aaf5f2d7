import type { ReasonCode } from '../core/types.js';

/** ELB's health-check thresholds: consecutive results needed to change state. */
export interface HealthThresholds {
  /** Consecutive successes that turn an unhealthy target healthy. */
  healthyThreshold: number;
  /** Consecutive failures that turn a healthy (or initial) target unhealthy. */
  unhealthyThreshold: number;
}

export type HealthState = 'initial' | 'healthy' | 'unhealthy';

export type CheckResult = { ok: true; detail?: string } | { ok: false; reason: ReasonCode; detail?: string };

export interface HealthChange {
  from: HealthState;
  to: HealthState;
  reason: ReasonCode;
  detail?: string;
}

/**
 * Rise/fall counting for one target, as ELB and HAProxy do it. A new target is `initial`; its first
 * passing check makes it healthy (so a fresh deploy takes traffic within one interval), while
 * `unhealthyThreshold` failures make it unhealthy. After that, each direction needs its own threshold
 * of consecutive results. Pure: the active checker feeds it results.
 */
export class HealthStateMachine {
  state: HealthState = 'initial';
  reason: ReasonCode = 'Elb.InitialHealthChecking';
  detail: string | undefined;
  private successes = 0;
  private failures = 0;

  constructor(private thresholds: HealthThresholds) {}

  setThresholds(thresholds: HealthThresholds): void {
    this.thresholds = thresholds;
  }

  observe(result: CheckResult): HealthChange | undefined {
    if (result.ok) {
      this.failures = 0;
      this.successes++;
      const needed = this.state === 'initial' ? 1 : this.thresholds.healthyThreshold;
      if (this.state !== 'healthy' && this.successes >= needed) {
        return this.moveTo('healthy', 'Target.Healthy', result.detail);
      }
    } else {
      this.successes = 0;
      this.failures++;
      if (this.state === 'unhealthy') {
        // Keep the latest failure reason visible without a state change.
        this.reason = result.reason;
        this.detail = result.detail;
      } else if (this.failures >= this.thresholds.unhealthyThreshold) {
        return this.moveTo('unhealthy', result.reason, result.detail);
      }
    }
    return undefined;
  }

  /** Forces a state without checks (health checks disabled, or shared state from another process). */
  force(state: HealthState, reason: ReasonCode, detail?: string): HealthChange | undefined {
    this.successes = 0;
    this.failures = 0;
    if (state === this.state) return undefined;
    return this.moveTo(state, reason, detail);
  }

  private moveTo(to: HealthState, reason: ReasonCode, detail?: string): HealthChange {
    const from = this.state;
    this.state = to;
    this.reason = reason;
    this.detail = detail;
    return { from, to, reason, detail };
  }
}
