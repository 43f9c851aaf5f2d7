// The `topology:` section of the scaleout config: what `scaleout up` runs on this machine. Every tier
// is described by counts and port bases; src/topology/plan.ts turns it into concrete processes.
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { duration, hostPort, port } from './common.js';

const ipv4 = z.string().refine((s) => isIPv4(s), { message: 'expected an IPv4 address such as 127.0.0.2' });
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, "-", "_" and "."');
const dnsName = z
  .string()
  .regex(/^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/, {
    message: 'expected a DNS name such as scaleout.test',
  });

export const topologyLbSchema = z
  .object({
    /** LB processes; instance i listens on addresses[i] (default 127.0.0.(2+i)), so DNS can hand out each. */
    instances: z.number().int().min(0).max(16).default(1),
    addresses: z.array(ipv4).optional(),
    /** HTTP listeners every LB instance opens on its address. */
    listeners: z
      .array(z.object({ name, port }).strict())
      .min(1)
      .default([{ name: 'web', port: 8080 }]),
    /** Admin API of instance i on 127.0.0.1:(adminPortBase + i). */
    adminPortBase: port.default(9901),
    algorithm: z.string().default('least-outstanding'),
    /** New app instances get a share rising over this time. */
    slowStart: duration.prefault('10s'),
    /** How long a removed app instance may finish its in-flight requests. */
    deregistrationDelay: duration.prefault('10s'),
    healthCheckInterval: duration.prefault('1s'),
  })
  .strict()
  .superRefine((lb, ctx) => {
    if (lb.addresses && lb.addresses.length < lb.instances) {
      ctx.addIssue({
        code: 'custom',
        path: ['addresses'],
        message: `${lb.instances} instances need ${lb.instances} addresses (got ${lb.addresses.length})`,
      });
    }
    const seen = new Set<number>();
    lb.listeners.forEach((l, i) => {
      if (seen.has(l.port))
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', i, 'port'],
          message: `port ${l.port} is used twice`,
        });
      seen.add(l.port);
    });
  });

export const topologyAppSchema = z
  .object({
    instances: z.number().int().min(1).max(64).default(2),
    host: ipv4.default('127.0.0.1'),
    /** Instance i (from 1) listens on host:(portBase + i - 1). */
    portBase: port.default(3001),
    /**
     * The program and its arguments; default: the demo app (`scaleout demo-app`). In the arguments
     * {listen}, {host}, {port}, {database} and {name} are replaced; the same values are in the
     * environment as LISTEN, HOST, PORT, DATABASE_URL and SCALEOUT_INSTANCE.
     */
    command: z.array(z.string().min(1)).min(1).optional(),
    healthPath: z.string().startsWith('/', 'must start with /').default('/healthz'),
    /** Estimated memory per instance, for the check before starting (MiB). */
    memoryMb: z.number().int().min(1).default(80),
  })
  .strict();

export const topologyDatabaseSchema = z
  .object({
    /** Clusters, each one primary plus `replicas` streaming replicas. */
    shards: z.number().int().min(1).max(16).default(1),
    replicas: z.number().int().min(0).max(8).default(1),
    host: ipv4.default('127.0.0.1'),
    /** PostgreSQL servers take consecutive ports from here (shard by shard, primary first). */
    portBase: port.default(15432),
    /** The database the apps use, and the bootstrap superuser. */
    name: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'use lower-case letters, digits and _')
      .default('app'),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'use lower-case letters, digits and _')
      .default('postgres'),
    /** The db-proxy: where apps connect, and its admin endpoint. */
    proxy: z
      .object({ listen: hostPort.prefault('127.0.0.1:6432'), admin: hostPort.prefault('127.0.0.1:9187') })
      .strict()
      .prefault({}),
    /** Extra postgresql.conf settings for every server. */
    settings: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export const topologyDnsSchema = z
  .object({
    enabled: z.boolean().default(true),
    listen: hostPort.prefault('127.0.0.1:5353'),
    admin: hostPort.prefault('127.0.0.1:9153'),
    zone: dnsName.default('scaleout.test'),
    /** The record set that holds the LB instances' addresses. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'one label such as www')
      .default('www'),
    ttl: z.number().int().min(0).max(86_400).default(5),
  })
  .strict();

export const topologySchema = z
  .object({
    /** Shown on the dashboard and in the startup table. */
    name: z.string().min(1).optional(),
    /** Where PostgreSQL data, generated configs, logs and pid files live (relative: to the working directory). */
    dataDir: z.string().min(1).default('.scaleout'),
    lb: topologyLbSchema.prefault({}),
    app: topologyAppSchema.prefault({}),
    database: topologyDatabaseSchema.prefault({}),
    dns: topologyDnsSchema.prefault({}),
    dashboard: z
      .object({
        listen: hostPort.prefault('127.0.0.1:9900'),
        /** Required when listen is not a loopback address. */
        token: z.string().min(16).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.dns.enabled && t.lb.instances === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['dns', 'enabled'],
        message: "DNS hands out the LB instances' addresses: it needs lb.instances >= 1",
      });
    }
    const host = t.dashboard.listen.host;
    const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
    if (!loopback && !t.dashboard.token) {
      ctx.addIssue({
        code: 'custom',
        path: ['dashboard', 'token'],
        message: `the dashboard listens beyond loopback (${host}): a token is required`,
      });
    }
  });

export type TopologyConfig = z.output<typeof topologySchema>;
export type TopologyInput = z.input<typeof topologySchema>;
