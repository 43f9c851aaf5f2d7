import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/log.js';
import type { TargetSpec } from '../core/types.js';
import type { ListenerSettings } from '../config/lb-schema.js';
import type { ScaleoutConfig } from '../config/schema.js';
import type { Target } from '../registry/target.js';
import { GroupRuntime } from './group-runtime.js';
import tls from 'node:tls';
import { CertificateStore } from './certificates.js';
import { HttpListener, type HttpListenerOptions } from './http/listener.js';
import { TcpListener, type TcpServerFactory } from './tcp/listener.js';
import type { RequestRecord } from './http/session.js';
import { RetryBudget } from './retry-budget.js';
import { compileAction, Router } from './router.js';
import { StickyCookieCodec } from './sticky.js';
import { RuntimeState } from './runtime-state.js';

export interface LbRuntimeOptions {
  log: Logger;
  /** Where admin changes are kept across reloads and restarts (none: in memory only). */
  stateFile?: string;
  /** Secret for signing stickiness cookies; random per process when absent. */
  stickySecret?: Buffer;
  /** How long a stopping or replaced listener waits for in-flight requests. */
  drainTimeoutMs: number;
  onRequest?: (listener: string, record: RequestRecord) => void;
  /** 'worker': health comes from the primary; 'control': health checks and admin only, no listeners. */
  role?: 'single' | 'worker' | 'control';
}

const HOUSEKEEPING_MS = 250;

/**
 * The load balancer's running state built from a validated config snapshot: target groups (with their
 * health and load, kept across reloads) and listeners. `apply()` swaps in a new snapshot: rules are
 * replaced atomically per listener, groups are reconfigured in place, removed targets drain.
 * Runtime changes from the admin API live in RuntimeState and are laid over every snapshot.
 */
export class LbRuntime {
  readonly groups = new Map<string, GroupRuntime>();
  readonly listeners = new Map<string, HttpListener>();
  readonly tcpListeners = new Map<string, TcpListener>();
  private readonly certificates = new Map<string, CertificateStore>();
  readonly addresses = new Map<string, AddressInfo>();
  readonly state: RuntimeState;
  config: ScaleoutConfig | undefined;
  private readonly codec: StickyCookieCodec;
  private readonly retryBudget = new RetryBudget();
  private housekeeping: NodeJS.Timeout | undefined;
  /** Told about every admin change after it is applied (the cluster primary forwards them). */
  onAdminChange: ((change: AdminChange) => void) | undefined;

  constructor(private readonly options: LbRuntimeOptions) {
    this.state = new RuntimeState(options.stateFile, options.log);
    this.codec = new StickyCookieCodec(options.stickySecret ?? randomBytes(32));
  }

  /** Applies a config snapshot (the first one starts everything). Listener start errors are thrown. */
  async apply(config: ScaleoutConfig): Promise<void> {
    const previous = this.config;
    this.config = config;
    this.applyGroups(config);
    if (this.options.role !== 'control') await this.applyListeners(config, previous);
    this.housekeeping ??= setInterval(() => this.tick(), HOUSEKEEPING_MS);
    this.housekeeping.unref();
  }

  private applyGroups(config: ScaleoutConfig): void {
    for (const [name, settings] of Object.entries(config.targetGroups)) {
      const overlay = this.state.group(name);
      let rt = this.groups.get(name);
      if (!rt) {
        rt = new GroupRuntime(
          name,
          { ...settings, targets: [] },
          this.codec,
          this.options.log,
          this.options.role === 'worker',
        );
        rt.onTargetRemoved = (target) => {
          this.forgetTarget(target);
          this.cutTcp(target);
        };
        this.groups.set(name, rt);
      }
      rt.reconfigure(settings, overlay.registered, new Set(overlay.deregistered));
      for (const id of overlay.disabled) rt.setDisabled(id, true);
      for (const [id, weight] of Object.entries(overlay.weights)) rt.setWeight(id, weight);
    }
    for (const [name, rt] of this.groups) {
      if (config.targetGroups[name]) continue;
      // A group no longer configured: drain its targets, then stop it.
      for (const t of rt.group.list()) rt.deregister(t.id);
      rt.stop();
      this.groups.delete(name);
    }
  }

