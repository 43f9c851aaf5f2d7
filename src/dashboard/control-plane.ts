// The contract between whoever owns the processes of a topology (`scaleout up`, or a static list of
// remote components for `scaleout dashboard`) and the dashboard that shows them and acts on them.

export type ComponentKind = 'app' | 'lb' | 'dns' | 'db-proxy' | 'postgres';
export type ComponentStatus = 'starting' | 'running' | 'stopping' | 'stopped' | 'crashed';

export interface ComponentInfo {
  /** Unique within the topology: 'app-1', 'lb-1', 'dns', 'db-proxy', 'pg-s0-primary', 'pg-s0-replica1'. */
  name: string;
  kind: ComponentKind;
  status: ComponentStatus;
  /** host:port where it serves its clients. */
  address?: string;
  pid?: number;
  /** postgres: 'primary' or 'replica'. */
  role?: string;
  /** postgres: the shard this server belongs to (0 when not sharded). */
  shard?: number;
  /** Base URL of its HTTP admin endpoint (LB admin API, DNS admin, db-proxy admin), if it has one. */
  adminUrl?: string;
  /** Admin token for adminUrl, when the endpoint needs one. */
  adminToken?: string;
  restarts: number;
  /** When the status last changed (ms since the epoch). */
  since: number;
}

export interface TopologySnapshot {
  /** Preset or file the topology came from, for the page title. */
  name: string;
  components: ComponentInfo[];
}

/** How many app instances a topology may have: at least one serves, and 64 is plenty for one host. */
export const APP_INSTANCES = { min: 1, max: 64 } as const;

export interface ControlPlane {
  /** Cheap: the dashboard calls it every second. */
  snapshot(): TopologySnapshot;
  /** Whether scale/kill/restart are possible (false for a dashboard over remote components). */
  readonly canControl: boolean;
  /** Sets the number of app instances; new ones register with the LB and slow-start, removed ones drain first. */
  scale(tier: 'app', count: number): Promise<void>;
  /** Chaos: SIGKILL a component by name. Rejects with an Error naming the component if it does not exist. */
  kill(name: string): Promise<void>;
  /** Starts a stopped or crashed component again (same address, same data). */
  restart(name: string): Promise<void>;
}
