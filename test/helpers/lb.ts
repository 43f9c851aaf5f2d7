// Starts the load balancer in-process on an ephemeral loopback port, with fast health checks.
import { silentLogger } from '../../src/core/log.js';
import type { TargetSpec } from '../../src/core/types.js';
import type { ScaleoutConfig } from '../../src/config/schema.js';
import { quickStartConfig } from '../../src/lb/quick-start.js';
import { LbRuntime } from '../../src/lb/runtime.js';
import type { TargetGroup } from '../../src/registry/target-group.js';
import type { TestTarget } from './http-targets.js';

export interface TestLb {
  runtime: LbRuntime;
  /** The "default" target group of a quick-start config. */
  group: TargetGroup;
  url: string;
  port: number;
  stop(): Promise<void>;
}

export const FAST_HEALTH = {
  path: '/healthz',
  interval: 200,
  timeout: 150,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
};

export interface TestLbOptions {
  /** Raw `targetGroups.default` settings (merged over fast health checks). */
  targetGroup?: Record<string, unknown>;
  /** Raw `listeners.default` settings. */
  listener?: Record<string, unknown>;
  /** Targets with weights, instead of one per test target at weight 1. */
  targets?: TargetSpec[];
  /** A full config instead of the quick start. */
  config?: ScaleoutConfig;
  stateFile?: string;
}

export async function startLb(targets: TestTarget[], options: TestLbOptions = {}): Promise<TestLb> {
  const config =
    options.config ??
    quickStartConfig({
      listen: { host: '127.0.0.1', port: 0 },
      targets:
        options.targets ?? targets.map((t) => ({ id: t.id, host: '127.0.0.1', port: t.port, weight: 1 })),
      targetGroup: {
        ...options.targetGroup,
        healthCheck: { ...FAST_HEALTH, ...(options.targetGroup?.healthCheck as object) },
      },
      listener: options.listener,
    });
  const runtime = new LbRuntime({ log: silentLogger, drainTimeoutMs: 2000, stateFile: options.stateFile });
  await runtime.apply(config);
  const first = runtime.groups.values().next().value!;
  const deadline = Date.now() + 2000;
  while (
    Date.now() < deadline &&
    [...runtime.groups.values()].some((g) => g.group.list().some((t) => t.state === 'initial'))
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = runtime.addresses.values().next().value!.port;
  return {
    runtime,
    group: (runtime.groups.get('default') ?? first).group,
    port,
    url: `http://127.0.0.1:${port}`,
    stop: () => runtime.stop(),
  };
}

/** Polls until `predicate` holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return predicate();
}
