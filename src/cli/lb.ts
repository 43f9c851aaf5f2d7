import { InvalidArgumentError, Option, type Command } from 'commander';
import { ALGORITHMS, isAlgorithmName } from '../balancing/index.js';
import { createLogger } from '../core/log.js';
import { formatHostPort, parseHostPort, type TargetSpec } from '../core/types.js';
import { DEFAULT_HEALTH_CHECK } from '../health/active.js';
import { parseSuccessCodes } from '../health/matcher.js';
import type { HashOn } from '../lb/http/listener.js';
import { DEFAULT_LB_OPTIONS, LoadBalancer, type LoadBalancerOptions } from '../lb/load-balancer.js';
import { collect, duration, hostPort, integer } from './options.js';

/** "host:port" or "host:port=weight". */
function targetSpec(value: string, previous: TargetSpec[] = []): TargetSpec[] {
  const [addr, weightText] = value.split('=');
  let hp: { host: string; port: number };
  try {
    hp = parseHostPort(addr!);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  const weight = weightText === undefined ? 1 : Number(weightText);
  if (!Number.isFinite(weight) || weight <= 0 || weight > 1000) {
    throw new InvalidArgumentError(`weight in "${value}" must be a number from 1 to 1000`);
  }
  return [...previous, { id: formatHostPort(hp.host, hp.port), ...hp, weight }];
}

function hashOn(value: string): HashOn {
  if (value === 'source-ip' || value === 'ip') return { kind: 'source-ip' };
  const m = /^(header|cookie):(.+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected source-ip, header:NAME or cookie:NAME');
  return m[1] === 'header' ? { kind: 'header', name: m[2]! } : { kind: 'cookie', name: m[2]! };
}

interface LbFlags {
  listen: { host: string; port: number };
  target?: TargetSpec[];
  algorithm: string;
  hashOn: HashOn;
  healthCheck: boolean;
  healthPath: string;
  healthProtocol: 'http' | 'tcp';
  healthPort?: number;
  healthInterval: number;
  healthTimeout: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  successCodes: string;
  connectTimeout: number;
  responseTimeout: number;
  clientIdleTimeout: number;
  headerTimeout: number;
  upstreamIdleTimeout: number;
  maxHeaderBytes: number;
  maxHeaders: number;
  maxAttempts: number;
  trustedProxy?: string[];
  drainTimeout: number;
}

export function registerLb(program: Command): void {
  const d = DEFAULT_LB_OPTIONS;
  program
    .command('lb')
    .description('run the HTTP load balancer')
    .option('--listen <host:port>', 'address to accept clients on', hostPort, { host: d.host, port: d.port })
    .option('--target <host:port[=weight]>', 'a target (repeat for each)', targetSpec)
    .addOption(
      new Option('--algorithm <name>', 'balancing algorithm').choices([...ALGORITHMS]).default(d.algorithm),
    )
    .option(
      '--hash-on <source>',
      'key for ring-hash/maglev: source-ip, header:NAME or cookie:NAME',
      hashOn,
      d.hashOn,
    )
    .option('--no-health-check', 'disable active health checks (passive checks still run)')
    .option('--health-path <path>', 'HTTP health-check path', DEFAULT_HEALTH_CHECK.path)
    .addOption(
      new Option('--health-protocol <p>', 'health-check protocol').choices(['http', 'tcp']).default('http'),
    )
    .option('--health-port <port>', 'port to probe instead of the target port', integer(1, 65535))
    .option('--health-interval <duration>', 'time between checks', duration, DEFAULT_HEALTH_CHECK.intervalMs)
    .option('--health-timeout <duration>', 'check timeout', duration, DEFAULT_HEALTH_CHECK.timeoutMs)
    .option(
      '--healthy-threshold <n>',
      'passes that make a target healthy',
      integer(1, 10),
      DEFAULT_HEALTH_CHECK.healthyThreshold,
    )
    .option(
      '--unhealthy-threshold <n>',
      'failures that make a target unhealthy',
      integer(1, 10),
      DEFAULT_HEALTH_CHECK.unhealthyThreshold,
    )
    .option(
      '--success-codes <codes>',
      'HTTP codes that pass a check, e.g. 200-399',
      DEFAULT_HEALTH_CHECK.successCodes,
    )
    .option(
      '--connect-timeout <duration>',
      'upstream connect timeout (then 504)',
      duration,
      d.upstream.connectTimeoutMs,
    )
    .option(
      '--response-timeout <duration>',
      'wait for target response bytes (then 504)',
      duration,
      d.upstream.responseTimeoutMs,
    )
    .option(
      '--client-idle-timeout <duration>',
      'close idle client keep-alive connections after',
      duration,
      d.timeouts.idleMs,
    )
    .option(
      '--header-timeout <duration>',
      'a request head must arrive within (then 408)',
      duration,
      d.timeouts.headerMs,
    )
    .option(
      '--upstream-idle-timeout <duration>',
      "close idle target connections after (keep below the targets' keep-alive)",
      duration,
      d.upstream.idleTimeoutMs,
    )
    .option(
      '--max-header-bytes <n>',
      'request head size limit (then 431)',
      integer(1024, 1 << 20),
      d.limits.maxHeaderBytes,
    )
    .option(
      '--max-headers <n>',
      'request header count limit (then 431)',
      integer(1, 1000),
      d.limits.maxHeaderCount,
    )
    .option('--max-attempts <n>', 'tries per request, first included', integer(1, 10), d.maxAttempts)
    .option('--trusted-proxy <ip|cidr>', 'peer whose X-Forwarded-* headers are kept (repeat)', collect)
    .option(
      '--drain-timeout <duration>',
      'on SIGTERM, wait this long for in-flight requests',
      duration,
      d.drainTimeoutMs,
    )
    .action(async (flags: LbFlags) => {
      if (!flags.target || flags.target.length === 0) throw new Error('at least one --target is required');
      if (!isAlgorithmName(flags.algorithm)) throw new Error(`unknown algorithm ${flags.algorithm}`);
      parseSuccessCodes(flags.successCodes);
      const log = createLogger('scaleout-lb');
      const options: LoadBalancerOptions = {
        ...d,
        host: flags.listen.host,
        port: flags.listen.port,
        targets: flags.target,
        algorithm: flags.algorithm,
        hashOn: flags.hashOn,
        healthCheck: flags.healthCheck
          ? {
              protocol: flags.healthProtocol,
              path: flags.healthPath,
              port: flags.healthPort,
              intervalMs: flags.healthInterval,
              timeoutMs: flags.healthTimeout,
              healthyThreshold: flags.healthyThreshold,
              unhealthyThreshold: flags.unhealthyThreshold,
              successCodes: flags.successCodes,
            }
          : false,
        upstream: {
          ...d.upstream,
          connectTimeoutMs: flags.connectTimeout,
          responseTimeoutMs: flags.responseTimeout,
          idleTimeoutMs: flags.upstreamIdleTimeout,
        },
        limits: { maxHeaderBytes: flags.maxHeaderBytes, maxHeaderCount: flags.maxHeaders },
        timeouts: { headerMs: flags.headerTimeout, idleMs: flags.clientIdleTimeout },
        maxAttempts: flags.maxAttempts,
        trustedProxies: flags.trustedProxy ?? [],
        drainTimeoutMs: flags.drainTimeout,
        log,
      };
      await runLoadBalancer(options);
    });
}

/** Starts the LB, prints what listens where and the targets' health, and stops cleanly on SIGTERM/SIGINT. */
export async function runLoadBalancer(options: LoadBalancerOptions): Promise<LoadBalancer> {
  const lb = new LoadBalancer(options);
  const address = await lb.start();
  const url = `http://${formatHostPort(address.address, address.port)}/`;
  console.log(
    `scaleout lb listening on ${url} (algorithm ${options.algorithm}, ${options.targets.length} targets)`,
  );
  if (options.healthCheck) {
    // Long enough for a dead target to fail its threshold of checks, so the list below is a verdict.
    const hc = options.healthCheck;
    await lb.firstHealthVerdict((hc.unhealthyThreshold - 1) * hc.intervalMs + hc.timeoutMs + 200);
  }
  for (const t of lb.group.list()) {
    console.log(
      `  target ${t.id.padEnd(22)} weight ${String(t.configuredWeight).padEnd(4)} ${t.state} (${t.reason})`,
    );
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    options.log.info(
      { signal },
      `${signal}: draining in-flight requests (up to ${options.drainTimeoutMs} ms)`,
    );
    await lb.stop();
    options.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return lb;
}
