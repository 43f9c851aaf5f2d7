// A stand-alone TCP load balancer for manual tests and ad-hoc benchmarks, until `scaleout lb` wires
// tcp listeners from its config. Not a test file (the runner only picks up *.test.ts).
//
//   node --import tsx test/integration/lb-tcp/standalone.ts --listen 127.0.0.1:7000 \
//     --target 127.0.0.1:9001 --target 127.0.0.1:9002 [--algorithm maglev] [--proxy-protocol v2] \
//     [--health tcp|http] [--health-port 8081] [--health-path /healthz]
//
// SIGTERM/SIGINT drain for 2 s, then exit.
import { parseArgs } from 'node:util';
import { createBalancer, isAlgorithmName } from '../../../src/balancing/index.js';
import { createLogger } from '../../../src/core/log.js';
import { formatHostPort, parseHostPort } from '../../../src/core/types.js';
import { ActiveHealthChecker, DEFAULT_HEALTH_CHECK } from '../../../src/health/active.js';
import { DEFAULT_PASSIVE_HEALTH, PassiveHealth } from '../../../src/health/passive.js';
import type { Target } from '../../../src/registry/target.js';
import { TargetGroup } from '../../../src/registry/target-group.js';
import { TcpListener } from '../../../src/lb/tcp/index.js';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:7000' },
    target: { type: 'string', multiple: true, default: [] },
    algorithm: { type: 'string', default: 'round-robin' },
    'proxy-protocol': { type: 'string' },
    health: { type: 'string' },
    'health-port': { type: 'string' },
    'health-path': { type: 'string', default: '/' },
    'connect-timeout': { type: 'string', default: '3000' },
    'idle-timeout': { type: 'string', default: '350000' },
  },
});

const log = createLogger('lb-tcp');
try {
  if (!isAlgorithmName(values.algorithm)) throw new Error(`unknown algorithm "${values.algorithm}"`);
  const pp = values['proxy-protocol'];
  if (pp !== undefined && pp !== 'v1' && pp !== 'v2') throw new Error('--proxy-protocol must be v1 or v2');
  const health = values.health;
  if (health !== undefined && health !== 'tcp' && health !== 'http')
    throw new Error('--health must be tcp or http');
  const listen = parseHostPort(values.listen);
  const healthCheck = health
    ? {
        ...DEFAULT_HEALTH_CHECK,
        protocol: health as 'tcp' | 'http',
        path: values['health-path'],
        port: values['health-port'] ? Number(values['health-port']) : undefined,
      }
    : undefined;
  const group = new TargetGroup('default', createBalancer<Target>(values.algorithm), {
    healthyThreshold: healthCheck?.healthyThreshold ?? 1,
    unhealthyThreshold: healthCheck?.unhealthyThreshold ?? 1,
  });
  for (const text of values.target) {
    const hp = parseHostPort(text);
    const target = group.register({ id: formatHostPort(hp.host, hp.port), ...hp, weight: 1 });
    if (!healthCheck) target.health.force('healthy', 'Target.HealthCheckDisabled');
  }
  group.refresh();
  const checker = healthCheck ? new ActiveHealthChecker(group, healthCheck, log) : undefined;
  const listener = new TcpListener({
    ...listen,
    group,
    passive: new PassiveHealth(group, DEFAULT_PASSIVE_HEALTH),
    connectTimeoutMs: Number(values['connect-timeout']),
    idleTimeoutMs: Number(values['idle-timeout']),
    maxAttempts: 3,
    proxyProtocol: pp ?? false,
    log,
  });
  const address = await listener.listen();
  checker?.start();
  log.info({ listen: formatHostPort(address.address, address.port) }, 'tcp listener ready');
  const stop = async () => {
    checker?.stop();
    await listener.close(2000);
    log.info({ stats: listener.stats }, 'stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
} catch (err) {
  log.error((err as Error).message);
  process.exit(2);
}
