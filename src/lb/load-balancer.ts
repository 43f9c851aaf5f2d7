import type { AddressInfo } from 'node:net';
import type { AlgorithmName } from '../balancing/types.js';
import { createBalancer } from '../balancing/index.js';
import type { Logger } from '../core/log.js';
import type { TargetSpec } from '../core/types.js';
import { ActiveHealthChecker, DEFAULT_HEALTH_CHECK, type HealthCheckConfig } from '../health/active.js';
import { DEFAULT_PASSIVE_HEALTH, PassiveHealth, type PassiveHealthConfig } from '../health/passive.js';
import type { Target } from '../registry/target.js';
import { TargetGroup } from '../registry/target-group.js';
import type { ClientTimeouts } from './http/session.js';
import type { HeadLimits } from './http/head-parser.js';
import { HttpListener, type HashOn } from './http/listener.js';
import type { UpstreamOptions } from './http/upstream.js';
import { RetryBudget } from './retry-budget.js';

export interface LoadBalancerOptions {
  host: string;
  port: number;
  targets: TargetSpec[];
  algorithm: AlgorithmName;
  hashOn: HashOn;
  /** `false` disables active checks: targets are then trusted until passive checks say otherwise. */
  healthCheck: HealthCheckConfig | false;
  passiveHealth: PassiveHealthConfig;
  upstream: UpstreamOptions;
  limits: HeadLimits;
  timeouts: ClientTimeouts;
  maxAttempts: number;
  retryBudgetRatio: number;
  trustedProxies: string[];
  drainTimeoutMs: number;
  log: Logger;
}

export const DEFAULT_LB_OPTIONS: Omit<LoadBalancerOptions, 'targets' | 'log'> = {
  host: '127.0.0.1',
  port: 8080,
  algorithm: 'weighted-round-robin',
  hashOn: { kind: 'source-ip' },
  healthCheck: DEFAULT_HEALTH_CHECK,
  passiveHealth: DEFAULT_PASSIVE_HEALTH,
  upstream: {
    connectTimeoutMs: 3000,
    // Below Node's 5 s server keep-alive default, so we close an idle socket before the target does.
    idleTimeoutMs: 4000,
    responseTimeoutMs: 60_000,
    maxIdlePerTarget: 256,
    limits: { maxHeaderBytes: 64 * 1024, maxHeaderCount: 200 },
  },
  limits: { maxHeaderBytes: 16 * 1024, maxHeaderCount: 100 },
  timeouts: { headerMs: 10_000, idleMs: 60_000 },
  maxAttempts: 3,
  retryBudgetRatio: 0.2,
  trustedProxies: [],
  drainTimeoutMs: 30_000,
};

/** `scaleout lb` with one listener and one target group: the pieces wired together. */
export class LoadBalancer {
  readonly group: TargetGroup;
  readonly listener: HttpListener;
  readonly checker: ActiveHealthChecker | undefined;
  readonly passive: PassiveHealth;
  address: AddressInfo | undefined;

  constructor(readonly options: LoadBalancerOptions) {
    const healthCheck = options.healthCheck;
    const thresholds = healthCheck
      ? { healthyThreshold: healthCheck.healthyThreshold, unhealthyThreshold: healthCheck.unhealthyThreshold }
      : { healthyThreshold: 1, unhealthyThreshold: 1 };
    this.group = new TargetGroup('default', createBalancer<Target>(options.algorithm), thresholds);
    for (const spec of options.targets) {
      const target = this.group.register(spec);
      if (!healthCheck) target.health.force('healthy', 'Target.HealthCheckDisabled');
    }
    this.group.refresh();
    this.passive = new PassiveHealth(this.group, options.passiveHealth);
    this.checker = healthCheck ? new ActiveHealthChecker(this.group, healthCheck, options.log) : undefined;
    this.listener = new HttpListener({
      host: options.host,
      port: options.port,
      group: this.group,
      passive: this.passive,
      retryBudget: new RetryBudget(options.retryBudgetRatio),
      upstream: options.upstream,
      limits: options.limits,
      timeouts: options.timeouts,
      maxAttempts: options.maxAttempts,
      trustedProxies: options.trustedProxies,
      hashOn: options.hashOn,
      log: options.log,
    });
    this.group.on('fail-open', (active) => {
      if (active)
        options.log.warn(
          { targetGroup: this.group.name },
          'every target is unhealthy: failing open, routing to all of them',
        );
      else options.log.info({ targetGroup: this.group.name }, 'a target is healthy again: fail-open ended');
    });
    this.group.on('gray', (target, slow) => {
      if (slow)
        options.log.warn(
          { target: target.id },
          `target ${target.id} is much slower than its peers: its share is cut`,
        );
      else
        options.log.info({ target: target.id }, `target ${target.id} is no longer slow: full share restored`);
    });
    if (!this.checker) {
      this.group.on('transition', (target, t) =>
        options.log.info(
          { target: target.id, from: t.from, to: t.to, reason: t.reason },
          `target ${target.id} is ${t.to}`,
        ),
      );
    }
  }

  async start(): Promise<AddressInfo> {
    this.address = await this.listener.listen();
    this.checker?.start();
    return this.address;
  }

  /** Resolves once every target has had its first health verdict (or after `maxWaitMs`). */
  async firstHealthVerdict(maxWaitMs: number): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (Date.now() < deadline && this.group.list().some((t) => t.state === 'initial')) {
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<void> {
    this.checker?.stop();
    await this.listener.close(this.options.drainTimeoutMs);
  }
}
