import { EventEmitter } from 'node:events';
import type { TargetSpec, TargetTransition } from '../core/types.js';
import type { Balancer, PickContext, Selection } from '../balancing/types.js';
import type { HealthThresholds } from '../health/state-machine.js';
import { Target } from './target.js';

export interface TargetGroupEvents {
  transition: [target: Target, transition: TargetTransition];
  'fail-open': [active: boolean];
  /** Passive checks found a target much slower than its peers (true) or recovered (false). */
  gray: [target: Target, slow: boolean];
}

/**
 * The runtime set of targets behind one balancer. Health, passive checks and the admin API change
 * targets; this class recomputes the eligible set and hands it to the balancer. Fail-open, as ELB does
 * it: when no in-service target is healthy, every in-service target is eligible.
 */
export class TargetGroup extends EventEmitter<TargetGroupEvents> {
  readonly targets = new Map<string, Target>();
  private eligible: Target[] = [];
  failOpen = false;

  constructor(
    readonly name: string,
    private balancer: Balancer<Target>,
    private thresholds: HealthThresholds,
  ) {
    super();
  }

  get algorithm(): Balancer<Target>['algorithm'] {
    return this.balancer.algorithm;
  }

  /** Swaps the algorithm (config reload); the new balancer gets the current eligible set at once. */
  setBalancer(balancer: Balancer<Target>): void {
    this.balancer = balancer;
    balancer.update(this.eligible);
  }

  /** New health-check thresholds apply to every target from its next check on. */
  setThresholds(thresholds: HealthThresholds): void {
    this.thresholds = thresholds;
    for (const t of this.targets.values()) t.health.setThresholds(thresholds);
  }

  register(spec: TargetSpec): Target {
    const existing = this.targets.get(spec.id);
    if (existing) {
      existing.draining = false;
      existing.configuredWeight = spec.weight;
      existing.recomputeWeight();
      this.refresh(existing);
      return existing;
    }
    const target = new Target(spec, this.thresholds);
    this.targets.set(spec.id, target);
    this.refresh(target);
    return target;
  }

  /** Removes a target from the set right away (after draining, or when its drain delay is zero). */
  remove(id: string): void {
    if (this.targets.delete(id)) this.rebuild();
  }

  get(id: string): Target | undefined {
    return this.targets.get(id);
  }

  list(): Target[] {
    return [...this.targets.values()];
  }

  select(ctx?: PickContext): Selection<Target> {
    return this.balancer.select(ctx);
  }

  /** Call after changing anything on a target: recomputes its state and the eligible set. */
  refresh(target?: Target, now = Date.now()): void {
    const targets = target ? [target] : this.targets.values();
    for (const t of targets) {
      const transition = t.refreshState(now);
      if (transition) this.emit('transition', t, transition);
    }
    this.rebuild(now);
  }

  private rebuild(now = Date.now()): void {
    const healthy: Target[] = [];
    const inService: Target[] = [];
    for (const t of this.targets.values()) {
      if (!t.isInService()) continue;
      inService.push(t);
      if (t.isHealthyAndInService(now)) healthy.push(t);
    }
    // A target still in its first checks does not trigger fail-open: only proven-unhealthy ones do.
    const allUnhealthy =
      healthy.length === 0 && inService.length > 0 && inService.every((t) => t.state === 'unhealthy');
    const failOpen = allUnhealthy;
    if (failOpen) {
      // Fail open, as ELB does, but not onto targets that live traffic just found refusing or failing
      // (passively ejected): the checks may be wrong about the others, not about those. If that leaves
      // none, all of them.
      const notEjected = inService.filter((t) => !t.isEjected(now));
      this.eligible = notEjected.length > 0 ? notEjected : inService;
    } else {
      this.eligible = healthy;
    }
    if (healthy.length === 0 && !failOpen) {
      // Nothing proven healthy and nothing proven unhealthy yet (all initial): offer them all.
      this.eligible = inService;
    }
    if (failOpen !== this.failOpen) {
      this.failOpen = failOpen;
      this.emit('fail-open', failOpen);
    }
    this.balancer.update(this.eligible);
  }

  eligibleTargets(): readonly Target[] {
    return this.eligible;
  }
}
