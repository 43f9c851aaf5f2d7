import { createBalancer } from '../balancing/index.js';
import type { AlgorithmName, Selection } from '../balancing/types.js';
import type { Logger } from '../core/log.js';
import type { TargetSpec } from '../core/types.js';
import type { TargetGroupSettings } from '../config/lb-schema.js';
import { ActiveHealthChecker, type HealthCheckConfig } from '../health/active.js';
import { PassiveHealth } from '../health/passive.js';
import type { Target } from '../registry/target.js';
import { TargetGroup } from '../registry/target-group.js';
import { headerValues, type RequestHead } from './http/head-parser.js';
import { findCookie, StickyCookieCodec } from './sticky.js';

/** Where a hash-based algorithm takes its key from. */
export type HashOn =
  { kind: 'source-ip' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

export function parseHashOn(value: string): HashOn {
  if (value === 'source-ip' || value === 'ip') return { kind: 'source-ip' };
  const m = /^(header|cookie):(.+)$/.exec(value);
  if (!m) throw new Error(`hash key "${value}": expected source-ip, header:NAME or cookie:NAME`);
  return m[1] === 'header' ? { kind: 'header', name: m[2]! } : { kind: 'cookie', name: m[2]! };
}

function hashKeyFunction(hashOn: HashOn): (head: RequestHead, clientIp: string) => string | undefined {
  switch (hashOn.kind) {
    case 'source-ip':
      return (_head, ip) => ip;
    case 'header': {
      const lower = hashOn.name.toLowerCase();
      return (head) => headerValues(head, lower)[0];
    }
    case 'cookie':
      return (head) => findCookie(headerValues(head, 'cookie'), hashOn.name);
  }
}

/** The name of the cookie the LB sets for app-cookie stickiness (ALB calls its own AWSALBAPP). */
export const APP_STICKY_COOKIE = 'SCALEOUT_APP_STICKY';

const SLOW_START_TICK_MS = 250;
/** A target entering slow start gets this share at once, so it is never starved entirely. */
const SLOW_START_FLOOR = 0.05;

/** Candidates: a pinned target first (stickiness), then the balancer's order without it. */
class PinnedSelection implements Selection<Target> {
  private pinnedGiven = false;
  constructor(
    private readonly pinned: Target,
    private readonly rest: Selection<Target>,
  ) {}
  next(): Target | undefined {
    if (!this.pinnedGiven) {
      this.pinnedGiven = true;
      return this.pinned;
    }
    let t = this.rest.next();
    if (t === this.pinned) t = this.rest.next();
    return t;
  }
}

/**
 * Algorithms where a lower weight alone does not ramp a target: round robin ignores weights, and the
 * least-load ones send to an idle target whatever its weight. For them slow start also skips a
 * ramping target with probability 1 - factor, so its share rises linearly at any concurrency.
 */
const SKIP_TO_SLOW_START = new Set(['round-robin', 'least-outstanding', 'least-connections']);

/** Offers a ramping target only with probability = its slow-start factor; skipped ones come last. */
class SlowStartSelection implements Selection<Target> {
  private readonly deferred: Target[] = [];
  constructor(
    private readonly inner: Selection<Target>,
    private readonly random: () => number,
  ) {}
  next(): Target | undefined {
    let t: Target | undefined;
    while ((t = this.inner.next()) !== undefined) {
      if (t.slowStartFactor >= 1 || this.random() < t.slowStartFactor) return t;
      this.deferred.push(t);
    }
    return this.deferred.shift();
  }
}

export interface StickyDecision {
  /** The cookie to set on the response, if any ("name=value; attributes"). */
  setCookie?: string;
}

/**
 * One configured target group at run time: the shared TargetGroup plus its active checker, passive
 * health, hash key, stickiness, slow start and draining. Reconfigured in place on reload, so health
 * and load counters survive.
 */
export class GroupRuntime {
  readonly group: TargetGroup;
  readonly passive: PassiveHealth;
  private checker: ActiveHealthChecker | undefined;
  private hashKeyFn: (head: RequestHead, clientIp: string) => string | undefined;
  private slowStartTimer: NodeJS.Timeout | undefined;
  /** Targets deregistered and waiting for their in-flight requests (id → removal deadline). */
  readonly drainDeadlines = new Map<string, number>();
  /** Called when a draining target must be cut off (deregistration delay over) or is fully drained. */
  onTargetRemoved: (target: Target) => void = () => {};

  constructor(
    readonly name: string,
    public settings: TargetGroupSettings,
    private readonly codec: StickyCookieCodec,
    private readonly log: Logger,
    /** A worker process: active health comes from the primary (one prober for all workers). */
    private readonly externalHealth = false,
  ) {
    this.group = new TargetGroup(
      name,
      createBalancer<Target>(settings.algorithm as AlgorithmName),
      thresholds(settings),
    );
    this.passive = new PassiveHealth(this.group, passiveConfig(settings));
    this.hashKeyFn = hashKeyFunction(parseHashOn(settings.hashOn));
    this.group.on('transition', (target, t) => {
      const line = {
        targetGroup: name,
        target: target.id,
        from: t.from,
        to: t.to,
        reason: t.reason,
        detail: t.detail,
      };
      // Workers get health from the primary, which logs each transition once for all of them.
      if (!externalHealth) {
        if (t.to === 'unhealthy') log.warn(line, `target ${target.id} is unhealthy`);
        else log.info(line, `target ${target.id} is ${t.to}`);
      }
      // A recovered target, or one registered after start, ramps up; the targets the group started
      // with do not (there is nobody yet to protect).
      const fresh = t.from === 'initial' && !this.startupTargets.has(target.id);
      if (t.to === 'healthy' && this.settings.slowStart > 0 && (fresh || t.from === 'unhealthy')) {
        this.beginSlowStart(target);
      }
    });
    this.group.on('fail-open', (active) => {
      if (externalHealth) return;
      if (active)
        log.warn(
          { targetGroup: name },
          `every target of ${name} is unhealthy: failing open, routing to all of them`,
        );
      else log.info({ targetGroup: name }, `a target of ${name} is healthy again: fail-open ended`);
    });
    this.group.on('gray', (target, slow) => {
      if (slow)
        log.warn(
          { targetGroup: name, target: target.id },
          `target ${target.id} is much slower than its peers: share cut`,
        );
      else
        log.info(
          { targetGroup: name, target: target.id },
          `target ${target.id} is no longer slow: full share restored`,
        );
    });
    for (const spec of settings.targets) this.register(spec);
    this.startChecks();
  }

  /** Targets present when the group was first configured: they skip slow start on their first check. */
  private readonly startupTargets = new Set<string>();
  private configured = false;

  /** Applies a new configuration for this group (reload): targets added, removed (drained) or re-weighted. */
  reconfigure(
    settings: TargetGroupSettings,
    runtimeTargets: TargetSpec[],
    removedByAdmin: Set<string>,
  ): void {
    const old = this.settings;
    this.settings = settings;
    if (settings.algorithm !== old.algorithm) {
      this.group.setBalancer(createBalancer<Target>(settings.algorithm as AlgorithmName));
    }
    this.hashKeyFn = hashKeyFunction(parseHashOn(settings.hashOn));
    this.passive.setConfig(passiveConfig(settings));
    const wanted = new Map<string, TargetSpec>();
    for (const spec of [...settings.targets, ...runtimeTargets])
      if (!removedByAdmin.has(spec.id)) wanted.set(spec.id, spec);
    for (const target of this.group.list()) {
      if (!wanted.has(target.id) && !target.draining) this.deregister(target.id);
    }
    for (const spec of wanted.values()) {
      if (!this.configured) this.startupTargets.add(spec.id);
      this.register(spec);
    }
    this.configured = true;
    if (JSON.stringify(settings.healthCheck) !== JSON.stringify(old.healthCheck)) {
      this.group.setThresholds(thresholds(settings));
      this.checker?.stop();
      this.checker = undefined;
      this.startChecks();
    } else {
      this.checker?.sync();
    }
    this.group.refresh();
  }

  private startChecks(): void {
    const hc = this.settings.healthCheck;
    if (this.externalHealth) return;
    if (!hc.enabled) {
      for (const t of this.group.list()) t.health.force('healthy', 'Target.HealthCheckDisabled');
      this.group.refresh();
      return;
    }
    const config: HealthCheckConfig = {
      protocol: hc.protocol,
      path: hc.path,
      port: hc.port,
      intervalMs: hc.interval,
      timeoutMs: hc.timeout,
      healthyThreshold: hc.healthyThreshold,
      unhealthyThreshold: hc.unhealthyThreshold,
      successCodes: hc.successCodes,
    };
    this.checker = new ActiveHealthChecker(this.group, config);
    this.checker.start();
  }

  register(spec: TargetSpec): Target {
    const existing = this.group.get(spec.id);
    this.drainDeadlines.delete(spec.id);
    const target = this.group.register(spec);
    if (!this.externalHealth && !this.settings.healthCheck.enabled && target.health.state === 'initial') {
      target.health.force('healthy', 'Target.HealthCheckDisabled');
      this.group.refresh(target);
    }
    if (!existing) this.checker?.sync();
    return target;
  }

  /** Starts draining a target: no new requests; in-flight ones get the deregistration delay. */
  deregister(id: string): boolean {
    const target = this.group.get(id);
    if (!target) return false;
    if (!target.draining) {
      target.draining = true;
      target.drainingSince = Date.now();
      this.drainDeadlines.set(id, Date.now() + this.settings.deregistrationDelay);
      this.group.refresh(target);
      this.log.info(
        { targetGroup: this.name, target: id, delayMs: this.settings.deregistrationDelay },
        `draining target ${id}`,
      );
    }
    this.checkDrained(target);
    return true;
  }

  setDisabled(id: string, disabled: boolean): boolean {
    const target = this.group.get(id);
    if (!target) return false;
    target.adminDisabled = disabled;
    this.group.refresh(target);
    return true;
  }

  setWeight(id: string, weight: number): boolean {
    const target = this.group.get(id);
    if (!target) return false;
    target.configuredWeight = weight;
    target.recomputeWeight();
    this.group.refresh(target);
    return true;
  }

  /** A draining target with nothing in flight is removed; past its deadline it is cut off. */
  checkDrained(target: Target, now = Date.now()): void {
    if (!target.draining || this.group.get(target.id) !== target) return;
    const deadline = this.drainDeadlines.get(target.id) ?? now;
    if (target.outstanding === 0 || now >= deadline) {
      if (target.outstanding > 0) {
        this.log.warn(
          { targetGroup: this.name, target: target.id, inFlight: target.outstanding },
          'deregistration delay over: cutting in-flight requests',
        );
      } else {
        this.log.info({ targetGroup: this.name, target: target.id }, `target ${target.id} is drained`);
      }
      this.drainDeadlines.delete(target.id);
      this.group.remove(target.id);
      this.checker?.sync();
      this.onTargetRemoved(target);
    }
  }

  /** Periodic housekeeping: drain deadlines. */
  tick(now: number): void {
    for (const id of this.drainDeadlines.keys()) {
      const t = this.group.get(id);
      if (t) this.checkDrained(t, now);
      else this.drainDeadlines.delete(id);
    }
  }

  /** Candidates for a request: the sticky target first when it is still eligible. */
  select(head: RequestHead, clientIp: string): Selection<Target> {
    let selection = this.group.select({ hashKey: this.hashKeyFn(head, clientIp) });
    if (this.settings.slowStart > 0 && SKIP_TO_SLOW_START.has(this.settings.algorithm)) {
      selection = new SlowStartSelection(selection, Math.random);
    }
    const sticky = this.settings.stickiness;
    if (sticky) {
      const name = sticky.type === 'lb-cookie' ? sticky.cookieName : APP_STICKY_COOKIE;
      const value = findCookie(headerValues(head, 'cookie'), name);
      const id = value === undefined ? undefined : this.codec.decode(value, Date.now());
      const pinned = id === undefined ? undefined : this.group.get(id);
      if (pinned && this.group.eligibleTargets().includes(pinned))
        return new PinnedSelection(pinned, selection);
    }
    return selection;
  }

  /** The Set-Cookie to add to a response from `target`, if stickiness wants one. */
  stickyCookie(target: Target, responseSetsCookie: (name: string) => boolean): string | undefined {
    const sticky = this.settings.stickiness;
    if (!sticky) return undefined;
    if (sticky.type === 'app-cookie' && !responseSetsCookie(sticky.cookieName)) return undefined;
    const name = sticky.type === 'lb-cookie' ? sticky.cookieName : APP_STICKY_COOKIE;
    const value = this.codec.encode(target.id, Date.now() + sticky.duration);
    return `${name}=${value}; Max-Age=${Math.floor(sticky.duration / 1000)}; Path=/; HttpOnly; SameSite=Lax`;
  }

  private beginSlowStart(target: Target): void {
    // Only when others already carry traffic: a group starting cold has nobody to protect.
    const othersServing = this.group.list().some((t) => t !== target && t.state === 'healthy');
    if (!othersServing) return;
    target.slowStartBegin = Date.now();
    target.slowStartFactor = SLOW_START_FLOOR;
    target.recomputeWeight();
    this.group.refresh(target);
    this.slowStartTimer ??= setInterval(() => this.rampSlowStart(), SLOW_START_TICK_MS);
    this.slowStartTimer.unref();
  }

  private rampSlowStart(): void {
    const now = Date.now();
    let ramping = false;
    for (const t of this.group.list()) {
      if (t.slowStartFactor >= 1) continue;
      const share = (now - t.slowStartBegin) / this.settings.slowStart;
      t.slowStartFactor = share >= 1 ? 1 : Math.max(SLOW_START_FLOOR, share);
      t.recomputeWeight();
      ramping ||= t.slowStartFactor < 1;
    }
    this.group.refresh();
    if (!ramping && this.slowStartTimer) {
      clearInterval(this.slowStartTimer);
      this.slowStartTimer = undefined;
    }
  }

  /** A health verdict from the primary's prober (worker processes only). */
  applyExternalHealth(
    id: string,
    state: 'initial' | 'healthy' | 'unhealthy',
    reason: Target['reason'],
    detail?: string,
  ): void {
    const target = this.group.get(id);
    if (!target) return;
    const change = target.health.force(state, reason, detail);
    if (change?.to === 'healthy' && change.from === 'unhealthy') target.ejectedUntil = 0;
    this.group.refresh(target);
  }

  stop(): void {
    this.checker?.stop();
    if (this.slowStartTimer) clearInterval(this.slowStartTimer);
    this.slowStartTimer = undefined;
  }
}

function thresholds(settings: TargetGroupSettings) {
  return {
    healthyThreshold: settings.healthCheck.healthyThreshold,
    unhealthyThreshold: settings.healthCheck.unhealthyThreshold,
  };
}

function passiveConfig(settings: TargetGroupSettings) {
  const p = settings.passiveHealth;
  return {
    consecutiveFailures: p.consecutiveFailures,
    baseEjectionMs: p.baseEjection,
    maxEjectionMs: p.maxEjection,
    maxEjectionPercent: p.maxEjectionPercent,
    slowFactor: p.slowFactor,
    slowMinMs: p.slowMin,
    slowShare: p.slowShare,
  };
}
