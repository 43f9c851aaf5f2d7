// Turns a validated topology into concrete components: names, addresses, ports, data directories,
// and the config file each process is started with. Pure apart from the file writers at the bottom.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { TopologyConfig } from '../config/topology-schema.js';
import { formatHostPort } from '../core/types.js';
import type { PgServerSpec } from './pg-server.js';

export interface AppSpec {
  name: string;
  index: number;
  host: string;
  port: number;
}

export interface LbSpec {
  name: string;
  address: string;
  listeners: Array<{ name: string; port: number }>;
  admin: { host: string; port: number };
  configFile: string;
}

export interface Plan {
  name: string;
  dataDir: string;
  topology: TopologyConfig;
  postgres: PgServerSpec[];
  proxy: { listen: string; admin: string; configFile: string };
  apps: AppSpec[];
  lbs: LbSpec[];
  dns?: { listen: string; admin: string; fqdn: string; configFile: string };
  dashboard: { listen: string; token?: string };
}

export const TARGET_GROUP = 'app';

export function appSpec(t: TopologyConfig, index: number): AppSpec {
  return { name: `app-${index}`, index, host: t.app.host, port: t.app.portBase + index - 1 };
}

export function makePlan(t: TopologyConfig, name: string): Plan {
  const dataDir = resolve(t.dataDir);
  const db = t.database;
  const postgres: PgServerSpec[] = [];
  let port = db.portBase;
  for (let shard = 0; shard < db.shards; shard++) {
    const primary: PgServerSpec = {
      name: `pg-s${shard}-primary`,
      role: 'primary',
      shard,
      host: db.host,
      port: port++,
      dataDir: join(dataDir, 'pg', `s${shard}-primary`),
      user: db.user,
      database: db.name,
      settings: db.settings,
    };
    postgres.push(primary);
    for (let r = 1; r <= db.replicas; r++) {
      postgres.push({
        ...primary,
        name: `pg-s${shard}-replica${r}`,
        role: 'replica',
        port: port++,
        dataDir: join(dataDir, 'pg', `s${shard}-replica${r}`),
        primary: { host: primary.host, port: primary.port, dataDir: primary.dataDir },
      });
    }
  }
  const lbs: LbSpec[] = [];
  for (let i = 0; i < t.lb.instances; i++) {
    lbs.push({
      name: `lb-${i + 1}`,
      address: t.lb.addresses?.[i] ?? `127.0.0.${2 + i}`,
      listeners: t.lb.listeners,
      admin: { host: '127.0.0.1', port: t.lb.adminPortBase + i },
      configFile: join(dataDir, 'config', `lb-${i + 1}.yaml`),
    });
  }
  return {
    name: t.name ?? name,
    dataDir,
    topology: t,
    postgres,
    proxy: {
      listen: formatHostPort(db.proxy.listen.host, db.proxy.listen.port),
      admin: formatHostPort(db.proxy.admin.host, db.proxy.admin.port),
      configFile: join(dataDir, 'config', 'db-proxy.yaml'),
    },
    apps: Array.from({ length: t.app.instances }, (_, i) => appSpec(t, i + 1)),
    lbs,
    dns: t.dns.enabled
      ? {
          listen: formatHostPort(t.dns.listen.host, t.dns.listen.port),
          admin: formatHostPort(t.dns.admin.host, t.dns.admin.port),
          fqdn: `${t.dns.name}.${t.dns.zone}`,
          configFile: join(dataDir, 'config', 'dns.yaml'),
        }
      : undefined,
    dashboard: {
      listen: formatHostPort(t.dashboard.listen.host, t.dashboard.listen.port),
      token: t.dashboard.token,
    },
  };
}

/** What the apps connect to: the db-proxy. */
export function databaseUrl(plan: Plan): string {
  const db = plan.topology.database;
  return `postgres://${db.user}@${plan.proxy.listen}/${db.name}`;
}

export const lbAdminUrl = (lb: LbSpec) => `http://${formatHostPort(lb.admin.host, lb.admin.port)}`;

const pgUrl = (plan: Plan, s: PgServerSpec) =>
  `postgres://${plan.topology.database.user}@${formatHostPort(s.host, s.port)}/${plan.topology.database.name}`;

/** The demo app's one table, split by its key when the database is sharded. */
const SHARDED_TABLES = [{ table: 'links', key: 'code', type: 'text' }];

export function proxyConfig(plan: Plan): Record<string, unknown> {
  const shards = plan.postgres
    .filter((s) => s.role === 'primary')
    .map((p) => ({
      name: `shard${p.shard}`,
      primary: pgUrl(plan, p),
      replicas: plan.postgres
        .filter((s) => s.role === 'replica' && s.shard === p.shard)
        .map((s) => pgUrl(plan, s)),
    }));
  const common = { listen: plan.proxy.listen, admin: plan.proxy.admin, pool_size: 20 };
  if (shards.length === 1) {
    return { database: { ...common, primary: shards[0]!.primary, replicas: shards[0]!.replicas } };
  }
  return { database: { ...common, shards, sharded_tables: SHARDED_TABLES } };
}

export function lbConfig(plan: Plan, lb: LbSpec, apps: AppSpec[]): Record<string, unknown> {
  const t = plan.topology;
  return {
    admin: { listen: formatHostPort(lb.admin.host, lb.admin.port) },
    listeners: Object.fromEntries(
      lb.listeners.map((l) => [
        l.name,
        {
          listen: formatHostPort(lb.address, l.port),
          defaultAction: { forward: { targetGroup: TARGET_GROUP } },
        },
      ]),
    ),
    targetGroups: {
      [TARGET_GROUP]: {
        algorithm: t.lb.algorithm,
        targets: apps.map((a) => ({ address: formatHostPort(a.host, a.port), id: a.name })),
        healthCheck: { path: t.app.healthPath, interval: t.lb.healthCheckInterval },
        slowStart: t.lb.slowStart,
        deregistrationDelay: t.lb.deregistrationDelay,
      },
    },
  };
}

export function dnsConfig(plan: Plan): Record<string, unknown> {
  const t = plan.topology;
  return {
    dns: {
      listen: plan.dns!.listen,
      admin: plan.dns!.admin,
      zones: [
        {
          name: t.dns.zone,
          recordSets: [
            {
              name: t.dns.name,
              ttl: t.dns.ttl,
              policy: 'simple',
              // Each address follows the live state of its LB's target group (through the LB's admin
              // API): an LB that is gone, or has no healthy app behind it, leaves the answers.
              addresses: plan.lbs.map((lb) => ({ address: lb.address, lbAdmin: lbAdminUrl(lb) })),
              followLb: { targetGroup: TARGET_GROUP, intervalMs: 1000 },
            },
          ],
        },
      ],
    },
  };
}

export function writeYaml(file: string, data: unknown): void {
  writeFileSync(file, `# Generated by scaleout up; rewritten on every start.\n${stringify(data)}`);
}
