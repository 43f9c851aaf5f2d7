import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/log.js';
import type { TargetSpec, TargetState } from '../core/types.js';
import type { ScaleoutConfig } from '../config/schema.js';
import type { HealthState } from '../health/state-machine.js';
import type { Target } from '../registry/target.js';
import { LbRuntime, type AdminChange } from './runtime.js';
import { openAccessLog } from './access-log.js';
import { LbMetrics, type MetricsSnapshot } from './metrics.js';

// `scaleout lb --workers N` (N > 1): one primary process and N workers (node:cluster; Node 20 has no
// reusePort, and with cluster the primary keeps the listening socket, so a dying worker loses nothing).
// The primary is the control plane: it probes health once for everyone, owns the admin state and
// config reloads, and sums the workers' in-flight counts so least-outstanding sees the whole load.
// Workers are the data plane: they proxy, and take health, config and admin changes from the primary.

type HealthReason = Target['reason'];

type ToWorker =
  | { type: 'config'; config: ScaleoutConfig }
  | {
      type: 'health';
      group: string;
      target: string;
      state: HealthState;
      reason: HealthReason;
      detail?: string;
    }
  | { type: 'load'; totals: LoadCounts }
  | { type: 'admin'; change: AdminChange }
  | { type: 'shutdown' };

type ToPrimary =
  | { type: 'hello' }
  | { type: 'ready'; ports: Record<string, number> }
  | { type: 'load'; counts: LoadCounts }
  | { type: 'metrics'; snapshot: MetricsSnapshot };

/** group → target id → requests in flight. */
type LoadCounts = Record<string, Record<string, number>>;

const LOAD_REPORT_MS = 100;
const STICKY_SECRET_ENV = 'SCALEOUT_STICKY_SECRET';

export interface PrimaryOptions {
  workers: number;
  drainTimeoutMs: number;
  log: Logger;
  /** A worker's metrics (about once a second), for the admin API's /metrics. */
  onWorkerMetrics?: (workerId: number, snapshot: MetricsSnapshot) => void;
  /** Workers' access log: true = stdout, false = off, a string = a file (shared, appended). */
  accessLog?: boolean | string;
}

export class LbPrimary {
  readonly runtime: LbRuntime;
  private readonly loads = new Map<number, LoadCounts>();
  private stopping = false;
  private restarts = 0;
  /** Resolves with each listener's port once the first worker is serving. */
  readonly ready: Promise<Record<string, number>>;
  private resolveReady!: (ports: Record<string, number>) => void;

  constructor(
    private config: ScaleoutConfig,
    private readonly options: PrimaryOptions,
  ) {
    const secret = randomBytes(32);
    process.env[STICKY_SECRET_ENV] = secret.toString('hex'); // inherited by forked workers
    this.runtime = new LbRuntime({
      log: options.log,
      stateFile: config.admin?.stateFile,
      stickySecret: secret,
      drainTimeoutMs: options.drainTimeoutMs,
      role: 'control',
    });
    this.runtime.onAdminChange = (change) => this.broadcast({ type: 'admin', change });
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
  }

  async start(): Promise<void> {
    await this.runtime.apply(this.config);
    this.watchHealth();
    for (let i = 0; i < this.options.workers; i++) this.fork();
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
  }

  /** A validated new config: the primary applies it, then every worker. */
  async reload(config: ScaleoutConfig): Promise<void> {
    this.config = config;
    await this.runtime.apply(config);
    this.watchHealth();
    this.broadcast({ type: 'config', config });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    const exited = workers.map(
      (w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))),
    );
    this.broadcast({ type: 'shutdown' });
    const timeout = new Promise<void>((resolve) =>
      setTimeout(resolve, this.options.drainTimeoutMs + 2000).unref(),
    );
    await Promise.race([Promise.all(exited), timeout]);
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    await this.runtime.stop();
  }

  private fork(): void {
    const worker = cluster.fork({
      SCALEOUT_LB_WORKER: '1',
      SCALEOUT_LB_ACCESS_LOG: JSON.stringify(this.options.accessLog ?? false),
    });
    worker.on('message', (msg: ToPrimary) => this.onMessage(worker, msg));
    // IPC errors from a worker that is going away must not crash the primary.
    worker.on('error', (err) =>
      this.options.log.debug({ worker: worker.id, err: err.message }, 'worker IPC error'),
    );
  }

  private onMessage(worker: Worker, msg: ToPrimary): void {
    if (msg.type === 'hello' && this.stopping) {
      // A replacement forked just before shutdown missed the broadcast: tell it now.
      this.send(worker, { type: 'shutdown' });
    } else if (msg.type === 'hello') {
      // The worker listens for messages now (anything sent before 'hello' could be lost).
      this.send(worker, { type: 'config', config: this.config });
      for (const [group, rt] of this.runtime.groups) {
        for (const t of rt.group.list()) this.send(worker, healthMessage(group, t));
      }
    } else if (msg.type === 'ready') {
      this.options.log.info(
        { worker: worker.id, pid: worker.process.pid },
        `worker ${worker.id} (pid ${worker.process.pid}) is serving`,
      );
      this.resolveReady(msg.ports);
    } else if (msg.type === 'load') {
      this.loads.set(worker.id, msg.counts);
      this.sumLoads();
    } else if (msg.type === 'metrics') {
      this.options.onWorkerMetrics?.(worker.id, msg.snapshot);
    }
  }

  /** Sums the workers' in-flight counts: the primary's targets carry the total (for drain status). */
  private sumLoads(): void {
    const totals: LoadCounts = {};
    for (const counts of this.loads.values()) {
      for (const [group, byTarget] of Object.entries(counts)) {
        const g = (totals[group] ??= {});
        for (const [id, n] of Object.entries(byTarget)) g[id] = (g[id] ?? 0) + n;
      }
    }
    for (const [group, rt] of this.runtime.groups) {
      for (const t of rt.group.list()) {
        t.outstanding = totals[group]?.[t.id] ?? 0;
        if (t.draining) rt.checkDrained(t);
      }
    }
    this.broadcast({ type: 'load', totals });
  }

  private watched = new WeakSet<object>();

  /** Forwards every health transition of the primary's prober to the workers. */
  private watchHealth(): void {
    for (const [name, rt] of this.runtime.groups) {
      if (this.watched.has(rt.group)) continue;
      this.watched.add(rt.group);
      rt.group.on('transition', (target) => this.broadcast(healthMessage(name, target)));
    }
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.loads.delete(worker.id);
    if (this.stopping) return;
    this.restarts++;
    // Back off if workers keep dying, so a crash loop does not burn the machine.
    const delay = Math.min(100 * 2 ** Math.min(this.restarts - 1, 6), 5000);
    this.options.log.error(
      { worker: worker.id, pid: worker.process.pid, code, signal },
      `worker ${worker.id} died; starting a replacement in ${delay} ms`,
    );
    setTimeout(() => {
      if (!this.stopping) this.fork();
    }, delay).unref();
  }

  private send(worker: Worker, msg: ToWorker): void {
    // The channel can close between the check and the send (a worker stopping): that is not an error.
    if (worker.isConnected()) worker.send(msg, undefined, undefined, ignoreSendError);
  }

  private broadcast(msg: ToWorker): void {
    for (const worker of Object.values(cluster.workers ?? {})) if (worker) this.send(worker, msg);
  }
}

