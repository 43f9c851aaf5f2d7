// Health-aware address record sets (A/AAAA) and their routing policies. Each set's addresses are
// targets of shared TargetGroups (src/registry), checked by the shared ActiveHealthChecker, and picked
// by balancers from the shared factory (src/balancing). What is DNS-specific lives here: how many
// addresses go in one answer, failover and source rules, and gdnsd-style fail-open (up_thresh).
import { BlockList, isIPv4 } from 'node:net';
import type { Logger } from '../core/log.js';
import { createBalancer } from '../balancing/index.js';
import type { AlgorithmName, Balancer, Selection } from '../balancing/types.js';
import { ActiveHealthChecker, type HealthCheckConfig } from '../health/active.js';
import type { HealthThresholds } from '../health/state-machine.js';
import type { Target } from '../registry/target.js';
import { TargetGroup } from '../registry/target-group.js';
import { encodeRRTail, keyToName, TYPE, type ClientSubnet } from './wire.js';
import { packetRdata } from './zone-file.js';

export type RoutingPolicy = 'simple' | 'multivalue' | 'weighted' | 'failover' | 'source';

export interface AddressSpec {
  address: string;
  weight: number;
}

export interface SourceRule {
  subnets: string[];
  addresses: AddressSpec[];
}

export interface RecordSetSpec {
  ownerKey: string;
  type: 'A' | 'AAAA';
  ttl: number;
  policy: RoutingPolicy;
  /** simple, multivalue, weighted: the addresses; failover: the primary set; source: the default set. */
  addresses: AddressSpec[];
  /** failover only. */
  secondary?: AddressSpec[];
  /** source only: checked in order, first match wins. */
  sources?: SourceRule[];
  /** Active checks; undefined means every address counts as healthy unless an LB says otherwise. */
  healthCheck?: HealthCheckConfig;
  /** Fail open when fewer than this share of in-service addresses is up (gdnsd's up_thresh). */
  upThreshold: number;
  /** multivalue: most addresses in one answer. */
  maxAnswers: number;
}

export interface ClientInfo {
  address: string;
  ecs: ClientSubnet | undefined;
}

/** Multivalue answers carry at most 8 addresses, as Route 53's multivalue answers do. */
export const MULTIVALUE_MAX = 8;

/**
 * Wraps a balancer so that its eligible set follows gdnsd's up_thresh instead of the group's own
 * all-unhealthy rule: if fewer than `threshold` of the in-service addresses are up, every in-service
 * address is offered. Targets still in their first checks count as up (not proven down).
 */
export class UpThresholdBalancer implements Balancer<Target> {
  readonly algorithm: AlgorithmName;
  readonly input;
  group: TargetGroup | undefined;
  failOpen = false;
  upCount = 0;
  inServiceCount = 0;
  /** The addresses currently offered. */
  eligible: readonly Target[] = [];

  constructor(
    private readonly inner: Balancer<Target>,
    private readonly threshold: number,
    private readonly onFailOpen: (active: boolean, up: number, total: number) => void,
  ) {
    this.algorithm = inner.algorithm;
    this.input = inner.input;
  }

  update(eligible: readonly Target[]): void {
    if (!this.group) {
      this.eligible = eligible;
      this.inner.update(eligible);
      return;
    }
    const now = Date.now();
    const inService: Target[] = [];
    const up: Target[] = [];
    for (const t of this.group.targets.values()) {
      if (!t.isInService()) continue;
      inService.push(t);
      if (t.health.state !== 'unhealthy' && !t.isEjected(now)) up.push(t);
    }
    const failOpen =
      inService.length > 0 && (up.length === 0 || up.length < this.threshold * inService.length);
    this.upCount = up.length;
    this.inServiceCount = inService.length;
    this.eligible = failOpen ? inService : up;
    this.inner.update(this.eligible);
    if (failOpen !== this.failOpen) {
      this.failOpen = failOpen;
      this.onFailOpen(failOpen, up.length, inService.length);
    }
  }

  select(): Selection<Target> {
    return this.inner.select();
  }
}

/** One group of addresses with its own health and balancer (a record set has one to a few). */
export class AddressPool {
  readonly group: TargetGroup;
  readonly balancer: UpThresholdBalancer;
  readonly tails = new Map<Target, Buffer>();
  private checker: ActiveHealthChecker | undefined;

