// The `database:` section of the scaleout config file, and the same settings from the command line.
// One zod schema gives the types, the validation (errors name the file, key and problem) and defaults.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseHostPort } from '../core/types.js';
import type { ServerEndpoint } from './server-connection.js';

const postgresUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && !!u.hostname && !!u.username;
  } catch {
    return false;
  }
}, 'must be a URL like postgres://USER[:PASSWORD]@HOST:PORT/DATABASE');

const hostPort = z.string().refine((v) => {
  try {
    parseHostPort(v);
    return true;
  } catch {
    return false;
  }
}, 'must be host:port');

/** Column types the shard key may have; each hashes as PostgreSQL's hash partitioning does. */
export const SHARD_KEY_TYPES = ['bigint', 'int', 'smallint', 'text', 'uuid'] as const;
export type ShardKeyType = (typeof SHARD_KEY_TYPES)[number];

/** The PostgreSQL column type of each shard key type. */
export const SQL_TYPE_OF_KEY: Record<ShardKeyType, string> = {
  bigint: 'bigint',
  int: 'integer',
  smallint: 'smallint',
  text: 'text',
  uuid: 'uuid',
};

/** A table name as written in SQL: `name` or `schema.name` (unquoted identifiers are lower-cased). */
const tableName = z
  .string()
  .regex(/^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$/, 'must be a table name, optionally schema-qualified')
  .transform((v) => v.toLowerCase());

const shardSchema = z
  .object({
    /** Shown in logs, /status and EXPLAIN ROUTE; defaults to "shard<index>". */
    name: z.string().min(1).optional(),
    primary: postgresUrl,
    replicas: z.array(postgresUrl).default([]),
  })
  .strict();

const shardedTableSchema = z
  .object({
    table: tableName,
    /** The shard-key column. */
    key: z
      .string()
      .regex(/^[A-Za-z_][\w$]*$/, 'must be a column name')
      .transform((v) => v.toLowerCase()),
    /** The key column's type: decides the hash function (as PARTITION BY HASH does). */
    type: z.enum(SHARD_KEY_TYPES),
  })
  .strict();

