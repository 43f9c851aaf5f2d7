// The supervisor behind `scaleout up`: starts every component of a plan as its own process in order
// (PostgreSQL, db-proxy, apps, LBs, DNS), stops them in the reverse order (DNS, LBs drain, apps,
// proxy, replicas, primaries), and implements the dashboard's ControlPlane (scale, kill, restart).
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  APP_INSTANCES,
  type ComponentInfo,
  type ComponentKind,
  type ControlPlane,
  type TopologySnapshot,
} from '../dashboard/control-plane.js';
import { formatHostPort } from '../core/types.js';
import {
  appSpec,
  databaseUrl,
  dnsConfig,
  lbAdminUrl,
  lbConfig,
  proxyConfig,
  TARGET_GROUP,
  writeYaml,
  type AppSpec,
  type LbSpec,
  type Plan,
} from './plan.js';
import {
  ownDir,
  postgresProcess,
  preparePrimary,
  prepareReplica,
  serverUserCanWrite,
  waitPostgresReady,
  type PgEnv,
  type PgServerSpec,
} from './pg-server.js';
import { ManagedProcess } from './process.js';
import { availableMemoryMb, checkBinds, checkMemory } from './preflight.js';
import { MARKER_KEY, readRunState, writeRunState } from './stale.js';

/** dist/cli.js, also when this module runs from src/ under tsx (tests). */
export function cliPath(): string {
  const here = fileURLToPath(new URL('../cli.js', import.meta.url));
  return existsSync(here) ? here : here.replace(/\/src\/cli\.js$/, '/dist/cli.js');
}

interface Component {
  name: string;
  kind: ComponentKind;
  address: string;
  role?: string;
  shard?: number;
  adminUrl?: string;
  proc: ManagedProcess;
  /** Resolves when the component serves; throws (with its log tail) if it died first. */
  ready(): Promise<void>;
  /** Writes what the process needs before a (re)start, e.g. an LB's config with the current apps. */
  prepare?(): void;
  app?: AppSpec;
}

