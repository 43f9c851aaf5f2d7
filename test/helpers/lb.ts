// Starts the load balancer in-process on an ephemeral loopback port, with fast health checks.
import type { AlgorithmName } from '../../src/balancing/types.js';
import { silentLogger } from '../../src/core/log.js';
import { DEFAULT_LB_OPTIONS, LoadBalancer, type LoadBalancerOptions } from '../../src/lb/load-balancer.js';
import type { TestTarget } from './http-targets.js';

export interface TestLb {
  lb: LoadBalancer;
  url: string;
  port: number;
  stop(): Promise<void>;
}

export const FAST_HEALTH = {
  protocol: 'http' as const,
  path: '/healthz',
  intervalMs: 200,
  timeoutMs: 300,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  successCodes: '200-399',
};

export async function startLb(
  targets: TestTarget[],
  overrides: Partial<LoadBalancerOptions> & { algorithm?: AlgorithmName } = {},
): Promise<TestLb> {
  const lb = new LoadBalancer({
    ...DEFAULT_LB_OPTIONS,
    host: '127.0.0.1',
    port: 0,
    targets: targets.map((t) => ({ id: t.id, host: '127.0.0.1', port: t.port, weight: 1 })),
    healthCheck: FAST_HEALTH,
    drainTimeoutMs: 2000,
    log: silentLogger,
    ...overrides,
  });
  const address = await lb.start();
  await lb.firstHealthVerdict(2000);
  return {
    lb,
    port: address.port,
    url: `http://127.0.0.1:${address.port}`,
    stop: () => lb.stop(),
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
