// Builds and runs `scaleout dns` from a validated config: zones, record sets with health checks, the
// responder, the UDP/TCP server, the admin endpoint, and the drain bookkeeping.
import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import type { Logger } from '../core/log.js';
import { formatHostPort, parseHostPort } from '../core/types.js';
import type { HealthCheckConfig } from '../health/active.js';
import type { DnsConfig, RecordSetConfig, ZoneConfig } from './config.js';
import { ConfigError } from './config.js';
import { DnsMetrics } from './metrics.js';
import {
  AddressRecordSet,
  MULTIVALUE_MAX,
  SpreadStats,
  type AddressSpec,
  type RecordSetSpec,
} from './record-set.js';
import { Responder } from './responder.js';
import { RateLimiter } from './rrl.js';
import { DnsServer } from './server.js';
import { Zone, ZoneSet } from './zone.js';
import { parseRecordLine, parseZoneFile, ZoneError, type ZoneRecord } from './zone-file.js';
import { keyToName, nameToKey } from './wire.js';
import { AdminServer } from './admin.js';
import { buildStatus, type DnsStatus } from './status.js';
import { LbAdminFollower } from './lb-health.js';

export interface DnsServiceOptions {
  log: Logger;
  /** Where the config came from ("dns.yaml" or "command line"), for error messages. */
  source: string;
  /** Base folder for relative zone file paths. */
  baseDir: string;
}

function toAddresses(list: RecordSetConfig['addresses']): AddressSpec[] {
  return list.map((a) =>
    typeof a === 'string' ? { address: a, weight: 1 } : { address: a.address, weight: a.weight },
  );
}

function relativeKey(name: string, originKey: string): string {
  if (name === '@') return originKey;
  if (name.endsWith('.')) return nameToKey(name);
  return nameToKey(name).slice(0, -1) + originKey;
}

/** The zone's records: from its file, or a synthesized SOA + NS, plus the config's extra records. */
function zoneRecords(
  zc: ZoneConfig,
  where: string,
  baseDir: string,
): { originKey: string; records: ZoneRecord[] } {
  let originKey: string;
  let records: ZoneRecord[];
  if (zc.file) {
    const path = resolvePath(baseDir, zc.file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ZoneError(zc.file, undefined, `cannot read zone file: ${(err as Error).message}`);
    }
    const parsed = parseZoneFile(text, zc.file, {
      origin: zc.name ? (zc.name.endsWith('.') ? zc.name : `${zc.name}.`) : undefined,
    });
    originKey = parsed.originKey;
    if (zc.name && nameToKey(zc.name) !== originKey) {
      throw new ZoneError(
        zc.file,
        undefined,
        `its SOA is for ${keyToName(originKey)}, but the config names the zone ${zc.name}`,
      );
    }
    records = parsed.records;
  } else {
    originKey = nameToKey(zc.name!);
    const apex = keyToName(originKey);
    const soa = `@ ${zc.ttl} SOA ns.${apex} hostmaster.${apex} 1 3600 600 86400 ${Math.min(zc.ttl, 60)}`;
    records = [
      parseRecordLine(soa, originKey, zc.ttl, `${where} (synthesized SOA)`),
      parseRecordLine(`@ ${zc.ttl} NS ns.${apex}`, originKey, zc.ttl, `${where} (synthesized NS)`),
    ];
  }
  zc.records.forEach((text, j) =>
    records.push(parseRecordLine(text, originKey, zc.ttl, `${where}.records[${j}]`)),
  );
  return { originKey, records };
}

export class DnsService {
  readonly zones = new ZoneSet();
  readonly metrics = new DnsMetrics();
  readonly responder: Responder;
  readonly server: DnsServer;
  readonly rrl: RateLimiter;
  private admin: AdminServer | undefined;
  private timers: NodeJS.Timeout[] = [];
  private readonly lbFollowers: LbAdminFollower[] = [];
  listenAddress = '';
  adminAddress: string | undefined;

