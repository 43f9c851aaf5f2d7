// The load balancer's control plane in one object: the admin API server, the Prometheus metrics it
// serves and the JSON access log. `scaleout lb` creates one per process (see docs/admin-api.md).
import type { AdminSettings } from '../config/lb-schema.js';
import type { ScaleoutConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { openAccessLog, type AccessLog, type AccessLogTarget } from '../lb/access-log.js';
import type { RequestRecord } from '../lb/http/session.js';
import { LbMetrics } from '../lb/metrics.js';
import type { LbRuntime } from '../lb/runtime.js';
import { AdminHttpServer, isLoopbackHost } from './http.js';
import { registerLbRoutes } from './lb-api.js';

export { AdminHttpServer, ApiError, isLoopbackHost } from './http.js';

export class AdminConfigError extends Error {}

export interface LbAdminOptions {
  log: Logger;
  /** The config file `POST /api/v1/reload` re-reads (none: reload answers 409). */
  configPath?: string;
  /** Access log: true = stdout (the default), false = off, a string = a file path. */
  accessLog?: AccessLogTarget;
  /** Process metrics (CPU, memory, event loop) on /metrics; default true. */
  processMetrics?: boolean;
}

/** Refuses an admin API that would listen beyond loopback without a token. */
export function checkAdminSettings(admin: Pick<AdminSettings, 'listen' | 'token'>): void {
  if (!isLoopbackHost(admin.listen.host) && !admin.token) {
    throw new AdminConfigError(
      `the admin API would listen on ${admin.listen.host}, beyond loopback, without a token: ` +
        'set admin.token (at least 16 characters; ${env:NAME} keeps it out of the file) or listen on 127.0.0.1',
    );
  }
}

/**
 * Usage (in runLoadBalancer):
 *   const admin = new LbAdmin(config, { log, configPath, accessLog });
 *   const runtime = new LbRuntime({ …, onRequest: admin.onRequest });
 *   await runtime.apply(config);
 *   const url = await admin.start(runtime);   // undefined when the config has no `admin` section
 *   …and on shutdown: await admin.close();
 */
export class LbAdmin {
  /** Metrics are kept only when something can serve them (an `admin` section). */
  readonly metrics: LbMetrics | undefined;
  readonly accessLog: AccessLog | undefined;
  /** The per-request hook for LbRuntimeOptions.onRequest; undefined when nothing wants requests. */
  readonly onRequest: ((listener: string, record: RequestRecord) => void) | undefined;
  private server: AdminHttpServer | undefined;
  private readonly settings: AdminSettings | undefined;

  constructor(
    config: ScaleoutConfig,
    private readonly options: LbAdminOptions,
  ) {
    this.settings = config.admin;
    if (this.settings) checkAdminSettings(this.settings);
    if (this.settings) this.metrics = new LbMetrics({ processMetrics: options.processMetrics });
    this.accessLog = openAccessLog(options.accessLog ?? true, options.log);
    const m = this.metrics?.onRequest;
    const a = this.accessLog?.onRequest;
    this.onRequest =
      m && a
        ? (listener, record) => {
            m(listener, record);
            a(listener, record);
          }
        : (m ?? a);
  }

  /** Starts the admin API (when configured); resolves with its base URL. */
  async start(runtime: LbRuntime): Promise<string | undefined> {
    const settings = this.settings;
    if (!settings) return undefined;
    this.metrics?.attach(runtime);
    const server = new AdminHttpServer(this.options.log, settings.token);
    registerLbRoutes(server, runtime, {
      log: this.options.log,
      metrics: this.metrics,
      configPath: this.options.configPath,
      stateFile: settings.stateFile,
    });
    let url: string;
    try {
      url = await server.listen(settings.listen.host, settings.listen.port);
    } catch (err) {
      throw new Error(
        `the admin API cannot listen on ${settings.listen.host}:${settings.listen.port}: ${(err as Error).message}`,
      );
    }
    this.server = server;
    this.options.log.info(
      { admin: url, token: settings.token ? 'required' : 'none (loopback only)' },
      `admin API listening on ${url}`,
    );
    return url;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
    this.metrics?.close();
    await this.accessLog?.close();
  }
}
