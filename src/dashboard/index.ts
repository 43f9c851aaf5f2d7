// The live dashboard: `startDashboard` polls the topology's admin endpoints and serves the page.
import { silentLogger, type Logger } from '../core/log.js';
import { parseHostPort } from '../core/types.js';
import { isLoopbackHost } from '../admin/http.js';
import { Collector } from './collector.js';
import type { ControlPlane } from './control-plane.js';
import { DashboardServer } from './server.js';

export type {
  ComponentInfo,
  ComponentKind,
  ComponentStatus,
  ControlPlane,
  TopologySnapshot,
} from './control-plane.js';
export type { DashboardState } from './collector.js';
export { RemoteControlPlane, type RemoteComponents } from './remote.js';

export interface DashboardOptions {
  /** 'host:port' (port 0 picks a free one). Beyond loopback a token is required. */
  listen: string;
  /** When set, every /api/ call needs "Authorization: Bearer <token>" (on loopback too). */
  token?: string;
  control: ControlPlane;
  logger?: Logger;
  /** Poll interval (default 1000 ms). */
  intervalMs?: number;
  /** Ticks of history kept (default 600). */
  historyTicks?: number;
}

export interface Dashboard {
  /** The page's URL, e.g. http://127.0.0.1:9090/ */
  url: string;
  collector: Collector;
  close(): Promise<void>;
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const log = options.logger ?? silentLogger;
  const { host, port } = parseHostPort(options.listen);
  if (options.token !== undefined && options.token.length < 16)
    throw new Error('dashboard token: use at least 16 characters');
  if (!isLoopbackHost(host) && options.token === undefined)
    throw new Error(`the dashboard listens beyond loopback (${host}): a token is required (--token)`);
  const collector = new Collector({
    control: options.control,
    intervalMs: options.intervalMs,
    historyTicks: options.historyTicks,
    logger: log,
  });
  const server = new DashboardServer({ collector, control: options.control, token: options.token, log });
  let url: string;
  try {
    url = await server.listen(host, port);
  } catch (err) {
    await collector.stop();
    throw new Error(`dashboard: cannot listen on ${options.listen}: ${(err as Error).message}`);
  }
  collector.start();
  log.info({ url, token: options.token ? 'required' : 'none (loopback only)' }, `dashboard on ${url}`);
  return {
    url,
    collector,
    async close() {
      await server.close();
      await collector.stop();
    },
  };
}