function healthMessage(group: string, t: Target): ToWorker {
  return {
    type: 'health',
    group,
    target: t.id,
    state: t.health.state,
    reason: t.health.reason,
    detail: t.health.detail,
  };
}

function ignoreSendError(): void {}

/** Sends to the primary; a primary that is gone (shutting down) is not an error for a worker. */
function toPrimary(msg: ToPrimary): void {
  if (process.connected) process.send?.(msg, undefined, undefined, ignoreSendError);
}

export function isLbWorker(): boolean {
  return cluster.isWorker && process.env.SCALEOUT_LB_WORKER === '1';
}

/** The body of a worker process: proxy with the primary's config, health and admin changes. */
export function runLbWorker(log: Logger, drainTimeoutMs: number): void {
  const accessLog = JSON.parse(process.env.SCALEOUT_LB_ACCESS_LOG ?? 'false') as boolean | string;
  const secretHex = process.env[STICKY_SECRET_ENV];
  const metrics = new LbMetrics({ processMetrics: false });
  const access = openAccessLog(accessLog, log);
  const runtime = new LbRuntime({
    log,
    drainTimeoutMs,
    stickySecret: secretHex ? Buffer.from(secretHex, 'hex') : undefined,
    role: 'worker',
    onRequest: access
      ? (listener, record) => {
          metrics.onRequest(listener, record);
          access.onRequest(listener, record);
        }
      : metrics.onRequest,
  });
  metrics.attach(runtime);
  setInterval(() => toPrimary({ type: 'metrics', snapshot: metrics.snapshot() }), 1000).unref();
  const reported = new Map<Target, number>();
  let started = false;

  const reportLoad = () => {
    const counts: LoadCounts = {};
    for (const [name, rt] of runtime.groups) {
      const g: Record<string, number> = (counts[name] = {});
      for (const t of rt.group.list()) {
        const local = t.outstanding - t.remoteOutstanding;
        g[t.id] = local;
        reported.set(t, local);
      }
    }
    toPrimary({ type: 'load', counts });
  };
  setInterval(reportLoad, LOAD_REPORT_MS).unref();

  process.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'config':
        void runtime.apply(msg.config).then(() => {
          if (started) return;
          started = true;
          const ports = Object.fromEntries([...runtime.addresses].map(([name, a]) => [name, a.port]));
          toPrimary({ type: 'ready', ports });
        });
        break;
      case 'health':
        runtime.group(msg.group)?.applyExternalHealth(msg.target, msg.state, msg.reason, msg.detail);
        break;
      case 'load':
        // Others' in-flight requests = total − what this worker reported; balancers read the sum.
        for (const [name, rt] of runtime.groups) {
          for (const t of rt.group.list()) {
            const remote = Math.max(0, (msg.totals[name]?.[t.id] ?? 0) - (reported.get(t) ?? 0));
            t.outstanding += remote - t.remoteOutstanding;
            t.remoteOutstanding = remote;
          }
        }
        break;
      case 'admin':
        applyAdminChange(runtime, msg.change);
        break;
      case 'shutdown':
        void runtime
          .stop()
          .then(() => access?.close())
          .then(() => process.exit(0));
        break;
    }
  });
  toPrimary({ type: 'hello' });
  // A worker stops when the primary tells it to, not on the terminal's signals.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => void runtime.stop().then(() => process.exit(0)));
}

function applyAdminChange(runtime: LbRuntime, change: AdminChange): void {
  try {
    switch (change.op) {
      case 'register':
        runtime.register(change.group, change.spec as TargetSpec);
        break;
      case 'deregister':
        runtime.deregister(change.group, change.id);
        break;
      case 'disable':
        runtime.setDisabled(change.group, change.id, change.disabled);
        break;
      case 'weight':
        runtime.setWeight(change.group, change.id, change.weight);
        break;
    }
  } catch {
    // The primary validated the change; a worker that lags a reload behind may not know the group yet.
  }
}

export type { TargetState };