  constructor(
    readonly name: string,
    readonly label: string,
    addresses: AddressSpec[],
    algorithm: AlgorithmName,
    private readonly spec: RecordSetSpec,
    log: Logger,
  ) {
    this.balancer = new UpThresholdBalancer(
      createBalancer<Target>(algorithm),
      spec.upThreshold,
      (active, up, total) => {
        const line = { recordSet: name, pool: label, up, inService: total, upThreshold: spec.upThreshold };
        if (active)
          log.warn(
            line,
            `fail-open: ${up} of ${total} addresses of ${name} ${label} up, answering with all ${total}`,
          );
        else log.info(line, `fail-open ended: ${up} of ${total} addresses of ${name} ${label} up`);
      },
    );
    const thresholds: HealthThresholds = spec.healthCheck ?? { healthyThreshold: 2, unhealthyThreshold: 2 };
    this.group = new TargetGroup(`${name} ${label}`, this.balancer, thresholds);
    const healthPort = spec.healthCheck?.port ?? 0;
    for (const a of addresses) {
      const target = this.group.register({
        id: a.address,
        host: a.address,
        port: healthPort,
        weight: a.weight,
      });
      if (!spec.healthCheck) target.health.force('healthy', 'Target.HealthCheckDisabled');
      const rdata = packetRdata(spec.type === 'A' ? 'a' : 'aaaa', a.address);
      this.tails.set(target, encodeRRTail({ type: TYPE[spec.type], ttl: spec.ttl, rdata: [rdata] }));
    }
    this.balancer.group = this.group;
    this.group.refresh();
    if (spec.healthCheck) this.checker = new ActiveHealthChecker(this.group, spec.healthCheck, log);
  }

  start(): void {
    this.checker?.start();
  }

  stop(): void {
    this.checker?.stop();
  }

  /** Addresses proven healthy or not yet checked, and in service. */
  get upCount(): number {
    return this.balancer.upCount;
  }

  select(): Selection<Target> {
    return this.group.select();
  }
}

interface CompiledRule {
  subnets: BlockList;
  pool: AddressPool;
}

const POLICY_ALGORITHM: Record<RoutingPolicy, AlgorithmName> = {
  simple: 'round-robin',
  multivalue: 'round-robin',
  weighted: 'weighted-round-robin',
  failover: 'round-robin',
  source: 'round-robin',
};

/** Answer counts per address: total since start and a one-minute window in 10 s slots. */
export class SpreadStats {
  static readonly SLOTS = 6;
  static slot = 0;
  private readonly counts = new Map<Target, { total: number; window: number[] }>();

  record(t: Target): void {
    let c = this.counts.get(t);
    if (!c) this.counts.set(t, (c = { total: 0, window: new Array<number>(SpreadStats.SLOTS).fill(0) }));
    c.total++;
    c.window[SpreadStats.slot]!++;
  }

  /** Called every 10 s: starts a new slot, forgetting the oldest. */
  static advance(all: Iterable<SpreadStats>): void {
    SpreadStats.slot = (SpreadStats.slot + 1) % SpreadStats.SLOTS;
    for (const s of all) for (const c of s.counts.values()) c.window[SpreadStats.slot] = 0;
  }

  totalOf(t: Target): number {
    return this.counts.get(t)?.total ?? 0;
  }

  windowCount(t: Target): number {
    return (this.counts.get(t)?.window ?? []).reduce((a, b) => a + b, 0);
  }
}

/** A health-aware A or AAAA record set with a routing policy. */
export class AddressRecordSet {
  readonly name: string;
  readonly typeCode: number;
  readonly pools: AddressPool[];
  readonly stats = new SpreadStats();
  /** Whether the answer depends on the client's subnet (then ECS gets a scope in the reply). */
  readonly scoped: boolean;
  private readonly rules: CompiledRule[] = [];
  private readonly random: () => number;

  constructor(
    readonly spec: RecordSetSpec,
    log: Logger,
    random: () => number = Math.random,
  ) {
    this.name = `${keyToName(spec.ownerKey)}/${spec.type}`;
    this.typeCode = TYPE[spec.type];
    this.random = random;
    this.scoped = spec.policy === 'source';
    const algorithm = POLICY_ALGORITHM[spec.policy];
    const main = new AddressPool(
      this.name,
      spec.policy === 'failover' ? 'primary' : 'default',
      spec.addresses,
      algorithm,
      spec,
      log,
    );
    this.pools = [main];
    if (spec.policy === 'failover') {
      this.pools.push(new AddressPool(this.name, 'secondary', spec.secondary ?? [], algorithm, spec, log));
    }
    if (spec.policy === 'source') {
      (spec.sources ?? []).forEach((rule, i) => {
        const subnets = new BlockList();
        for (const s of rule.subnets) addSubnet(subnets, s);
        const pool = new AddressPool(
          this.name,
          `source[${i}] ${rule.subnets.join(',')}`,
          rule.addresses,
          algorithm,
          spec,
          log,
        );
        this.pools.push(pool);
        this.rules.push({ subnets, pool });
      });
    }
  }

