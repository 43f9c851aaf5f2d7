import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { parse as parseYaml } from 'yaml';
import { createLogger } from '../core/log.js';
import { ConfigError, validateDnsConfig, type DnsConfigInput } from '../dns/config.js';
import { baseDirOf, DnsService } from '../dns/service.js';
import { parseZoneFile } from '../dns/zone-file.js';
import { keyToName, nameToKey } from '../dns/wire.js';

type ZoneInput = NonNullable<DnsConfigInput['zones']>[number];
type RecordSetInput = NonNullable<ZoneInput['recordSets']>[number];

interface DnsCliOptions {
  config?: string;
  listen?: string;
  admin?: string;
  zone: string[];
  zoneFile: string[];
  /** Each --record with the --zone given before it (commander keeps flags in argv order). */
  record: Array<{ zone: string | undefined; spec: string }>;
  policy?: string;
  ttl?: number;
  healthPort?: number;
  healthPath?: string;
  healthProtocol?: 'http' | 'tcp';
  healthInterval?: number;
  healthTimeout?: number;
  healthyThreshold?: number;
  unhealthyThreshold?: number;
  followLb?: string;
  lbAdmin: string[];
  failOpenThreshold?: number;
  drainGrace?: number;
  rrlRate?: number;
  rrlSlip?: number;
  rrlExempt?: string;
  allowTransfer?: string;
  udpPayloadSize?: number;
  tcpIdleTimeout?: number;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function int(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** Reads the `dns:` section of a config file without validating it (validation runs on the merge). */
function readConfigSection(file: string): Partial<DnsConfigInput> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || !('dns' in doc))
    throw new ConfigError(`${file}: dns: missing section`);
  const dns = (doc as { dns: unknown }).dns;
  if (!dns || typeof dns !== 'object') throw new ConfigError(`${file}: dns: expected a mapping`);
  return dns as Partial<DnsConfigInput>;
}

/**
 * "www A 127.0.0.2 127.0.0.3=2 | 127.0.0.9": a health-aware record set (weights after "=", the
 * failover secondary after "|"). Any other type ("mail MX 10 mx1") is a static record.
 */
function parseRecordFlag(
  spec: string,
  opts: DnsCliOptions,
): { set?: RecordSetInput; record?: string; name: string } {
  const tokens = spec.trim().split(/\s+/);
  const name = tokens[0] ?? '';
  let i = 1;
  let ttl = opts.ttl;
  if (tokens[i] && /^\d+$/.test(tokens[i]!)) ttl = Number(tokens[i++]);
  if (tokens[i]?.toUpperCase() === 'IN') i++;
  const type = tokens[i++]?.toUpperCase();
  if (type !== 'A' && type !== 'AAAA') return { record: spec, name };
  type Entry = { address: string; weight: number; lbAdmin?: string };
  const primary: Entry[] = [];
  const secondary: Entry[] = [];
  const admins = lbAdminMap(opts);
  let target = primary;
  for (const tok of tokens.slice(i)) {
    if (tok === '|') {
      target = secondary;
      continue;
    }
    const [address, weight] = tok.split('=');
    const entry: Entry = { address: address!, weight: weight === undefined ? 1 : Number(weight) };
    const lbAdmin = admins.get(address!);
    if (lbAdmin) entry.lbAdmin = lbAdmin;
    target.push(entry);
  }
  const policy = (opts.policy ?? (secondary.length ? 'failover' : 'simple')) as RecordSetInput['policy'];
  const set: RecordSetInput = { name, type, policy, addresses: primary };
  if (secondary.length) set.secondary = secondary;
  if (ttl !== undefined) set.ttl = ttl;
  if (opts.followLb !== undefined) set.followLb = { targetGroup: opts.followLb };
  if (opts.healthPort !== undefined) {
    const protocol = opts.healthProtocol ?? (opts.healthPath ? 'http' : 'tcp');
    set.healthCheck = {
      protocol,
      port: opts.healthPort,
      ...(opts.healthPath ? { path: opts.healthPath } : {}),
      ...(opts.healthInterval !== undefined ? { intervalMs: opts.healthInterval } : {}),
      ...(opts.healthTimeout !== undefined ? { timeoutMs: opts.healthTimeout } : {}),
      ...(opts.healthyThreshold !== undefined ? { healthyThreshold: opts.healthyThreshold } : {}),
      ...(opts.unhealthyThreshold !== undefined ? { unhealthyThreshold: opts.unhealthyThreshold } : {}),
    };
  }
  return { set, name };
}