export interface SupervisorOptions {
  pg: PgEnv;
  /** One human-readable line per event (crash, scale); the CLI prints them. */
  say?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls an HTTP URL until it answers 200, while the process stays up. */
async function waitHttp(proc: ManagedProcess, url: string, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${what} exited while starting:\n${proc.logTail()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${what} was not ready at ${url} within ${timeoutMs} ms (${last}):\n${proc.logTail()}`);
}

async function adminCall(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

export class Supervisor implements ControlPlane {
  readonly canControl = true;
  private readonly components = new Map<string, Component>();
  private readonly cli = cliPath();
  private readonly marker: { key: string; value: string };
  private readonly say: (line: string) => void;
  /** Scale, kill and restart run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;

  constructor(
    readonly plan: Plan,
    private readonly options: SupervisorOptions,
  ) {
    this.marker = { key: MARKER_KEY, value: plan.dataDir };
    this.say = options.say ?? (() => {});
    for (const dir of ['logs', 'config', 'run']) mkdirSync(join(plan.dataDir, dir), { recursive: true });
  }

  private logFile(name: string): string {
    return join(this.plan.dataDir, 'logs', `${name}.log`);
  }

  private node(name: string, kind: ComponentKind, args: string[]): ManagedProcess {
    return new ManagedProcess({
      name,
      kind,
      command: process.execPath,
      args: [this.cli, ...args],
      logFile: this.logFile(name),
      deathSignal: 'SIGTERM',
      stopSignal: 'SIGTERM',
      marker: this.marker,
      env: { SCALEOUT_LOG_LEVEL: process.env.SCALEOUT_LOG_LEVEL ?? 'info' },
    });
  }

  private add(c: Component): Component {
    this.components.set(c.name, c);
    c.proc.on('exit', ({ code, signal, expected }) => {
      this.saveRunState();
      if (!expected && !this.stopping) {
        this.say(
          `${c.name} exited unexpectedly (${signal ?? `exit code ${code}`}); log: ${c.proc.spec.logFile}`,
        );
      }
    });
    return c;
  }

  // --- building the components -------------------------------------------------------------------

  private pgComponent(spec: PgServerSpec): Component {
    const proc = postgresProcess(this.options.pg, spec, this.logFile(spec.name), this.marker);
    return this.add({
      name: spec.name,
      kind: 'postgres',
      address: formatHostPort(spec.host, spec.port),
      role: spec.role,
      shard: spec.shard,
      proc,
      ready: () => waitPostgresReady(proc, spec),
    });
  }

  private proxyComponent(): Component {
    const { proxy } = this.plan;
    const proc = this.node('db-proxy', 'db-proxy', ['db-proxy', '--config', proxy.configFile]);
    const adminUrl = `http://${proxy.admin}`;
    return this.add({
      name: 'db-proxy',
      kind: 'db-proxy',
      address: proxy.listen,
      adminUrl,
      proc,
      prepare: () => writeYaml(proxy.configFile, proxyConfig(this.plan)),
      ready: () => waitHttp(proc, `${adminUrl}/status`, 'db-proxy'),
    });
  }

  private appCommand(app: AppSpec): { command: string; args: string[]; env: Record<string, string> } {
    const listen = formatHostPort(app.host, app.port);
    const values: Record<string, string> = {
      listen,
      host: app.host,
      port: String(app.port),
      database: databaseUrl(this.plan),
      name: app.name,
    };
    const template = this.plan.topology.app.command ?? [
      process.execPath,
      this.cli,
      'demo-app',
      '--listen',
      '{listen}',
      '--database',
      '{database}',
      '--instance',
      '{name}',
    ];
    const fill = (s: string) =>
      s.replace(/\{(listen|host|port|database|name)\}/g, (_m, k: string) => values[k]!);
    const [command, ...args] = template.map(fill);
    return {
      command: command!,
      args,
      env: {
        LISTEN: listen,
        HOST: app.host,
        PORT: String(app.port),
        DATABASE_URL: values.database!,
        SCALEOUT_INSTANCE: app.name,
      },
    };
  }

  private appComponent(app: AppSpec): Component {
    const { command, args, env } = this.appCommand(app);
    const proc = new ManagedProcess({
      name: app.name,
      kind: 'app',
      command,
      args,
      env: { ...env, SCALEOUT_LOG_LEVEL: process.env.SCALEOUT_LOG_LEVEL ?? 'info' },
      logFile: this.logFile(app.name),
      deathSignal: 'SIGTERM',
      stopSignal: 'SIGTERM',
      marker: this.marker,
    });
    const url = `http://${formatHostPort(app.host, app.port)}${this.plan.topology.app.healthPath}`;
    return this.add({
      name: app.name,
      kind: 'app',
      address: formatHostPort(app.host, app.port),
      proc,
      app,
      ready: () => waitHttp(proc, url, app.name, 60_000),
    });
  }

  private lbComponent(lb: LbSpec): Component {
    const proc = this.node(lb.name, 'lb', [
      'lb',
      '--config',
      lb.configFile,
      '--workers',
      '1',
      '--drain-timeout',
      '5s',
    ]);
    const adminUrl = lbAdminUrl(lb);
    return this.add({
      name: lb.name,
      kind: 'lb',
      address: formatHostPort(lb.address, lb.listeners[0]!.port),
      adminUrl,
      proc,
      // Restarted LBs get the apps that run now, not the ones of the first start.
      prepare: () => writeYaml(lb.configFile, lbConfig(this.plan, lb, this.appSpecs())),
      ready: () => waitHttp(proc, `${adminUrl}/api/v1/status`, lb.name),
    });
  }

  private dnsComponent(): Component {
    const dns = this.plan.dns!;
    const proc = this.node('dns', 'dns', ['dns', '--config', dns.configFile]);
    const adminUrl = `http://${dns.admin}`;
    return this.add({
      name: 'dns',
      kind: 'dns',
      address: dns.listen,
      adminUrl,
      proc,
      prepare: () => writeYaml(dns.configFile, dnsConfig(this.plan)),
      ready: () => waitHttp(proc, `${adminUrl}/status`, 'dns'),
    });
  }

  private appSpecs(): AppSpec[] {
    return [...this.components.values()].filter((c) => c.app).map((c) => c.app!);
  }

  // --- start and stop ----------------------------------------------------------------------------

  /** Creates missing PostgreSQL data (primaries first: replicas are copies of their stopped primary). */
  preparePostgres(): string[] {
    const created: string[] = [];
    const pgRoot = join(this.plan.dataDir, 'pg');
    ownDir(this.options.pg, pgRoot);
    if (!serverUserCanWrite(this.options.pg, pgRoot)) {
      throw new Error(
        `PostgreSQL runs as the user "${this.options.pg.osUser}", which cannot write ${pgRoot}: every parent ` +
          'directory must be searchable by that user (e.g. chmod o+x on it), or use --data-dir under /var/lib or /tmp',
      );
    }
    this.checkShardCount(pgRoot);
    for (const spec of this.plan.postgres) {
      const made =
        spec.role === 'primary'
          ? preparePrimary(this.options.pg, spec)
          : prepareReplica(this.options.pg, spec);
      if (made) created.push(spec.name);
    }
    writeFileSync(join(pgRoot, 'shards'), `${this.plan.topology.database.shards}\n`);
    return created;
  }

  /** Rows sit on the shard their key hashes to modulo the shard count: a data dir keeps its count. */
  private checkShardCount(pgRoot: string): void {
    const shards = this.plan.topology.database.shards;
    let recorded: number | undefined;
    try {
      recorded = Number(readFileSync(join(pgRoot, 'shards'), 'utf8'));
    } catch {
      recorded = undefined;
    }
    if (recorded !== undefined && recorded !== shards) {
      throw new Error(
        `${pgRoot} holds the data of ${recorded} shard(s), and this topology has ${shards}: rows are placed ` +
          'by the hash of their key modulo the number of shards, and scaleout does not move them. ' +
          `Use another --data-dir, or delete ${pgRoot} to start empty`,
      );
    }
  }

  private async startOne(c: Component): Promise<void> {
    c.prepare?.();
    c.proc.start();
    this.saveRunState();
    await c.ready();
    c.proc.markRunning();
  }

  /** Starts everything in order; on any failure stops what it started and throws. */
  async start(): Promise<void> {
    const { plan } = this;
    const pg = plan.postgres.map((s) => this.pgComponent(s));
    const proxy = this.proxyComponent();
    const apps = plan.apps.map((a) => this.appComponent(a));
    const lbs = plan.lbs.map((l) => this.lbComponent(l));
    const dns = plan.dns ? [this.dnsComponent()] : [];
    try {
      // Primaries first so replicas find them; then the rest, each tier in parallel.
      await Promise.all(pg.filter((c) => c.role === 'primary').map((c) => this.startOne(c)));
      await Promise.all(pg.filter((c) => c.role === 'replica').map((c) => this.startOne(c)));
      await this.startOne(proxy);
      await Promise.all(apps.map((c) => this.startOne(c)));
      await Promise.all(lbs.map((c) => this.startOne(c)));
      await Promise.all(dns.map((c) => this.startOne(c)));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops everything: DNS, LBs (they drain), apps, proxy, replicas, primaries. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.queue.catch(() => {});
    const of = (kind: ComponentKind, role?: string) =>
      [...this.components.values()].filter((c) => c.kind === kind && (!role || c.role === role));
    const stopAll = (cs: Component[], timeoutMs: number) =>
      Promise.all(cs.map((c) => c.proc.stop(timeoutMs)));
    await stopAll(of('dns'), 5000);
    await stopAll(of('lb'), 10_000);
    await stopAll(of('app'), 15_000);
    await stopAll(of('db-proxy'), 5000);
    await stopAll(of('postgres', 'replica'), 30_000);
    await stopAll(of('postgres', 'primary'), 30_000);
    this.saveRunState();
  }

  saveRunState(): void {
    const components: Record<string, number> = {};
    for (const c of this.components.values()) if (c.proc.pid) components[c.name] = c.proc.pid;
    const previous = readRunState(this.plan.dataDir);
    writeRunState(this.plan.dataDir, { supervisorPid: previous.supervisorPid ?? process.pid, components });
  }

  // --- ControlPlane ------------------------------------------------------------------------------

  snapshot(): TopologySnapshot {
    return {
      name: this.plan.name,
      components: [...this.components.values()].map((c): ComponentInfo => ({
        name: c.name,
        kind: c.kind,
        status: c.proc.status,
        address: c.address,
        pid: c.proc.pid,
        role: c.role,
        shard: c.shard,
        adminUrl: c.adminUrl,
        restarts: c.proc.restarts,
        since: c.proc.since,
      })),
    };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private component(name: string): Component {
    const c = this.components.get(name);
    if (!c) {
      throw new Error(`no component named "${name}" (known: ${[...this.components.keys()].join(', ')})`);
    }
    return c;
  }

  kill(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.stopping) throw new Error('the topology is stopping');
      const c = this.component(name);
      if (!c.proc.running) throw new Error(`${name} is not running (${c.proc.status})`);
      this.say(`${name}: killed (chaos)`);
      await c.proc.kill();
    });
  }