export const databaseSchema = z
  .object({
    listen: hostPort.default('127.0.0.1:6432'),
    /** Unsharded: the one cluster (primary + replicas). Leave out when `shards` is given. */
    primary: postgresUrl.optional(),
    replicas: z.array(postgresUrl).default([]),
    /** Sharded: one cluster per shard, in shard order (shard i = hash remainder i). */
    shards: z.array(shardSchema).min(1).optional(),
    /** Tables split over the shards by the hash of their key column. */
    sharded_tables: z.array(shardedTableSchema).default([]),
    /** Tables copied on every shard: reads go to any one shard, writes to all of them. */
    reference_tables: z.array(tableName).default([]),
    /** Where every other table lives. */
    default_shard: z.number().int().min(0).default(0),
    /** Allow transactions that write on several shards, committed with PREPARE TRANSACTION (needs max_prepared_transactions > 0 on every primary). */
    two_phase_commit: z.boolean().default(false),
    /** Recovery rolls back an undecided prepared transaction only once it is this old (it may still be committing). */
    two_phase_rollback_after_ms: z.number().int().min(0).default(30_000),
    pool_mode: z.enum(['transaction', 'session']).default('transaction'),
    /** Server connections per server (primary and each replica). */
    pool_size: z.number().int().min(1).max(10_000).default(20),
    algorithm: z
      .enum([
        'least-outstanding',
        'round-robin',
        'weighted-round-robin',
        'least-connections',
        'power-of-two',
        'random',
      ])
      .default('least-outstanding'),
    auth: z.enum(['trust', 'md5', 'scram-sha-256']).default('trust'),
    users: z.array(z.object({ name: z.string().min(1), password: z.string().min(1) })).default([]),
    /** A replica further behind than either limit gets no reads (readmitted below half of it). */
    max_lag_bytes: z
      .number()
      .int()
      .min(0)
      .default(16 * 1024 * 1024),
    max_lag_ms: z.number().int().min(0).default(1000),
    lag_check_interval_ms: z.number().int().min(20).max(10_000).default(200),
    healthy_threshold: z.number().int().min(1).max(10).default(2),
    unhealthy_threshold: z.number().int().min(1).max(10).default(2),
    read_your_writes: z.boolean().default(true),
    safe_functions: z.array(z.string().min(1)).default([]),
    connect_timeout_ms: z.number().int().min(100).default(3000),
    acquire_timeout_ms: z.number().int().min(100).default(10_000),
    ban_ms: z.number().int().min(10).default(1000),
    ban_max_ms: z.number().int().min(10).default(30_000),
    max_message_bytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024 * 1024),
    tls: z.object({ cert: z.string(), key: z.string() }).optional(),
    /** HTTP endpoint for /metrics, /status and /explain?sql=… */
    admin: hostPort.optional(),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict()
  .refine((d) => d.auth === 'trust' || d.users.length > 0, {
    message: 'auth md5/scram-sha-256 needs at least one entry under users',
    path: ['users'],
  })
  .superRefine((d, ctx) => {
    const issue = (path: (string | number)[], message: string): void =>
      ctx.addIssue({ code: 'custom', path, message });
    if (!d.shards) {
      if (!d.primary) issue(['primary'], 'required (or give shards: for a sharded setup)');
      if (d.sharded_tables.length > 0) issue(['sharded_tables'], 'needs shards:');
      if (d.reference_tables.length > 0) issue(['reference_tables'], 'needs shards:');
      return;
    }
    if (d.primary) issue(['primary'], 'give either primary (unsharded) or shards, not both');
    if (d.replicas.length > 0) issue(['replicas'], 'with shards:, list replicas under each shard');
    if (d.default_shard >= d.shards.length)
      issue(['default_shard'], `must be below the number of shards (${d.shards.length})`);
    const seen = new Set<string>();
    d.sharded_tables.forEach((t, i) => {
      if (seen.has(t.table)) issue(['sharded_tables', i, 'table'], `"${t.table}" is listed twice`);
      seen.add(t.table);
    });
    d.reference_tables.forEach((t, i) => {
      if (seen.has(t)) issue(['reference_tables', i], `"${t}" is also listed elsewhere`);
      seen.add(t);
    });
    const database = (url: string): string => {
      try {
        const u = new URL(url);
        return decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username);
      } catch {
        return ''; // reported by the URL check
      }
    };
    const first = database(d.shards[0]!.primary);
    d.shards.forEach((s, i) => {
      if (database(s.primary) !== first)
        issue(['shards', i, 'primary'], `every shard must use the same database name ("${first}")`);
    });
    const names = new Set<string>();
    d.shards.forEach((s, i) => {
      const name = s.name ?? `shard${i}`;
      if (names.has(name)) issue(['shards', i, 'name'], `"${name}" is used twice`);
      names.add(name);
    });
  });

export type DatabaseConfig = z.infer<typeof databaseSchema>;

export class ConfigError extends Error {}

/** Validates raw settings; errors read "FILE: database.KEY: problem". */
export function validateDatabaseConfig(raw: unknown, source: string, prefix = 'database'): DatabaseConfig {
  const result = databaseSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = [prefix, ...issue.path.map(String)].join('.');
    return `${source}: ${key}: ${issue.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/** Reads the `database:` section of a scaleout YAML config file. */
export function loadDatabaseConfigFile(
  path: string,
  overrides: Record<string, unknown> = {},
): DatabaseConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const section = (doc as Record<string, unknown> | null)?.database;
  if (section === undefined) throw new ConfigError(`${path}: database: section is missing`);
  if (typeof section !== 'object' || section === null)
    throw new ConfigError(`${path}: database: must be a mapping`);
  return validateDatabaseConfig({ ...(section as object), ...overrides }, path);
}

export function endpointFromUrl(url: string, role: 'primary' | 'replica'): ServerEndpoint {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : 5432;
  const user = decodeURIComponent(u.username);
  return {
    id: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    user,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || user,
    role,
  };
}

/** One cluster the proxy routes to: the single cluster of an unsharded setup, or one shard. */
export interface ClusterSpec {
  readonly name: string;
  readonly primary: string;
  readonly replicas: string[];
}

/** The clusters of a configuration, in shard order (one entry when unsharded). */
export function clusterSpecs(config: DatabaseConfig): ClusterSpec[] {
  if (!config.shards) return [{ name: 'main', primary: config.primary!, replicas: config.replicas }];
  return config.shards.map((s, i) => ({
    name: s.name ?? `shard${i}`,
    primary: s.primary,
    replicas: s.replicas,
  }));
}