/** --lb-admin ADDRESS=URL flags as a map; each needs --follow-lb. */
function lbAdminMap(opts: DnsCliOptions): Map<string, string> {
  const map = new Map<string, string>();
  for (const flag of opts.lbAdmin) {
    const eq = flag.indexOf('=');
    if (eq <= 0)
      throw new ConfigError(
        `--lb-admin "${flag}": expected ADDRESS=URL, e.g. 127.0.0.2=http://127.0.0.1:9901`,
      );
    map.set(flag.slice(0, eq), flag.slice(eq + 1));
  }
  if (map.size > 0 && opts.followLb === undefined)
    throw new ConfigError('--lb-admin needs --follow-lb (the LB target group to follow)');
  return map;
}

/** Merges the config file's `dns:` section with the flags into one input for the schema. */
export function buildDnsConfigInput(opts: DnsCliOptions): DnsConfigInput {
  if (opts.healthPort === undefined) {
    const healthFlags: Array<[unknown, string]> = [
      [opts.healthPath, '--health-path'],
      [opts.healthProtocol, '--health-protocol'],
      [opts.healthInterval, '--health-interval'],
      [opts.healthTimeout, '--health-timeout'],
      [opts.healthyThreshold, '--healthy-threshold'],
      [opts.unhealthyThreshold, '--unhealthy-threshold'],
    ];
    const given = healthFlags.filter(([v]) => v !== undefined).map(([, flag]) => flag);
    if (given.length) throw new ConfigError(`${given.join(', ')} needs --health-port (which port to check)`);
  }
  const base: Partial<DnsConfigInput> = opts.config ? readConfigSection(opts.config) : {};
  const input: Record<string, unknown> = { ...base };
  const set = (key: string, value: unknown) => {
    if (value !== undefined) input[key] = value;
  };
  set('listen', opts.listen);
  set('admin', opts.admin);
  set('failOpenThreshold', opts.failOpenThreshold);
  set('drainGraceSeconds', opts.drainGrace);
  set('udpPayloadSize', opts.udpPayloadSize);
  set('tcpIdleTimeoutMs', opts.tcpIdleTimeout);
  if (opts.allowTransfer !== undefined) input.allowTransfer = list(opts.allowTransfer);
  if (opts.rrlRate !== undefined || opts.rrlSlip !== undefined || opts.rrlExempt !== undefined) {
    const rl: Record<string, unknown> = { ...((base.rateLimit as object | undefined) ?? {}) };
    if (opts.rrlRate !== undefined) rl.responsesPerSecond = opts.rrlRate;
    if (opts.rrlSlip !== undefined) rl.slip = opts.rrlSlip;
    if (opts.rrlExempt !== undefined) rl.exempt = list(opts.rrlExempt);
    input.rateLimit = rl;
  }

  // Zones from flags: each --zone-file is a zone named by its SOA; --zone names one (merged with a
  // file of the same name). --record goes to the zone its name ends in, else the only/last zone.
  const zones: ZoneInput[] = [];
  for (const file of opts.zoneFile) {
    const origin = keyToName(parseZoneFile(readFileSync(file, 'utf8'), file).originKey);
    zones.push({ name: origin, file: resolvePath(file) });
  }
  for (const name of opts.zone) {
    const key = nameToKey(name.endsWith('.') ? name : `${name}.`);
    if (!zones.some((z) => z.name && nameToKey(z.name) === key)) zones.push({ name: keyToName(key) });
  }
  for (const { zone: zoneFlag, spec } of opts.record) {
    const lastZone = zoneFlag ? nameToKey(zoneFlag.endsWith('.') ? zoneFlag : `${zoneFlag}.`) : undefined;
    const parsed = parseRecordFlag(spec, opts);
    let zone: ZoneInput | undefined;
    if (parsed.name.endsWith('.')) {
      const key = nameToKey(parsed.name);
      zone = zones
        .filter((z) => z.name && key.endsWith(nameToKey(z.name)))
        .sort((a, b) => nameToKey(b.name!).length - nameToKey(a.name!).length)[0];
    } else if (lastZone) {
      zone = zones.find((z) => z.name && nameToKey(z.name) === lastZone);
    } else if (zones.length === 1) {
      zone = zones[0];
    }
    if (!zone)
      throw new ConfigError(
        `--record "${spec}": no zone for it (give --zone NAME first, or a fully qualified name)`,
      );
    if (parsed.set) zone.recordSets = [...(zone.recordSets ?? []), parsed.set];
    else zone.records = [...(zone.records ?? []), parsed.record!];
  }
  input.zones = [...((base.zones as ZoneInput[] | undefined) ?? []), ...zones];
  return input as DnsConfigInput;
}