  restart(name: string): Promise<void> {
    return this.serial(async () => {
      if (this.stopping) throw new Error('the topology is stopping');
      const c = this.component(name);
      if (c.proc.running) await c.proc.stop(15_000);
      await this.startOne(c);
      this.say(`${name}: restarted (pid ${c.proc.pid})`);
    });
  }

  scale(tier: 'app', count: number): Promise<void> {
    return this.serial(async () => {
      if (this.stopping) throw new Error('the topology is stopping');
      if (tier !== 'app') throw new Error(`only the app tier scales (got "${String(tier)}")`);
      const { min, max } = APP_INSTANCES;
      if (!Number.isInteger(count) || count < min || count > max) {
        throw new Error(`app instances: expected a whole number from ${min} to ${max} (got ${count})`);
      }
      const apps = this.appSpecs();
      const current = apps.length;
      if (count > current) await this.scaleUp(current, count);
      else if (count < current) await this.scaleDown(apps.slice(count));
    });
  }

  private async scaleUp(current: number, count: number): Promise<void> {
    const adding = count - current;
    const problem = checkMemory(
      adding * this.plan.topology.app.memoryMb,
      `scale app=${count} (${adding} more instances)`,
      availableMemoryMb(),
    );
    if (problem) throw new Error(problem);
    const specs = Array.from({ length: adding }, (_, i) => appSpec(this.plan.topology, current + i + 1));
    const busy = await checkBinds(specs.map((s) => ({ address: `${s.host}:${s.port}`, what: s.name })));
    if (busy.length) throw new Error(busy.join('\n'));
    const added: Component[] = [];
    try {
      for (const spec of specs) {
        const c = this.appComponent(spec);
        added.push(c);
        await this.startOne(c);
      }
    } catch (err) {
      for (const c of added) {
        await c.proc.stop(5000);
        this.components.delete(c.name);
      }
      this.saveRunState();
      throw err;
    }
    // Registered after they are healthy; the LB's slow start ramps their share up.
    for (const c of added) {
      for (const lb of this.runningLbs()) {
        const r = await adminCall(`${lb.adminUrl}/api/v1/target-groups/${TARGET_GROUP}/targets`, {
          method: 'POST',
          body: JSON.stringify({ address: c.address, id: c.name }),
        });
        if (r.status >= 300)
          throw new Error(`${lb.name}: registering ${c.name} failed: ${JSON.stringify(r.body)}`);
      }
      this.say(`${c.name}: started on ${c.address} and registered with ${this.runningLbs().length} LB(s)`);
    }
  }

