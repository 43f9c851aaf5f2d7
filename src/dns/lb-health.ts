// Health from the load balancer's live state: a DNS address that fronts an LB target group is up
// while that group has a healthy target, withdrawn (draining) while every target of the group is
// draining, and down when the group has no healthy target or the LB cannot be reached. The state is
// read from each LB's admin API (`GET /api/v1/target-groups/NAME`), as under `scaleout up`. The LB's
// checks stay the only judge of its targets; this only reads them.
import type { Logger } from 'pino';
import type { TargetState } from '../core/types.js';
import type { AddressRecordSet } from './record-set.js';

/** What DNS needs to know about an LB target group. */
export interface GroupSummary {
  total: number;
  /** Not draining and not disabled by an operator. */
  inService: number;
  healthy: number;
  /** In service and still in their first checks. */
  checking: number;
}

type Found = ReturnType<AddressRecordSet['targetsFor']>;

function lookup(set: AddressRecordSet, address: string): Found {
  const found = set.targetsFor(address);
  if (found.length === 0) throw new Error(`${address} is not an address of ${set.name}`);
  return found;
}

/** Addresses withdrawn because their LB group drains, so that an operator's own drain is left alone. */
const drainedByLb = new WeakSet<object>();

function applySummary(found: Found, s: GroupSummary, source: string): void {
  const draining = s.total > 0 && s.inService === 0;
  for (const { pool, target } of found) {
    if (draining && !target.draining) {
      target.draining = true;
      target.drainingSince = Date.now();
      drainedByLb.add(target);
    } else if (!draining && target.draining && drainedByLb.has(target)) {
      target.draining = false;
      target.drainingSince = 0;
      drainedByLb.delete(target);
    }
    if (s.healthy > 0) target.health.force('healthy', 'Target.Healthy', `${source} has a healthy target`);
    else if (s.inService > 0 && s.checking === s.inService)
      target.health.force('initial', 'Elb.InitialHealthChecking', `${source} is checking`);
    else target.health.force('unhealthy', 'Target.FailedHealthChecks', `no healthy target in ${source}`);
    pool.group.refresh(target);
  }
}

function markUnreachable(found: Found, detail: string): void {
  for (const { pool, target } of found) {
    target.health.force('unhealthy', 'Target.ConnectionRefused', detail);
    pool.group.refresh(target);
  }
}

/** What the admin API's view of a group (see src/admin/views.ts) says about it. */
export function summarizeGroupView(view: {
  targets: Array<{ state: TargetState; adminDisabled: boolean; draining: boolean }>;
}): GroupSummary {
  const inService = view.targets.filter((t) => !t.adminDisabled && !t.draining);
  return {
    total: view.targets.length,
    inService: inService.length,
    healthy: inService.filter((t) => t.state === 'healthy').length,
    checking: inService.filter((t) => t.state === 'initial').length,
  };
}

export interface LbAdminFollowOptions {
  /** Base URL of the LB's admin API, e.g. http://127.0.0.1:9901 */
  adminUrl: string;
  targetGroup: string;
  token?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Failed polls in a row before the address is withdrawn (an LB that is gone serves no one). */
  unhealthyThreshold: number;
}

/** Polls an LB's admin API and makes `address` of `set` follow the group it reports. */
export class LbAdminFollower {
  private readonly found: Found;
  private readonly url: string;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private polling = false;

  constructor(
    set: AddressRecordSet,
    readonly address: string,
    private readonly options: LbAdminFollowOptions,
    private readonly log: Logger,
  ) {
    this.found = lookup(set, address);
    this.url = `${options.adminUrl.replace(/\/+$/, '')}/api/v1/target-groups/${encodeURIComponent(options.targetGroup)}`;
    for (const { pool, target } of this.found) {
      target.health.force('initial', 'Elb.InitialHealthChecking', `waiting for ${this.url}`);
      pool.group.refresh(target);
    }
  }

  start(): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const res = await fetch(this.url, {
        headers: this.options.token ? { authorization: `Bearer ${this.options.token}` } : {},
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const view = (await res.json()) as Parameters<typeof summarizeGroupView>[0];
      if (!Array.isArray(view?.targets)) throw new Error('answer has no targets list');
      if (this.failures >= this.options.unhealthyThreshold)
        this.log.info(
          { address: this.address, lbAdmin: this.url },
          `LB admin for ${this.address} reachable again`,
        );
      this.failures = 0;
      applySummary(this.found, summarizeGroupView(view), `LB target group ${this.options.targetGroup}`);
    } catch (err) {
      this.failures++;
      const detail = `LB admin ${this.url} unreachable: ${(err as Error).message}`;
      if (this.failures === this.options.unhealthyThreshold) {
        this.log.warn({ address: this.address, lbAdmin: this.url }, detail);
        markUnreachable(this.found, detail);
      }
    } finally {
      this.polling = false;
    }
  }
}