export function registerDns(program: Command): void {
  let currentZone: string | undefined;
  const collectZone = (value: string, previous: string[]) => {
    currentZone = value;
    return [...previous, value];
  };
  const collectRecord = (spec: string, previous: DnsCliOptions['record']) => [
    ...previous,
    { zone: currentZone, spec },
  ];
  program
    .command('dns')
    .description('Authoritative DNS server (UDP + TCP) with health-aware record sets and routing policies')
    .option('--config <file>', 'YAML config file with a dns: section')
    .option('--listen <host:port>', 'UDP and TCP address (default 127.0.0.1:5353; port 0 picks a free port)')
    .option('--admin <host:port>', 'admin HTTP endpoint: /metrics, /status, POST /drain, POST /undrain')
    .option('--zone <name>', 'a zone to serve (repeatable); --record adds to the last one', collectZone, [])
    .option('--zone-file <file>', 'an RFC 1035 zone file to serve (repeatable)', collect, [])
    .option(
      '--record <spec>',
      "a record, e.g. 'www A 127.0.0.2 127.0.0.3=2' (A/AAAA: health-aware set, '=N' weight, '|' before failover secondaries) or 'mail MX 10 mx1' (repeatable)",
      collectRecord,
      [],
    )
    .option(
      '--policy <policy>',
      'routing policy for --record sets: simple, multivalue, weighted, failover (default simple)',
    )
    .option('--ttl <seconds>', 'TTL of --record sets (default 30)', int)
    .option(
      '--health-port <port>',
      'check each address of --record sets on this port (TCP, or HTTP with --health-path)',
      int,
    )
    .option('--health-path <path>', 'HTTP health-check path (makes checks HTTP)')
    .option('--health-protocol <protocol>', 'http or tcp')
    .option('--health-interval <ms>', 'health-check interval (default 2000)', int)
    .option('--health-timeout <ms>', 'health-check timeout (default 1000)', int)
    .option('--healthy-threshold <n>', 'consecutive passes to become healthy (default 2)', int)
    .option('--unhealthy-threshold <n>', 'consecutive failures to become unhealthy (default 2)', int)
    .option(
      '--follow-lb <group>',
      "take each address's health from this target group of the LB at that address (with --lb-admin)",
    )
    .option(
      '--lb-admin <address=url>',
      'the admin API of the LB at ADDRESS, e.g. 127.0.0.2=http://127.0.0.1:9901 (repeat)',
      collect,
      [],
    )
    .option(
      '--fail-open-threshold <fraction>',
      'answer with all addresses when fewer than this share is up (default 0.5)',
      fraction,
    )
    .option(
      '--drain-grace <seconds>',
      'how long drained servers keep serving after the TTL (default 30)',
      int,
    )
    .option(
      '--rrl-rate <n>',
      'responses per second per source /24 (/56); 0 turns rate limiting off (default 200)',
      int,
    )
    .option(
      '--rrl-slip <n>',
      'send every n-th limited response truncated instead of dropping it (default 2)',
      int,
    )
    .option(
      '--rrl-exempt <cidrs>',
      "sources never rate-limited, comma-separated (default '127.0.0.0/8,::1'; '' for none)",
    )
    .option('--allow-transfer <cidrs>', 'clients allowed AXFR/IXFR over TCP, comma-separated (default none)')
    .option('--udp-payload-size <bytes>', 'EDNS UDP payload size (default 1232)', int)
    .option('--tcp-idle-timeout <ms>', 'close idle TCP connections after this long (default 10000)', int)
    .action(async (opts: DnsCliOptions) => {
      const log = createLogger('dns');
      const input = buildDnsConfigInput(opts);
      const config = validateDnsConfig(input, opts.config ?? 'command line');
      const service = new DnsService(config, {
        log,
        source: opts.config ?? 'command line',
        baseDir: baseDirOf(opts.config),
      });
      await service.start();
      const shutdown = (signal: string) => {
        log.info({ signal }, 'shutting down');
        service.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });
}