  private runningLbs(): Component[] {
    return [...this.components.values()].filter((c) => c.kind === 'lb' && c.proc.running);
  }

  /** Deregisters (drains) the apps from every LB, waits until drained, then stops them. */
  private async scaleDown(removing: AppSpec[]): Promise<void> {
    const delay = this.plan.topology.lb.deregistrationDelay;
    for (const app of removing) {
      for (const lb of this.runningLbs()) {
        const r = await adminCall(`${lb.adminUrl}/api/v1/target-groups/${TARGET_GROUP}/targets/${app.name}`, {
          method: 'DELETE',
        });
        if (r.status >= 300 && r.status !== 404)
          throw new Error(`${lb.name}: deregistering ${app.name} failed: ${JSON.stringify(r.body)}`);
      }
    }
    const deadline = Date.now() + delay + 5000;
    for (const app of removing) {
      for (const lb of this.runningLbs()) {
        while (Date.now() < deadline) {
          const r = await adminCall(
            `${lb.adminUrl}/api/v1/target-groups/${TARGET_GROUP}/targets/${app.name}/drain`,
          );
          if (r.status === 404 || (r.body as { drained?: boolean }).drained) break;
          await sleep(100);
        }
      }
    }
    await Promise.all(
      removing.map(async (app) => {
        const c = this.components.get(app.name)!;
        await c.proc.stop(15_000);
        this.components.delete(app.name);
        this.say(`${app.name}: drained and stopped`);
      }),
    );
    this.saveRunState();
  }
}