  private async applyListeners(config: ScaleoutConfig, previous: ScaleoutConfig | undefined): Promise<void> {
    for (const [name, settings] of Object.entries(config.listeners)) {
      const before = previous?.listeners[name];
      const sameSocket = before !== undefined && sameAddress(before, settings);
      if (settings.protocol === 'tcp' || settings.protocol === 'tls') {
        await this.applyTcpListener(
          name,
          settings,
          sameSocket && JSON.stringify(before) === JSON.stringify(settings),
        );
        continue;
      }
      const router = new Router(settings.rules, compileAction(settings.defaultAction));
      const existing = this.listeners.get(name);
      const options = this.httpListenerOptions(name, settings, router);
      if (existing && sameSocket) {
        // Same address and protocol: swap rules and settings in place, without touching the socket.
        existing.reconfigure(options);
        if (settings.protocol === 'https') this.certificates.get(name)?.update(settings.certificates);
        continue;
      }
      if (existing) {
        // A new address: start the new listener, then retire the old one gracefully.
        this.listeners.delete(name);
        void existing.close(this.options.drainTimeoutMs);
      }
      const listener = new HttpListener(options);
      const address = await listener.listen();
      this.listeners.set(name, listener);
      this.addresses.set(name, address);
    }
    for (const [name, listener] of this.listeners) {
      const now = config.listeners[name];
      if (now && (now.protocol === 'http' || now.protocol === 'https')) continue;
      this.listeners.delete(name);
      this.addresses.delete(name);
      this.certificates.get(name)?.close();
      this.certificates.delete(name);
      void listener.close(this.options.drainTimeoutMs);
    }
    for (const [name, listener] of this.tcpListeners) {
      const now = config.listeners[name];
      if (now && (now.protocol === 'tcp' || now.protocol === 'tls')) continue;
      this.tcpListeners.delete(name);
      this.addresses.delete(name);
      void listener.close(this.options.drainTimeoutMs);
    }
  }

  private httpListenerOptions(name: string, settings: ListenerSettings, router: Router): HttpListenerOptions {
    let tlsOptions: HttpListenerOptions['tls'];
    if (settings.protocol === 'https') {
      let store = this.certificates.get(name);
      if (!store) {
        store = new CertificateStore(settings.certificates, this.options.log);
        this.certificates.set(name, store);
      }
      tlsOptions = { certificates: store, http2: settings.http2 };
    }
    return {
      name,
      host: settings.listen.host,
      port: settings.listen.port,
      router,
      groups: this.groups,
      retryBudget: this.retryBudget,
      upstream: {
        connectTimeoutMs: settings.timeouts.connect,
        idleTimeoutMs: settings.timeouts.upstreamIdle,
        responseTimeoutMs: settings.timeouts.response,
        maxIdlePerTarget: 256,
        limits: { maxHeaderBytes: 64 * 1024, maxHeaderCount: 200 },
      },
      limits: { maxHeaderBytes: settings.limits.maxHeaderBytes, maxHeaderCount: settings.limits.maxHeaders },
      timeouts: { headerMs: settings.timeouts.header, idleMs: settings.timeouts.clientIdle },
      maxAttempts: settings.maxAttempts,
      trustedProxies: settings.trustedProxies,
      log: this.options.log,
      onRequest: this.options.onRequest ? (record) => this.options.onRequest!(name, record) : undefined,
      tls: tlsOptions,
    };
  }

  /** tcp and tls listeners (NLB): byte streams to the one target group of the default action. */
  private async applyTcpListener(
    name: string,
    settings: ListenerSettings,
    unchanged: boolean,
  ): Promise<void> {
    const existing = this.tcpListeners.get(name);
    if (existing && unchanged) return;
    const groupName = settings.defaultAction.forward![0]!.name;
    const rt = this.groups.get(groupName)!;
    let createServer: TcpServerFactory | undefined;
    if (settings.protocol === 'tls') {
      const store = new CertificateStore(settings.certificates, this.options.log);
      createServer = (onConnection) => {
        const server = tls.createServer(
          { SNICallback: store.sniCallback, allowHalfOpen: true, ...store.defaultPem() },
          onConnection,
        );
        store.onReload = () => server.setSecureContext(store.defaultPem());
        return server;
      };
    }
    if (existing) {
      this.tcpListeners.delete(name);
      await existing.close(this.options.drainTimeoutMs);
    }
    const listener = new TcpListener({
      host: settings.listen.host,
      port: settings.listen.port,
      group: rt.group,
      passive: rt.passive,
      connectTimeoutMs: settings.timeouts.connect,
      idleTimeoutMs: Math.max(settings.timeouts.clientIdle, 1),
      maxAttempts: settings.maxAttempts,
      proxyProtocol: settings.proxyProtocol,
      createServer,
      log: this.options.log,
    });
    const address = await listener.listen();
    this.tcpListeners.set(name, listener);
    this.addresses.set(name, address);
  }

