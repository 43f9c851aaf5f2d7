import type { Target } from '../registry/target.js';
import type { TargetGroup } from '../registry/target-group.js';

/** Passive checks from live traffic (Envoy's outlier detection, plus a gray-failure share cut). */
export interface PassiveHealthConfig {
  /** Consecutive connect failures or failed answers (5xx, reset, timeout) that eject a target. */
  consecutiveFailures: number;
  /** First ejection time; each further ejection of the same target lasts longer (×count), up to max. */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** Never eject more than this share of a group's targets at once. */
  maxEjectionPercent: number;
  /** A target whose latency EWMA exceeds `slowFactor` × the median of its peers (and `slowMinMs`) is slow. */
  slowFactor: number;
  slowMinMs: number;
  /** The share left to a slow target (its weight multiplier). */
  slowShare: number;
}

export const DEFAULT_PASSIVE_HEALTH: PassiveHealthConfig = {
  consecutiveFailures: 5,
  baseEjectionMs: 10_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 50,
  slowFactor: 3,
  slowMinMs: 50,
  slowShare: 0.2,
};

const EWMA_ALPHA = 0.1;
/** Latency samples a target needs before it can be judged slow. */
const MIN_SAMPLES = 20;

interface Stats {
  consecutiveFailures: number;
  latencyEwma: number;
  samples: number;
}

/**
 * Watches request outcomes per target. Consecutive failures eject a target for a growing time;
 * a target much slower than its peers (a gray failure: alive, passing checks, but slow) keeps only a
 * small share of traffic until it recovers. It writes only ejection and gray factor; active health stays
 * with the active checker.
 */
export class PassiveHealth {
  private readonly stats = new Map<Target, Stats>();
  private lastGrayCheck = 0;

  constructor(
    private readonly group: TargetGroup,
    private config: PassiveHealthConfig = DEFAULT_PASSIVE_HEALTH,
  ) {}

  setConfig(config: PassiveHealthConfig): void {
    this.config = config;
  }

  private statsOf(target: Target): Stats {
    let s = this.stats.get(target);
    if (!s) {
      s = { consecutiveFailures: 0, latencyEwma: 0, samples: 0 };
      this.stats.set(target, s);
    }
    return s;
  }

  recordSuccess(target: Target, latencyMs: number, now: number): void {
    const s = this.statsOf(target);
    s.consecutiveFailures = 0;
    s.latencyEwma = s.samples === 0 ? latencyMs : s.latencyEwma + EWMA_ALPHA * (latencyMs - s.latencyEwma);
    s.samples++;
    if (now - this.lastGrayCheck >= 500) {
      this.lastGrayCheck = now;
      this.updateGrayFactors();
    }
  }

  /**
   * A failure seen by live traffic: `connect` when the target could not be connected to (it cannot
   * serve anything), `answer` for a reset, a timeout or a 5xx after the request went out (it is alive).
   */
  recordFailure(target: Target, now: number, kind: 'connect' | 'answer' = 'answer'): void {
    const s = this.statsOf(target);
    s.consecutiveFailures++;
    if (s.consecutiveFailures < this.config.consecutiveFailures || target.isEjected(now)) return;
    const targets = this.group.list();
    const ejected = targets.filter((t) => t.isEjected(now)).length;
    if (((ejected + 1) / targets.length) * 100 > this.config.maxEjectionPercent && targets.length > 1) return;
    if (targets.length === 1) return; // ejecting the only target helps nobody
    // A target that answers, even with errors, is not ejected when no other target could take its
    // traffic (all others failing their checks or ejected): the errors may be shared (a database
    // outage behind every app), and ejecting it would leave only targets known to be worse.
    if (kind === 'answer' && !targets.some((t) => t !== target && t.isHealthyAndInService(now))) return;
    target.ejectionCount++;
    const duration = Math.min(this.config.baseEjectionMs * target.ejectionCount, this.config.maxEjectionMs);
    target.ejectedUntil = now + duration;
    s.consecutiveFailures = 0;
    this.group.refresh(target, now);
    // Bring it back when the time is up (the group recomputes eligibility then).
    setTimeout(() => this.group.refresh(target), duration + 5).unref();
  }

  /** Compares each target's latency with the median of all targets that have enough samples. */
  private updateGrayFactors(): void {
    const judged: Array<[Target, number]> = [];
    for (const [target, s] of this.stats) {
      if (s.samples >= MIN_SAMPLES && this.group.get(target.id) === target)
        judged.push([target, s.latencyEwma]);
    }
    if (judged.length < 2) return;
    const sorted = judged.map(([, l]) => l).sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    for (const [target, latency] of judged) {
      const slow = latency > this.config.slowMinMs && latency > median * this.config.slowFactor;
      const factor = slow ? this.config.slowShare : 1;
      if (factor !== target.grayFactor) {
        target.grayFactor = factor;
        target.recomputeWeight();
        this.group.refresh(target);
        this.group.emit('gray', target, slow);
      }
    }
  }
}
