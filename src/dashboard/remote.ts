// A ControlPlane over components that run elsewhere (`scaleout dashboard --lb URL …`): it lists them
// so the collector can poll their admin endpoints, and it cannot start, stop or scale processes.
import type { ComponentInfo, ControlPlane, TopologySnapshot } from './control-plane.js';

export interface RemoteComponents {
  name?: string;
  lb?: string[];
  dns?: string[];
  dbProxy?: string[];
  /** Token for the admin endpoints (the LB admin API's, when it has one). */
  adminToken?: string;
}

/** "host:port" or a URL → a base URL without a trailing slash. */
export function adminBaseUrl(value: string): string {
  const withScheme = /^https?:\/\//i.test(value) ? value : `http://${value}`;
  try {
    return new URL(withScheme).toString().replace(/\/+$/, '');
  } catch {
    throw new Error(`"${value}" is not an admin URL or host:port`);
  }
}

export class RemoteControlPlane implements ControlPlane {
  readonly canControl = false;
  private readonly components: ComponentInfo[];
  private readonly name: string;

  constructor(remote: RemoteComponents) {
    const since = Date.now();
    const make = (kind: ComponentInfo['kind'], urls: string[] | undefined, base: string): ComponentInfo[] =>
      (urls ?? []).map((u, i) => ({
        name: urls!.length > 1 ? `${base}-${i + 1}` : base,
        kind,
        status: 'running',
        adminUrl: adminBaseUrl(u),
        ...(remote.adminToken ? { adminToken: remote.adminToken } : {}),
        restarts: 0,
        since,
      }));
    this.components = [
      ...make('dns', remote.dns, 'dns'),
      ...make('lb', remote.lb, 'lb'),
      ...make('db-proxy', remote.dbProxy, 'db-proxy'),
    ];
    this.name = remote.name ?? 'remote components';
  }

  snapshot(): TopologySnapshot {
    return { name: this.name, components: this.components };
  }

  private refuse(): Promise<never> {
    return Promise.reject(new Error('this dashboard watches remote components and cannot control processes'));
  }

  scale(): Promise<void> {
    return this.refuse();
  }

  kill(): Promise<void> {
    return this.refuse();
  }

  restart(): Promise<void> {
    return this.refuse();
  }
}