  constructor(
    readonly config: DnsConfig,
    private readonly options: DnsServiceOptions,
  ) {
    const { log, source } = options;
    config.zones.forEach((zc, i) => {
      const where = `${source}: dns.zones[${i}]`;
      const { originKey, records } = zoneRecords(zc, where, options.baseDir);
      const zone = new Zone(originKey, records);
      zc.recordSets.forEach((rs, k) => {
        const setWhere = `${where}.recordSets[${k}]`;
        let ownerKey: string;
        try {
          ownerKey = relativeKey(rs.name, originKey);
        } catch (err) {
          throw new ConfigError(`${setWhere}.name: ${(err as Error).message}`);
        }
        const set = new AddressRecordSet(this.recordSetSpec(rs, ownerKey), log);
        zone.addRecordSet(set, setWhere);
        if (rs.followLb) this.followLb(set, rs);
      });
      this.zones.add(zone);
    });
    this.metrics.recordSets = () => this.zones.recordSets();
    const rl = config.rateLimit;
    this.rrl = new RateLimiter({ ...rl, burst: rl.burst ?? Math.max(1, rl.responsesPerSecond) });
    this.responder = new Responder(
      this.zones,
      this.metrics,
      { udpPayloadSize: config.udpPayloadSize, allowTransfer: config.allowTransfer },
      this.rrl,
    );
    const { host, port } = parseHostPort(config.listen);
    this.server = new DnsServer(
      this.responder,
      this.metrics,
      {
        host,
        port,
        tcpIdleTimeoutMs: config.tcpIdleTimeoutMs,
        maxTcpQueryBytes: config.maxTcpQueryBytes,
        maxTcpConnections: config.maxTcpConnections,
        maxTcpConnectionsPerSource: config.maxTcpConnectionsPerSource,
      },
      log,
    );
  }

  private recordSetSpec(rs: RecordSetConfig, ownerKey: string): RecordSetSpec {
    const hc: HealthCheckConfig | undefined = rs.healthCheck ? { ...rs.healthCheck } : undefined;
    return {
      ownerKey,
      type: rs.type,
      ttl: rs.ttl,
      policy: rs.policy,
      addresses: toAddresses(rs.addresses),
      secondary: rs.secondary ? toAddresses(rs.secondary) : undefined,
      sources: rs.sources?.map((s) => ({ subnets: s.subnets, addresses: toAddresses(s.addresses) })),
      healthCheck: hc,
      upThreshold: rs.failOpenThreshold ?? this.config.failOpenThreshold,
      maxAnswers: Math.min(rs.maxAnswers, MULTIVALUE_MAX),
    };
  }

  /** Each address with an lbAdmin URL follows that LB's target group instead of being checked here. */
  private followLb(set: AddressRecordSet, rs: RecordSetConfig): void {
    const follow = rs.followLb!;
    const entries = [rs.addresses, rs.secondary ?? [], ...(rs.sources ?? []).map((s) => s.addresses)].flat();
    const seen = new Set<string>();
    for (const a of entries) {
      if (typeof a === 'string' || !a.lbAdmin || seen.has(a.address)) continue;
      seen.add(a.address);
      this.lbFollowers.push(
        new LbAdminFollower(set, a.address, { ...follow, adminUrl: a.lbAdmin }, this.options.log),
      );
    }
  }

