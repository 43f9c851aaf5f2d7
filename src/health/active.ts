import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import type { Target } from '../registry/target.js';
import type { TargetGroup } from '../registry/target-group.js';
import type { CheckResult } from './state-machine.js';
import { parseSuccessCodes } from './matcher.js';

/** ELB's health-check parameters, with faster defaults that suit a self-hosted LB. */
export interface HealthCheckConfig {
  protocol: 'http' | 'tcp';
  /** HTTP path (http only). */
  path: string;
  /** Port to probe instead of the target's own port. */
  port?: number;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** ELB matcher syntax: "200", "200,202", "200-399". */
  successCodes: string;
}

export const DEFAULT_HEALTH_CHECK: HealthCheckConfig = {
  protocol: 'http',
  path: '/',
  intervalMs: 2000,
  timeoutMs: 1000,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  successCodes: '200-399',
};

/** Probes one target once. Exported for tests and for one-off checks (`scaleout lb status`). */
export function probe(
  host: string,
  port: number,
  config: Pick<HealthCheckConfig, 'protocol' | 'path' | 'timeoutMs'>,
  isSuccess: (status: number) => boolean,
): Promise<CheckResult> {
  return config.protocol === 'tcp'
    ? probeTcp(host, port, config.timeoutMs)
    : probeHttp(host, port, config, isSuccess);
}

function failureFromError(err: NodeJS.ErrnoException): CheckResult {
  if (err.code === 'ECONNREFUSED')
    return { ok: false, reason: 'Target.ConnectionRefused', detail: err.message };
  if (err.code === 'ETIMEDOUT')
    return { ok: false, reason: 'Target.Timeout', detail: 'health check timed out' };
  return { ok: false, reason: 'Target.FailedHealthChecks', detail: err.code ?? err.message };
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, reason: 'Target.Timeout', detail: `no TCP connect within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: true });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve(failureFromError(err));
    });
  });
}

function probeHttp(
  host: string,
  port: number,
  config: Pick<HealthCheckConfig, 'path' | 'timeoutMs'>,
  isSuccess: (status: number) => boolean,
): Promise<CheckResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: CheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    // A fresh connection per check (agent: false), as ELB does: a check must prove the target accepts
    // connections, not that an old pooled socket is still open.
    const req = http.request({
      host,
      port,
      path: config.path,
      method: 'GET',
      agent: false,
      headers: { 'user-agent': 'scaleout-health-check', connection: 'close' },
    });
    const timer = setTimeout(
      () =>
        done({ ok: false, reason: 'Target.Timeout', detail: `no response within ${config.timeoutMs} ms` }),
      config.timeoutMs,
    );
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      done(
        isSuccess(status)
          ? { ok: true, detail: `HTTP ${status}` }
          : { ok: false, reason: 'Target.ResponseCodeMismatch', detail: `HTTP ${status}` },
      );
    });
    req.on('error', (err) => done(failureFromError(err)));
    req.end();
  });
}

/**
 * Runs active checks for every target of a group and feeds the results into each target's health state
 * machine. It is the only writer of active health; the group recomputes eligibility on each change.
 */
export class ActiveHealthChecker {
  private readonly isSuccess: (status: number) => boolean;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = false;

  constructor(
    private readonly group: TargetGroup,
    private readonly config: HealthCheckConfig,
    private readonly log: Logger = silentLogger,
  ) {
    this.isSuccess = parseSuccessCodes(config.successCodes);
    group.on('transition', (target, t) => {
      const line = { targetGroup: group.name, target: target.id, from: t.from, to: t.to, reason: t.reason };
      if (t.to === 'unhealthy')
        this.log.warn({ ...line, detail: t.detail }, `target ${target.id} is unhealthy`);
      else this.log.info(line, `target ${target.id} is ${t.to}`);
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.sync();
  }

  /** Starts checks for targets registered since the last call and stops those for removed ones. */
  sync(): void {
    if (!this.running) return;
    const ids = new Set(this.group.targets.keys());
    for (const [id, timer] of this.timers) {
      if (!ids.has(id)) {
        clearTimeout(timer);
        this.timers.delete(id);
      }
    }
    for (const target of this.group.targets.values()) {
      // The first check runs at once so a fresh LB knows its targets' health within one timeout.
      if (!this.timers.has(target.id)) this.schedule(target, 0);
    }
  }

  stop(): void {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Probes a target now (used by tests and by the admin API's "check now"). */
  async checkNow(target: Target): Promise<void> {
    const result = await probe(target.host, this.config.port ?? target.port, this.config, this.isSuccess);
    if (!this.running || this.group.get(target.id) !== target) return;
    const change = target.health.observe(result);
    if (!change) return;
    // Checks saw the target fail and recover: a passive ejection from the same outage ends too
    // (Envoy's successful_active_health_check_uneject_host).
    if (change.to === 'healthy' && change.from === 'unhealthy') target.ejectedUntil = 0;
    this.group.refresh(target);
  }

  private schedule(target: Target, delayMs: number): void {
    const timer = setTimeout(async () => {
      await this.checkNow(target);
      if (this.running && this.timers.has(target.id)) this.schedule(target, this.config.intervalMs);
    }, delayMs);
    timer.unref();
    this.timers.set(target.id, timer);
  }
}
