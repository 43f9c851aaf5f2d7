// The load balancer's part of the scaleout config file, in ELB's model: listeners with ordered
// rules, and target groups. This one schema gives the types, the validation and the reference doc
// (docs/configuration.md is written from it).
import { z } from 'zod';
import { ALGORITHMS } from '../balancing/index.js';
import { formatHostPort, parseHostPort } from '../core/types.js';
import { parseSuccessCodes } from '../health/matcher.js';
import { cidr, duration, hostPort, port } from './common.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, "-", "_" and "."');

export const healthCheckSchema = z
  .object({
    enabled: z.boolean().default(true),
    protocol: z.enum(['http', 'tcp']).default('http'),
    path: z.string().startsWith('/', 'must start with /').default('/'),
    port: port.optional(),
    interval: duration.default(2000),
    /** Defaults to 1 s, or half the interval when that is shorter. */
    timeout: duration.optional(),
    healthyThreshold: z.number().int().min(1).max(10).default(2),
    unhealthyThreshold: z.number().int().min(1).max(10).default(2),
    successCodes: z
      .string()
      .default('200-399')
      .refine((s) => {
        try {
          parseSuccessCodes(s);
          return true;
        } catch {
          return false;
        }
      }, 'expected HTTP codes such as "200", "200,202" or "200-399"'),
  })
  .strict()
  .transform((h) => ({ ...h, timeout: h.timeout ?? Math.min(1000, Math.floor(h.interval / 2)) }))
  .refine((h) => h.timeout < h.interval, {
    message: 'timeout must be shorter than interval',
    path: ['timeout'],
  });

/** "host:port", "host:port=weight" or { address, weight, id }. */
export const targetSchema = z
  .union([
    z.string(),
    z
      .object({
        address: z.string(),
        weight: z.number().min(1).max(1000).default(1),
        id: z.string().regex(/^\S+$/, 'no spaces').optional(),
      })
      .strict(),
  ])
  .transform((value, ctx) => {
    const [address, weightText] =
      typeof value === 'string' ? value.split('=') : [value.address, String(value.weight)];
    try {
      const { host, port } = parseHostPort(address!);
      const weight = weightText === undefined ? 1 : Number(weightText);
      if (!Number.isFinite(weight) || weight < 1 || weight > 1000)
        throw new Error('weight must be from 1 to 1000');
      const id = typeof value === 'object' && value.id ? value.id : formatHostPort(host, port);
      return { id, host, port, weight };
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

export const stickinessSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('lb-cookie'),
      duration: duration.default(86_400_000),
      cookieName: z.string().default('SCALEOUT_STICKY'),
    })
    .strict(),
  z
    .object({
      type: z.literal('app-cookie'),
      /** The application's own cookie; the LB pins each of its values to a target. */
      cookieName: z.string().min(1),
      duration: duration.default(86_400_000),
    })
    .strict(),
]);

export const passiveHealthSchema = z
  .object({
    consecutiveFailures: z.number().int().min(1).default(5),
    baseEjection: duration.default(10_000),
    maxEjection: duration.default(300_000),
    maxEjectionPercent: z.number().min(0).max(100).default(50),
    slowFactor: z.number().min(1).default(3),
    slowMin: duration.default(50),
    slowShare: z.number().gt(0).max(1).default(0.2),
  })
  .strict();

const hashOn = z
  .string()
  .regex(/^(source-ip|header:.+|cookie:.+)$/, 'expected source-ip, header:NAME or cookie:NAME')
  .default('source-ip');

export const targetGroupSchema = z
  .object({
    algorithm: z.enum(ALGORITHMS as [string, ...string[]]).default('weighted-round-robin'),
    hashOn,
    targets: z.array(targetSchema).default([]),
    healthCheck: healthCheckSchema.prefault({}),
    passiveHealth: passiveHealthSchema.prefault({}),
    stickiness: stickinessSchema.optional(),
    /** A new or recovered target's share rises linearly to full over this time (0 = off). */
    slowStart: duration.default(0),
    /** How long a deregistered target keeps its in-flight requests before they are cut. */
    deregistrationDelay: duration.default(30_000),
  })
  .strict()
  .superRefine((g, ctx) => {
    const seen = new Set<string>();
    g.targets.forEach((t, i) => {
      if (seen.has(t.id))
        ctx.addIssue({ code: 'custom', path: ['targets', i], message: `target ${t.id} is listed twice` });
      seen.add(t.id);
    });
  });

