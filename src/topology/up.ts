// `scaleout up` as a library: check, prepare and start a topology, then serve the dashboard and the
// control socket. The CLI (src/cli/up.ts) adds signals, printing and --detach.
import type http from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import type { TopologyConfig } from '../config/topology-schema.js';
import { startDashboard, type Dashboard } from '../dashboard/index.js';
import { controlRequest, startControlServer } from './control.js';
import { findPostgres, type PgBinaries } from './pg-binaries.js';
import { databaseUrl, makePlan, type Plan } from './plan.js';
import {
  availableMemoryMb,
  checkAddresses,
  checkMemory,
  checkPostgres,
  estimateMemoryMb,
  pgOsUser,
  PreflightError,
} from './preflight.js';
import { controlSocket, liveSupervisor, sweepStale, writeRunState } from './stale.js';
import { Supervisor } from './supervisor.js';
import { mkdirSync } from 'node:fs';

export interface UpOptions {
  topology: TopologyConfig;
  name: string;
  say?: (line: string) => void;
}

export interface RunningTopology {
  plan: Plan;
  supervisor: Supervisor;
  dashboard: Dashboard;
  postgres: PgBinaries;
  /** PostgreSQL data directories made by this start (empty when the data was reused). */
  createdData: string[];
  stop(): Promise<void>;
}

/** Everything that can be known before starting: refuses with every problem at once. */
export async function preflight(plan: Plan, say?: (line: string) => void): Promise<PgBinaries> {
  const problems: string[] = [];
  let pg: PgBinaries | Error;
  try {
    pg = await findPostgres();
  } catch (err) {
    pg = err as Error;
  }
  problems.push(...checkPostgres(pg instanceof Error ? pg : pg.binDir, say));
  const memory = checkMemory(
    estimateMemoryMb(plan),
    `this topology (${plan.apps.length} app instances, ${plan.lbs.length} LB instances, ${plan.postgres.length} PostgreSQL servers)`,
    availableMemoryMb(),
  );
  if (memory) problems.push(memory);
  problems.push(...(await checkAddresses(plan)));
  if (problems.length) throw new PreflightError(problems);
  return pg as PgBinaries;
}

export async function up(options: UpOptions): Promise<RunningTopology> {
  const say = options.say ?? (() => {});
  const plan = makePlan(options.topology, options.name);
  const running = liveSupervisor(plan.dataDir);
  if (running) {
    throw new PreflightError([
      `a topology already runs from ${plan.dataDir} (supervisor pid ${running}): stop it with \`scaleout down --data-dir ${plan.dataDir}\``,
    ]);
  }
  mkdirSync(join(plan.dataDir, 'run'), { recursive: true });
  const stale = await sweepStale(plan.dataDir);
  if (stale.length) say(`stopped leftovers of an earlier run: ${stale.join(', ')}`);
  const pgBinaries = await preflight(plan, say);
  writeRunState(plan.dataDir, { supervisorPid: process.pid, components: {} });

  const supervisor = new Supervisor(plan, { pg: { binDir: pgBinaries.binDir, osUser: pgOsUser() }, say });
  let createdData: string[];
  try {
    createdData = supervisor.preparePostgres();
  } catch (err) {
    writeRunState(plan.dataDir, { components: {} });
    throw new PreflightError([(err as Error).message]);
  }
  try {
    await supervisor.start();
  } catch (err) {
    writeRunState(plan.dataDir, { components: {} });
    throw err;
  }
  const logger = pino(
    { name: 'scaleout-dashboard' },
    pino.destination(join(plan.dataDir, 'logs', 'dashboard.log')),
  );
  let dashboard: Dashboard;
  let control: http.Server;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await control?.close();
      await dashboard?.close();
      await supervisor.stop();
      writeRunState(plan.dataDir, { components: {} });
    })());
  try {
    dashboard = await startDashboard({
      listen: plan.dashboard.listen,
      token: plan.dashboard.token,
      control: supervisor,
      logger,
    });
    control = await startControlServer(controlSocket(plan.dataDir), {
      control: supervisor,
      stop: () => void stop(),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { plan, supervisor, dashboard, postgres: pgBinaries, createdData, stop };
}

/** The table of what runs where, the dashboard URL and commands to try. */
export function summary(t: RunningTopology): string {
  const { plan } = t;
  const rows = t.supervisor.snapshot().components.map((c) => {
    let notes = '';
    if (c.kind === 'postgres')
      notes = c.role === 'primary' ? `primary, shard ${c.shard}` : `replica, shard ${c.shard}`;
    if (c.kind === 'lb') notes = `admin ${c.adminUrl}/api/v1/status`;
    if (c.kind === 'db-proxy') notes = `admin ${c.adminUrl}/status`;
    if (c.kind === 'dns') notes = `${plan.dns!.fqdn} → ${plan.lbs.map((l) => l.address).join(', ')}`;
    return [c.name, c.kind, c.address ?? '', String(c.pid ?? ''), notes];
  });
  const head = ['component', 'kind', 'address', 'pid', 'notes'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    '  ' +
    r
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const web = plan.lbs[0]
    ? `http://${plan.lbs[0].address}:${plan.lbs[0].listeners[0]!.port}`
    : `http://${plan.apps[0]!.host}:${plan.apps[0]!.port}`;
  const dns = plan.dns;
  const out = [
    `scaleout up: ${plan.name} — data in ${plan.dataDir} (PostgreSQL ${t.postgres.source}: ${t.postgres.binDir}${
      t.createdData.length ? `; new data for ${t.createdData.join(', ')}` : '; data reused'
    })`,
    '',
    line(head),
    ...rows.map(line),
    '',
    `Dashboard: ${t.dashboard.url}`,
    `Logs:      ${join(plan.dataDir, 'logs')}/<component>.log`,
    '',
    'Try it:',
    `  curl -si ${web}/ | grep -i x-scaleout-instance`,
    ...(dns ? [`  dig @${dns.listen.split(':')[0]} -p ${dns.listen.split(':')[1]} ${dns.fqdn} +short`] : []),
    `  psql ${databaseUrl(plan)} -c 'EXPLAIN ROUTE SELECT 1'`,
    `  scaleout load ${web}/ --rate 200 --duration 30s`,
    `  scaleout scale app=${plan.apps.length + 1}${dataDirFlag(plan)}`,
    '',
  ];
  return out.join('\n');
}

function dataDirFlag(plan: Plan): string {
  return plan.topology.dataDir === '.scaleout' ? '' : ` --data-dir ${plan.dataDir}`;
}

/** Asks a running supervisor (found by its data dir) to do something. */
export async function askSupervisor(
  dataDir: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const pid = liveSupervisor(dataDir);
  if (!pid) throw new Error(`no topology is running from ${dataDir} (start one with \`scaleout up\`)`);
  const r = await controlRequest(controlSocket(dataDir), method, path, body);
  if (r.status >= 300) throw new Error(String(r.body.error ?? `HTTP ${r.status}`));
  return r.body;
}