  private tick(): void {
    const now = Date.now();
    for (const rt of this.groups.values()) rt.tick(now);
  }

  private forgetTarget(target: Target): void {
    for (const listener of this.listeners.values()) listener.dropTarget(target);
  }

  /** Called when a target leaves its group: TCP connections still open to it are cut. */
  private cutTcp(target: Target): void {
    for (const listener of this.tcpListeners.values()) listener.cutTarget(target.id);
  }

  // ---- admin operations: applied now and kept in the runtime state --------------------------------

  group(name: string): GroupRuntime | undefined {
    return this.groups.get(name);
  }

  register(groupName: string, spec: TargetSpec): Target {
    const rt = this.requireGroup(groupName);
    this.state.update(groupName, (g) => {
      g.registered = [...g.registered.filter((t) => t.id !== spec.id), spec];
      g.deregistered = g.deregistered.filter((id) => id !== spec.id);
    });
    const target = rt.register(spec);
    this.onAdminChange?.({ op: 'register', group: groupName, spec });
    return target;
  }

  deregister(groupName: string, id: string): void {
    const rt = this.requireGroup(groupName);
    const target = rt.group.get(id);
    if (!target) throw new NotFoundError(`target group ${groupName} has no target ${id}`);
    this.state.update(groupName, (g) => {
      g.registered = g.registered.filter((t) => t.id !== id);
      if (!g.deregistered.includes(id)) g.deregistered.push(id);
    });
    rt.deregister(id);
    // Idle keep-alive connections to it close now; busy ones after their response.
    if (rt.group.get(id) === target) this.forgetTarget(target);
    this.onAdminChange?.({ op: 'deregister', group: groupName, id });
  }

  setDisabled(groupName: string, id: string, disabled: boolean): void {
    const rt = this.requireGroup(groupName);
    if (!rt.setDisabled(id, disabled))
      throw new NotFoundError(`target group ${groupName} has no target ${id}`);
    this.state.update(groupName, (g) => {
      g.disabled = g.disabled.filter((d) => d !== id);
      if (disabled) g.disabled.push(id);
    });
    this.onAdminChange?.({ op: 'disable', group: groupName, id, disabled });
  }

  setWeight(groupName: string, id: string, weight: number): void {
    const rt = this.requireGroup(groupName);
    if (!rt.setWeight(id, weight)) throw new NotFoundError(`target group ${groupName} has no target ${id}`);
    this.state.update(groupName, (g) => {
      g.weights[id] = weight;
    });
    this.onAdminChange?.({ op: 'weight', group: groupName, id, weight });
  }

  private requireGroup(name: string): GroupRuntime {
    const rt = this.groups.get(name);
    if (!rt) throw new NotFoundError(`no target group named ${name}`);
    return rt;
  }

  async stop(): Promise<void> {
    if (this.housekeeping) clearInterval(this.housekeeping);
    this.housekeeping = undefined;
    for (const rt of this.groups.values()) rt.stop();
    await Promise.all([
      ...[...this.listeners.values()].map((l) => l.close(this.options.drainTimeoutMs)),
      ...[...this.tcpListeners.values()].map((l) => l.close(this.options.drainTimeoutMs)),
    ]);
    for (const store of this.certificates.values()) store.close();
    this.listeners.clear();
    this.tcpListeners.clear();
  }
}

export class NotFoundError extends Error {}

/** A runtime change made through the admin API, as the primary forwards it to worker processes. */
export type AdminChange =
  | { op: 'register'; group: string; spec: TargetSpec }
  | { op: 'deregister'; group: string; id: string }
  | { op: 'disable'; group: string; id: string; disabled: boolean }
  | { op: 'weight'; group: string; id: string; weight: number };

/** Same address and protocol: the listening socket can stay, and only settings change. */
function sameAddress(a: ListenerSettings, b: ListenerSettings): boolean {
  return a.protocol === b.protocol && a.listen.host === b.listen.host && a.listen.port === b.listen.port;
}