const stringOrList = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const matchSchema = z
  .object({
    /** Host names; "*.example.com" matches one or more labels. Case-insensitive, port ignored. */
    host: stringOrList.optional(),
    /** Path patterns: "*" matches any characters, "?" one; without wildcards it must match exactly. */
    path: stringOrList.optional(),
    /** Path prefixes, e.g. "/api/". */
    pathPrefix: stringOrList.optional(),
    /** Header name → accepted values (wildcards as for path). */
    headers: z.record(z.string(), stringOrList).optional(),
    methods: z
      .array(z.string().regex(/^[A-Z]+$/, 'methods are upper case, e.g. GET'))
      .min(1)
      .optional(),
    sourceCidrs: z.array(cidr).min(1).optional(),
  })
  .strict();

export const forwardSchema = z
  .union([
    z.object({ targetGroup: name }).strict(),
    z
      .object({
        targetGroups: z
          .array(z.object({ name, weight: z.number().int().min(0).max(999).default(1) }).strict())
          .min(1),
      })
      .strict(),
  ])
  .transform((f) => ('targetGroup' in f ? [{ name: f.targetGroup, weight: 1 }] : f.targetGroups));

export const redirectSchema = z
  .object({
    status: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)])
      .default(302),
    /** ALB-style parts; "#{host}", "#{path}", "#{port}", "#{query}", "#{protocol}" keep the request's own. */
    protocol: z.enum(['http', 'https', '#{protocol}']).default('#{protocol}'),
    host: z.string().default('#{host}'),
    port: z.string().default('#{port}'),
    path: z.string().default('/#{path}'),
    query: z.string().default('#{query}'),
  })
  .strict();

export const fixedResponseSchema = z
  .object({
    status: z.number().int().min(200).max(599),
    body: z.string().default(''),
    contentType: z.string().default('text/plain; charset=utf-8'),
  })
  .strict();

export const actionSchema = z
  .object({
    forward: forwardSchema.optional(),
    redirect: redirectSchema.optional(),
    fixedResponse: fixedResponseSchema.optional(),
  })
  .strict()
  .refine((a) => [a.forward, a.redirect, a.fixedResponse].filter(Boolean).length === 1, {
    message: 'give exactly one of forward, redirect or fixedResponse',
  });

export const ruleSchema = z
  .object({
    name: name.optional(),
    match: matchSchema.default({}),
    forward: forwardSchema.optional(),
    redirect: redirectSchema.optional(),
    fixedResponse: fixedResponseSchema.optional(),
  })
  .strict()
  .refine((r) => [r.forward, r.redirect, r.fixedResponse].filter(Boolean).length === 1, {
    message: 'a rule needs exactly one of forward, redirect or fixedResponse',
  });

export const listenerSchema = z
  .object({
    listen: hostPort,
    protocol: z.enum(['http', 'https', 'tcp', 'tls']).default('http'),
    rules: z.array(ruleSchema).default([]),
    defaultAction: actionSchema,
    trustedProxies: z.array(cidr).default([]),
    timeouts: z
      .object({
        connect: duration.default(3000),
        response: duration.default(60_000),
        clientIdle: duration.default(60_000),
        header: duration.default(10_000),
        upstreamIdle: duration.default(4000),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxHeaderBytes: z
          .number()
          .int()
          .min(1024)
          .max(1 << 20)
          .default(16 * 1024),
        maxHeaders: z.number().int().min(1).max(1000).default(100),
      })
      .strict()
      .prefault({}),
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /** https/tls listeners: PEM certificate and key files, chosen by SNI; the first is the default. */
    certificates: z.array(z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict()).default([]),
    /** https listeners: offer HTTP/2 to clients (ALPN); targets still get HTTP/1.1. */
    http2: z.boolean().default(true),
    /** tcp/tls listeners: send a PROXY protocol header to targets. */
    proxyProtocol: z.union([z.literal(false), z.literal('v1'), z.literal('v2')]).default(false),
  })
  .strict();

export const adminSchema = z
  .object({
    listen: hostPort.prefault('127.0.0.1:9900'),
    /** Required when `listen` is not a loopback address. Use ${env:NAME} to keep it out of the file. */
    token: z.string().min(16, 'use at least 16 characters').optional(),
    /** Where runtime changes (register, deregister, disable, weight) are kept across restarts. */
    stateFile: z.string().optional(),
  })
  .strict();

export type HealthCheckSettings = z.output<typeof healthCheckSchema>;
export type TargetGroupSettings = z.output<typeof targetGroupSchema>;
export type ListenerSettings = z.output<typeof listenerSchema>;
export type RuleSettings = z.output<typeof ruleSchema>;
export type ActionSettings = z.output<typeof actionSchema>;
export type MatchSettings = z.output<typeof matchSchema>;
export type AdminSettings = z.output<typeof adminSchema>;