  async start(): Promise<void> {
    const { log } = this.options;
    const { host, port } = await this.server.listen();
    this.listenAddress = formatHostPort(host, port);
    for (const set of this.zones.recordSets()) set.start();
    for (const f of this.lbFollowers) f.start();
    const all = () => this.zones.recordSets().map((s) => s.stats);
    this.timers.push(setInterval(() => SpreadStats.advance(all()), 10_000));
    this.timers.push(setInterval(() => this.rrl.sweep(), 5_000));
    for (const t of this.timers) t.unref();
    if (this.config.admin) {
      const a = parseHostPort(this.config.admin);
      this.admin = new AdminServer(this, log);
      this.adminAddress = await this.admin.listen(a.host, a.port);
    }
    // Startup lines: what listens where, the zones, the record sets and their health.
    log.info(
      { udp: this.listenAddress, tcp: this.listenAddress, port, admin: this.adminAddress },
      `dns listening on udp ${this.listenAddress} and tcp ${this.listenAddress}`,
    );
    if (this.adminAddress)
      log.info({ admin: this.adminAddress }, `admin on http://${this.adminAddress} (/metrics, /status)`);
    for (const zone of this.zones.zones.values()) {
      const c = zone.counts();
      log.info(
        { zone: zone.name, ...c, source: zone.soa.source },
        `zone ${zone.name} loaded: ${c.records} records, ${c.recordSets} health-aware record sets`,
      );
    }
    for (const set of this.zones.recordSets()) {
      const hc = set.spec.healthCheck;
      const follows = this.lbFollowers.filter((f) => set.targetsFor(f.address).length > 0);
      const health = hc
        ? `health checks ${hc.protocol} port ${hc.port}`
        : follows.length
          ? `health from ${follows.length} LB admin APIs`
          : 'health checks off';
      log.info(
        {
          recordSet: set.name,
          policy: set.spec.policy,
          ttl: set.ttl,
          addresses: set.allAddresses(),
          healthCheck: hc ? `${hc.protocol}:${hc.port}${hc.protocol === 'http' ? hc.path : ''}` : 'off',
          states: set.pools.flatMap((p) => p.group.list().map((t) => `${t.id}=${t.state}`)),
        },
        `record set ${set.name}: ${set.spec.policy}, ${set.allAddresses().length} addresses, ${health}`,
      );
    }
    if (this.rrl.enabled) {
      log.info(
        { rateLimit: this.config.rateLimit },
        `response rate limiting: ${this.config.rateLimit.responsesPerSecond}/s per source prefix`,
      );
    }
  }

  /**
   * Withdraws an address from DNS answers. Its servers must keep serving until resolvers' caches
   * expire: the record's TTL plus a grace period. Returns when that is.
   */
  drain(recordSetName: string, address: string, now = Date.now()): { safeToStopAt: number } {
    const set = this.findSet(recordSetName);
    const found = set.targetsFor(address);
    if (found.length === 0) throw new Error(`${address} is not an address of ${set.name}`);
    for (const { pool, target } of found) {
      if (!target.draining) {
        target.draining = true;
        target.drainingSince = now;
        pool.group.refresh(target, now);
      }
    }
    const since = found[0]!.target.drainingSince;
    const safeToStopAt = since + (set.ttl + this.config.drainGraceSeconds) * 1000;
    this.options.log.info(
      { recordSet: set.name, address, safeToStopAt: new Date(safeToStopAt).toISOString() },
      `draining ${address} from ${set.name}: safe to stop its servers at ${new Date(safeToStopAt).toISOString()}`,
    );
    return { safeToStopAt };
  }

  undrain(recordSetName: string, address: string): void {
    const set = this.findSet(recordSetName);
    const found = set.targetsFor(address);
    if (found.length === 0) throw new Error(`${address} is not an address of ${set.name}`);
    for (const { pool, target } of found) {
      target.draining = false;
      target.drainingSince = 0;
      pool.group.refresh(target);
    }
    this.options.log.info({ recordSet: set.name, address }, `${address} back in ${set.name}`);
  }

  /** Finds a record set by "www.example.test" (A), "www.example.test/AAAA" or with a trailing dot. */
  findSet(name: string): AddressRecordSet {
    const [owner, type = 'A'] = name.split('/');
    const key = nameToKey(owner!.endsWith('.') ? owner! : `${owner}.`);
    const set = this.zones
      .recordSets()
      .find((s) => s.spec.ownerKey === key && s.spec.type === type.toUpperCase());
    if (!set) throw new Error(`no health-aware record set ${name}`);
    return set;
  }

  status(now = Date.now()): DnsStatus {
    return buildStatus(this, now);
  }

  get drainGraceSeconds(): number {
    return this.config.drainGraceSeconds;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const set of this.zones.recordSets()) set.stop();
    for (const f of this.lbFollowers) f.stop();
    await Promise.all([this.server.close(), this.admin?.close()]);
  }
}

export function baseDirOf(configFile: string | undefined): string {
  return configFile ? dirname(resolvePath(configFile)) : process.cwd();
}
