// The `dns:` section of the scaleout config file, as one zod schema (to be merged into the project's
// schema). Loading errors name the file, the key path and what is wrong.
import { readFileSync } from 'node:fs';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseHostPort } from '../core/types.js';

const cidr = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || !addr || !isIP(addr)) return false;
    if (bits === undefined) return true;
    const max = isIPv4(addr) ? 32 : 128;
    return /^\d+$/.test(bits) && Number(bits) <= max;
  },
  { message: 'expected an address or CIDR such as 10.0.0.0/8' },
);

const hostPort = z.string().refine(
  (s) => {
    try {
      parseHostPort(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected host:port' },
);

const addressEntry = z.union([
  z.string(),
  z
    .object({
      address: z.string(),
      weight: z.number().int().min(1).max(1000).default(1),
      /** With the record set's followLb: base URL of the admin API of the LB at this address. */
      lbAdmin: z.url({ protocol: /^https?$/ }).optional(),
    })
    .strict(),
]);

/** Health from the live state of a load balancer's target group, read from each LB's admin API. */
export const followLbSchema = z
  .object({
    targetGroup: z.string().min(1),
    token: z.string().min(1).optional(),
    intervalMs: z.number().int().min(100).default(1000),
    timeoutMs: z.number().int().min(10).default(1000),
    unhealthyThreshold: z.number().int().min(1).max(10).default(2),
  })
  .strict();

export const healthCheckSchema = z
  .object({
    protocol: z.enum(['http', 'tcp']).default('tcp'),
    path: z.string().startsWith('/').default('/'),
    port: z.number().int().min(1).max(65535),
    intervalMs: z.number().int().min(100).default(2000),
    timeoutMs: z.number().int().min(10).default(1000),
    healthyThreshold: z.number().int().min(1).max(10).default(2),
    unhealthyThreshold: z.number().int().min(1).max(10).default(2),
    successCodes: z.string().default('200-399'),
  })
  .strict();

export const recordSetSchema = z
  .object({
    name: z.string().min(1),
    type: z.enum(['A', 'AAAA']).default('A'),
    ttl: z.number().int().min(0).max(0x7fffffff).default(30),
    policy: z.enum(['simple', 'multivalue', 'weighted', 'failover', 'source']).default('simple'),
    /** simple/multivalue/weighted: the addresses; failover: the primary set; source: the default set. */
    addresses: z.array(addressEntry).default([]),
    secondary: z.array(addressEntry).optional(),
    sources: z
      .array(z.object({ subnets: z.array(cidr).min(1), addresses: z.array(addressEntry).min(1) }).strict())
      .optional(),
    healthCheck: healthCheckSchema.optional(),
    followLb: followLbSchema.optional(),
    failOpenThreshold: z.number().min(0).max(1).optional(),
    maxAnswers: z.number().int().min(1).max(8).default(8),
  })
  .strict()
  .superRefine((rs, ctx) => {
    const valid = rs.type === 'A' ? isIPv4 : isIPv6;
    const check = (list: z.infer<typeof addressEntry>[] | undefined, path: (string | number)[]) =>
      (list ?? []).forEach((a, i) => {
        const addr = typeof a === 'string' ? a : a.address;
        if (!valid(addr))
          ctx.addIssue({
            code: 'custom',
            path: [...path, i],
            message: `"${addr}" is not an ${rs.type === 'A' ? 'IPv4' : 'IPv6'} address`,
          });
      });
    check(rs.addresses, ['addresses']);
    check(rs.secondary, ['secondary']);
    rs.sources?.forEach((s, i) => check(s.addresses, ['sources', i, 'addresses']));
    if (rs.addresses.length === 0)
      ctx.addIssue({ code: 'custom', path: ['addresses'], message: 'needs at least one address' });
    if (rs.policy === 'failover' && !rs.secondary?.length)
      ctx.addIssue({
        code: 'custom',
        path: ['secondary'],
        message: 'policy failover needs a secondary address list',
      });
    if (rs.policy !== 'failover' && rs.secondary)
      ctx.addIssue({
        code: 'custom',
        path: ['secondary'],
        message: 'only policy failover takes a secondary list',
      });
    if (rs.followLb && rs.healthCheck)
      ctx.addIssue({
        code: 'custom',
        path: ['followLb'],
        message: 'choose healthCheck or followLb, not both (the LB already checks its targets)',
      });
    const entries = [rs.addresses, rs.secondary ?? [], ...(rs.sources ?? []).map((s) => s.addresses)].flat();
    entries.forEach((a) => {
      const hasAdmin = typeof a !== 'string' && a.lbAdmin !== undefined;
      const addr = typeof a === 'string' ? a : a.address;
      if (rs.followLb && !hasAdmin)
        ctx.addIssue({
          code: 'custom',
          path: ['followLb'],
          message: `address ${addr} needs lbAdmin (the admin API URL of the LB it fronts)`,
        });
      if (!rs.followLb && hasAdmin)
        ctx.addIssue({
          code: 'custom',
          path: ['followLb'],
          message: `address ${addr} has lbAdmin but the record set has no followLb (which target group?)`,
        });
    });
    if (rs.policy === 'source' && !rs.sources?.length)
      ctx.addIssue({ code: 'custom', path: ['sources'], message: 'policy source needs a sources list' });
    if (rs.policy !== 'source' && rs.sources)
      ctx.addIssue({ code: 'custom', path: ['sources'], message: 'only policy source takes a sources list' });
  });

export const zoneSchema = z
  .object({
    /** The zone's apex; optional with `file` (the file's SOA owner names it). */
    name: z.string().min(1).optional(),
    /** An RFC 1035 zone file; relative paths are relative to the config file. */
    file: z.string().optional(),
    /** Default TTL for `records` (and the synthesized SOA when there is no file). */
    ttl: z.number().int().min(0).max(0x7fffffff).default(300),
    /** Extra static records in zone-file syntax, e.g. "mail 300 MX 10 mx1". */
    records: z.array(z.string()).default([]),
    recordSets: z.array(recordSetSchema).default([]),
  })
  .strict()
  .refine((zone) => zone.name !== undefined || zone.file !== undefined, {
    message: 'needs a name or a file',
  });

export const rateLimitSchema = z
  .object({
    responsesPerSecond: z.number().min(0).default(200),
    burst: z.number().min(1).optional(),
    slip: z.number().int().min(0).max(10).default(2),
    ipv4PrefixLength: z.number().int().min(8).max(32).default(24),
    ipv6PrefixLength: z.number().int().min(16).max(128).default(56),
    exempt: z.array(cidr).default(['127.0.0.0/8', '::1/128']),
  })
  .strict();

export const dnsConfigSchema = z
  .object({
    listen: hostPort.default('127.0.0.1:5353'),
    /** Admin HTTP endpoint: /metrics, /status, POST /drain and /undrain. */
    admin: hostPort.optional(),
    udpPayloadSize: z.number().int().min(512).max(4096).default(1232),
    tcpIdleTimeoutMs: z.number().int().min(100).default(10_000),
    maxTcpQueryBytes: z.number().int().min(512).max(65535).default(4096),
    maxTcpConnections: z.number().int().min(1).default(1000),
    maxTcpConnectionsPerSource: z.number().int().min(1).default(64),
    /** Default up_thresh for record sets. */
    failOpenThreshold: z.number().min(0).max(1).default(0.5),
    /** Seconds a withdrawn address keeps serving after its TTL runs out. */
    drainGraceSeconds: z.number().int().min(0).default(30),
    allowTransfer: z.array(cidr).default([]),
    rateLimit: rateLimitSchema.prefault({}),
    zones: z.array(zoneSchema).min(1, 'needs at least one zone'),
  })
  .strict();

export type DnsConfig = z.infer<typeof dnsConfigSchema>;
export type DnsConfigInput = z.input<typeof dnsConfigSchema>;
export type RecordSetConfig = z.infer<typeof recordSetSchema>;
export type ZoneConfig = z.infer<typeof zoneSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** Validates a `dns:` section; errors read "FILE: dns.zones[0].recordSets[1].addresses[2]: problem". */
export function validateDnsConfig(input: unknown, where: string): DnsConfig {
  const result = dnsConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = formatPath(['dns', ...issue.path]);
    return `${where}: ${path}: ${issue.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/** Reads a YAML config file and validates its `dns:` section. */
export function loadDnsConfigFile(file: string): DnsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || !('dns' in doc))
    throw new ConfigError(`${file}: dns: missing section`);
  return validateDnsConfig((doc as { dns: unknown }).dns, file);
}
