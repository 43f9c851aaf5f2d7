// `scaleout db-proxy`: the listener that accepts PostgreSQL clients, the cluster it routes to, the
// cancel-key table, and an optional admin HTTP endpoint (/metrics, /status, /explain?sql=…).
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { rewrapWithOnread } from '../core/shared-onread.js';
import { parseHostPort } from '../core/types.js';
import { parseScramVerifier, scramVerifierFromPassword, type ScramVerifier } from './auth/scram.js';
import { Classifier, loadParser } from './classifier.js';
import { Cluster } from './cluster.js';
import { clusterSpecs, type DatabaseConfig } from './config.js';
import { DbMetrics } from './metrics.js';
import * as msg from './protocol/messages.js';
import { Session, type SessionContext } from './session.js';
import { ShardSupport } from './shard/support.js';

export class DbProxy implements SessionContext {
  readonly metrics = new DbMetrics();
  readonly classifier: Classifier;
  readonly cluster: Cluster;
  readonly clusters: Cluster[];
  readonly sharding: ShardSupport | undefined;
  readonly users = new Map<string, { password: string; scram: ScramVerifier }>();
  readonly tls: SecureContext | undefined;
  private server: Server | undefined;
  private admin: HttpServer | undefined;
  private readonly sessions = new Set<Socket>();
  private readonly cancelKeys = new Map<number, { session: Session; secret: number }>();
  private nextPid = 1;
  private recoveryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly config: DatabaseConfig,
    readonly log: Logger,
  ) {
    this.classifier = new Classifier(config.safe_functions);
    this.clusters = clusterSpecs(config).map((spec, shard) => {
      const c = new Cluster(config, this.metrics, log, spec);
      for (const b of c.backends) b.shard = shard;
      return c;
    });
    this.cluster = this.clusters[0]!;
    this.sharding = config.shards ? new ShardSupport(config, this.clusters, this.metrics, log) : undefined;
    for (const u of config.users) {
      this.users.set(u.name, {
        password: u.password,
        scram: parseScramVerifier(u.password) ?? scramVerifierFromPassword(u.password),
      });
    }
    this.tls = config.tls
      ? createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) })
      : undefined;
  }

  /** Starts listening; resolves with the bound address once the first health round is done. */
  async start(): Promise<{ host: string; port: number }> {
    await loadParser();
    await Promise.all(this.clusters.map((c) => c.start()));
    if (this.sharding && this.config.two_phase_commit) {
      await this.recoverPrepared(true);
      this.recoveryTimer = setInterval(() => void this.recoverPrepared(false), 10_000);
      this.recoveryTimer.unref();
    }
    const { host, port } = parseHostPort(this.config.listen);
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (accepted) => {
      // Reads through `onread` where this Node allows it (see shared-onread.ts); not with TLS, which
      // takes over the socket's reads after SSLRequest.
      // The first read cannot arrive before this callback returns, so `session` is set by then.
      const rewrapped = this.tls
        ? undefined
        : rewrapWithOnread(accepted, this.server!, true, (chunk) => session.receive(chunk));
      const socket = rewrapped ?? accepted;
      this.sessions.add(socket);
      socket.once('close', () => this.sessions.delete(socket));
      const session = new Session(socket, this, rewrapped === undefined);
      if (!rewrapped) accepted.resume();
    });
    this.server.on('error', (err) => this.log.error({ err }, 'listener error'));
    const bound = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => {
        const a = this.server!.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
      });
    });
    if (this.config.admin) await this.startAdmin();
    return bound;
  }

  private async startAdmin(): Promise<void> {
    const { host, port } = parseHostPort(this.config.admin!);
    this.admin = createHttpServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://admin');
      if (url.pathname === '/metrics') {
        void this.metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
          res.end(text);
        });
      } else if (url.pathname === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(this.status(), null, 2));
      } else if (url.pathname === '/explain') {
        const sql = url.searchParams.get('sql') ?? '';
        const cls = this.classifier.classify(sql);
        const sh = this.sharding;
        const d = sh?.router.decide(sql, sh.analyzer.analyze(sql), {});
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            sql,
            route: cls.readOnly || cls.begin === 'read-only' ? 'replica' : 'primary',
            ...cls,
            ...(d && sh
              ? {
                  shard: {
                    kind: d.kind,
                    ...(d.kind === 'shard' ? { shards: [sh.map.names[d.shard]], reason: d.reason } : {}),
                    ...(d.kind === 'scatter'
                      ? { shards: d.shards.map((i) => sh.map.names[i]), reason: d.reason, runs: d.plan.sql }
                      : {}),
                    ...(d.kind === 'all' ? { shards: sh.map.names, reason: d.reason } : {}),
                    ...(d.kind === 'refuse' ? { code: d.code, message: d.message, hint: d.hint } : {}),
                  },
                }
              : {}),
          }),
        );
      } else {
        res.writeHead(404).end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.admin!.once('error', reject);
      this.admin!.listen(port, host, () => resolve());
    });
  }

  /**
   * Two-phase commit: make sure every primary has the decisions table, then finish whatever an earlier
   * run left prepared (see shard/two-phase.ts). A primary that is down is reported and skipped.
   */
  async recoverPrepared(
    atStart: boolean,
  ): Promise<{ committed: string[]; rolledBack: string[] } | undefined> {
    const twoPhase = this.sharding!.twoPhase;
    try {
      if (atStart) await twoPhase.prepareTables(this.config.connect_timeout_ms);
      const r = await twoPhase.recover(
        this.config.connect_timeout_ms,
        this.config.two_phase_rollback_after_ms,
      );
      if (atStart || r.committed.length + r.rolledBack.length > 0)
        this.log.info(
          { committed: r.committed.length, rolledBack: r.rolledBack.length },
          'two-phase commit recovery done',
        );
      return r;
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'two-phase commit recovery failed; retry by restarting',
      );
      return undefined;
    }
  }

  /** The admin /status answer: every server, and per shard its counts and servers when sharded. */
  status(): object {
    if (!this.sharding) return { servers: this.cluster.status() };
    return {
      servers: this.clusters.flatMap((c) => c.status()),
      shards: this.sharding.status(),
      scatterQueries: this.sharding.scatterQueries,
      refusedStatements: this.sharding.refused,
    };
  }

  registerCancelKey(session: Session): { pid: number; secret: number } {
    const pid = this.nextPid++;
    const secret = randomInt(0, 2 ** 31);
    this.cancelKeys.set(pid, { session, secret });
    return { pid, secret };
  }

  unregisterCancelKey(pid: number): void {
    this.cancelKeys.delete(pid);
  }

  /** A CancelRequest with our key: forwarded with the real key to the server running that client's query. */
  cancel(pid: number, secret: number): void {
    const entry = this.cancelKeys.get(pid);
    if (!entry || entry.secret !== secret) {
      this.log.info({ pid }, 'cancel request with an unknown key ignored');
      return;
    }
    const target = entry.session.cancelTarget();
    if (!target) return;
    const sock = connect({ host: target.host, port: target.port }, () =>
      sock.end(msg.cancelRequest(target.pid, target.secret)),
    );
    sock.on('error', (err) => this.log.warn({ err: err.message }, 'could not forward cancel request'));
    sock.setTimeout(5000, () => sock.destroy());
  }

  async stop(): Promise<void> {
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    for (const c of this.clusters) c.stop();
    for (const s of this.sessions) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r())),
      new Promise<void>((r) => (this.admin ? this.admin.close(() => r()) : r())),
    ]);
  }
}
