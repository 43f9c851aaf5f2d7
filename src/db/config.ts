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

export const databaseSchema = z
  .object({
    listen: hostPort.default('127.0.0.1:6432'),
    primary: postgresUrl,
    replicas: z.array(postgresUrl).default([]),
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