  get ttl(): number {
    return this.spec.ttl;
  }

  start(): void {
    for (const p of this.pools) p.start();
  }

  stop(): void {
    for (const p of this.pools) p.stop();
  }

  /**
   * The addresses for one answer, in answer order. Returns the pool too, so the caller can find each
   * address's pre-encoded record. Records the first address in the spread statistics.
   */
  pick(client: ClientInfo): { pool: AddressPool; targets: Target[] } {
    const pool = this.choosePool(client);
    const targets: Target[] = [];
    const sel = pool.select();
    switch (this.spec.policy) {
      case 'weighted': {
        const t = sel.next();
        if (t) targets.push(t);
        break;
      }
      case 'multivalue': {
        for (let t = sel.next(); t; t = sel.next()) targets.push(t);
        // Fisher-Yates: every order equally likely; then keep the first maxAnswers.
        for (let i = targets.length - 1; i > 0; i--) {
          const j = Math.floor(this.random() * (i + 1));
          const tmp = targets[i]!;
          targets[i] = targets[j]!;
          targets[j] = tmp;
        }
        if (targets.length > this.spec.maxAnswers) targets.length = this.spec.maxAnswers;
        break;
      }
      default:
        // simple, failover, source: every eligible address, rotated by the round-robin cursor.
        for (let t = sel.next(); t; t = sel.next()) targets.push(t);
    }
    if (targets.length > 0) this.stats.record(targets[0]!);
    return { pool, targets };
  }

  private choosePool(client: ClientInfo): AddressPool {
    const main = this.pools[0]!;
    if (this.spec.policy === 'failover') {
      const secondary = this.pools[1]!;
      // Route 53's rule: the secondary answers only while the primary has nothing up; if both are
      // down, the primary answers (fail-open).
      return main.upCount === 0 && secondary.upCount > 0 ? secondary : main;
    }
    if (this.rules.length > 0) {
      const { text, family } = clientAddress(client);
      for (const rule of this.rules) {
        if (rule.subnets.check(text, family))
          return rule.pool.upCount > 0 || main.upCount === 0 ? rule.pool : main;
      }
    }
    return main;
  }

  /** Every pool target with this address (an address may sit in several pools). */
  targetsFor(address: string): Array<{ pool: AddressPool; target: Target }> {
    const out: Array<{ pool: AddressPool; target: Target }> = [];
    for (const pool of this.pools) {
      const t = pool.group.get(address);
      if (t) out.push({ pool, target: t });
    }
    return out;
  }

  /** Every configured address (for zone transfers and status). */
  allAddresses(): string[] {
    return [...new Set(this.pools.flatMap((p) => [...p.group.targets.keys()]))];
  }
}

function addSubnet(list: BlockList, cidr: string): void {
  const [addr, bits] = cidr.split('/');
  const family = isIPv4(addr ?? '') ? 'ipv4' : 'ipv6';
  const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits);
  list.addSubnet(addr!, prefix, family);
}

/** The address that source rules match: the EDNS client subnet if sent, else the resolver's. */
function clientAddress(client: ClientInfo): { text: string; family: 'ipv4' | 'ipv6' } {
  const ecs = client.ecs;
  if (ecs) {
    if (ecs.family === 1) {
      const b = [0, 0, 0, 0].map((_, i) => ecs.address[i] ?? 0);
      return { text: b.join('.'), family: 'ipv4' };
    }
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2)
      groups.push((((ecs.address[i] ?? 0) << 8) | (ecs.address[i + 1] ?? 0)).toString(16));
    return { text: groups.join(':'), family: 'ipv6' };
  }
  const mapped = client.address.startsWith('::ffff:') ? client.address.slice(7) : client.address;
  return { text: mapped, family: isIPv4(mapped) ? 'ipv4' : 'ipv6' };
}
