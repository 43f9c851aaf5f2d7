import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ALGORITHMS } from '../balancing/index.js';
import { ConfigError, readYamlConfig, validate } from '../config/load.js';
import { configSchema, type ScaleoutConfig } from '../config/schema.js';
import { createLogger, type Logger } from '../core/log.js';
import { formatHostPort, parseHostPort, type TargetSpec } from '../core/types.js';
import { parseSuccessCodes } from '../health/matcher.js';
import { quickStartConfig } from '../lb/quick-start.js';
import { availableParallelism } from 'node:os';
import { isLbWorker, LbPrimary, runLbWorker } from '../lb/cluster.js';
import { LbRuntime } from '../lb/runtime.js';
import { LbAdmin } from '../admin/index.js';
import { registerLbAdmin } from './lb-admin.js';
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
  if (!Number.isFinite(weight) || weight < 1 || weight > 1000) {
    throw new InvalidArgumentError(`weight in "${value}" must be a number from 1 to 1000`);
  }
  return [...previous, { id: formatHostPort(hp.host, hp.port), ...hp, weight }];
}

interface LbFlags {
  config?: string;
  listen?: { host: string; port: number };
  target?: TargetSpec[];
  algorithm?: string;
  hashOn?: string;
  healthCheck: boolean;
  healthPath?: string;
  healthProtocol?: 'http' | 'tcp';
  healthPort?: number;
  healthInterval?: number;
  healthTimeout?: number;
  healthyThreshold?: number;
  unhealthyThreshold?: number;
  successCodes?: string;
  connectTimeout?: number;
  responseTimeout?: number;
  clientIdleTimeout?: number;
  headerTimeout?: number;
  upstreamIdleTimeout?: number;
  maxHeaderBytes?: number;
  maxHeaders?: number;
  maxAttempts?: number;
  trustedProxy?: string[];
  drainTimeout: number;
  accessLog?: boolean | string;
  adminListen?: { host: string; port: number };
  workers?: number;
}

/** Drops undefined values so the schema's defaults apply. */
function defined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

function configFromFlags(flags: LbFlags): ScaleoutConfig {
  if (!flags.target || flags.target.length === 0)
    throw new Error('at least one --target is required (or --config FILE)');
  return quickStartConfig({
    admin: flags.adminListen
      ? { listen: formatHostPort(flags.adminListen.host, flags.adminListen.port) }
      : undefined,
    listen: flags.listen ?? { host: '127.0.0.1', port: 8080 },
    targets: flags.target,
    targetGroup: defined({
      algorithm: flags.algorithm,
      hashOn: flags.hashOn,
      healthCheck: defined({
        enabled: flags.healthCheck,
        protocol: flags.healthProtocol,
        path: flags.healthPath,
        port: flags.healthPort,
        interval: flags.healthInterval,
        timeout: flags.healthTimeout,
        healthyThreshold: flags.healthyThreshold,
        unhealthyThreshold: flags.unhealthyThreshold,
        successCodes: flags.successCodes,
      }),
    }),
    listener: defined({
      timeouts: defined({
        connect: flags.connectTimeout,
        response: flags.responseTimeout,
        clientIdle: flags.clientIdleTimeout,
        header: flags.headerTimeout,
        upstreamIdle: flags.upstreamIdleTimeout,
      }),
      limits: defined({ maxHeaderBytes: flags.maxHeaderBytes, maxHeaders: flags.maxHeaders }),
      maxAttempts: flags.maxAttempts,
      trustedProxies: flags.trustedProxy,
    }),
  });
}

/** Reads and validates a config file; throws ConfigError with file:line: key: problem lines. */
export function loadConfig(path: string): ScaleoutConfig {
  return validate(readYamlConfig(path), configSchema);
}

export function registerLb(program: Command): void {
  const lb = program
    .command('lb')
    .description('run the HTTP load balancer (quick start with --target, or --config FILE)')
    .option('--config <file>', 'scaleout YAML config file (listeners, rules, target groups)')
    .option('--listen <host:port>', 'address to accept clients on (default 127.0.0.1:8080)', hostPort)
    .option('--target <host:port[=weight]>', 'a target (repeat for each)', targetSpec)
    .addOption(
      new Option('--algorithm <name>', 'balancing algorithm (default weighted-round-robin)').choices([
        ...ALGORITHMS,
      ]),
    )
    .option(
      '--hash-on <source>',
      'key for ring-hash/maglev: source-ip, header:NAME or cookie:NAME',
      (v: string) => {
        if (!/^(source-ip|header:.+|cookie:.+)$/.test(v))
          throw new InvalidArgumentError('expected source-ip, header:NAME or cookie:NAME');
        return v;
      },
    )
    .option('--no-health-check', 'disable active health checks (passive checks still run)')
    .option('--health-path <path>', 'HTTP health-check path (default /)')
    .addOption(
      new Option('--health-protocol <p>', 'health-check protocol (default http)').choices(['http', 'tcp']),
    )
    .option('--health-port <port>', 'port to probe instead of the target port', integer(1, 65535))
    .option('--health-interval <duration>', 'time between checks (default 2s)', duration)
    .option('--health-timeout <duration>', 'check timeout (default 1s)', duration)
    .option(
      '--healthy-threshold <n>',
      'passes that make an unhealthy target healthy (default 2)',
      integer(1, 10),
    )
    .option('--unhealthy-threshold <n>', 'failures that make a target unhealthy (default 2)', integer(1, 10))
    .option('--success-codes <codes>', 'HTTP codes that pass a check (default 200-399)', (v: string) => {
      try {
        parseSuccessCodes(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
      return v;
    })
    .option('--connect-timeout <duration>', 'upstream connect timeout, then 504 (default 3s)', duration)
    .option(
      '--response-timeout <duration>',
      'wait for target response bytes, then 504 (default 60s)',
      duration,
    )
    .option(
      '--client-idle-timeout <duration>',
      'close idle client keep-alive connections (default 60s)',
      duration,
    )
    .option(
      '--header-timeout <duration>',
      'a request head must arrive within, then 408 (default 10s)',
      duration,
    )
    .option(
      '--upstream-idle-timeout <duration>',
      "close idle target connections; below the targets' keep-alive (default 4s)",
      duration,
    )
    .option(
      '--max-header-bytes <n>',
      'request head size limit, then 431 (default 16384)',
      integer(1024, 1 << 20),
    )
    .option('--max-headers <n>', 'request header count limit, then 431 (default 100)', integer(1, 1000))
    .option('--max-attempts <n>', 'tries per request, first included (default 3)', integer(1, 10))
    .option('--trusted-proxy <ip|cidr>', 'peer whose X-Forwarded-* headers are kept (repeat)', collect)
    .option(
      '--drain-timeout <duration>',
      'on SIGTERM, wait this long for in-flight requests',
      duration,
      30_000,
    )
    .option('--workers <n>', 'worker processes (default: the CPUs this process may use)', integer(1, 256))
    .option(
      '--access-log [file]',
      'write a JSON access log line per request, to stdout or FILE (off by default, as in ELB)',
    )
    .option(
      '--admin-listen <host:port>',
      'serve the admin API and /metrics here (loopback only without a config file)',
      hostPort,
    )
    .action(async (flags: LbFlags) => {
      if (isLbWorker()) {
        // A forked worker: config, health and admin changes come from the primary.
        runLbWorker(createLogger('scaleout-lb-worker'), flags.drainTimeout);
        return;
      }
      if (flags.config && flags.target) throw new Error('give either --config or --target, not both');
      let config: ScaleoutConfig;
      try {
        config = flags.config ? loadConfig(flags.config) : configFromFlags(flags);
      } catch (err) {
        if (err instanceof ConfigError) throw new Error(`invalid configuration:\n${err.message}`);
        if (err && typeof err === 'object' && 'issues' in err) {
          throw new Error(
            `invalid option: ${(err as { issues: Array<{ message: string }> }).issues.map((i) => i.message).join('; ')}`,
          );
        }
        throw err;
      }
      const workers = flags.workers ?? availableParallelism();
      const options = {
        configPath: flags.config,
        drainTimeoutMs: flags.drainTimeout,
        accessLog: flags.accessLog ?? config.accessLog,
      };
      if (workers > 1) await runLoadBalancerCluster(config, workers, options);
      else await runLoadBalancer(config, options);
    });
  registerLbAdmin(lb);
}

/** `--workers N`: a primary (health, admin, reloads) and N worker processes sharing the listeners. */
export async function runLoadBalancerCluster(
  config: ScaleoutConfig,
  workers: number,
  options: RunOptions,
): Promise<LbPrimary> {
  const log = options.log ?? createLogger('scaleout-lb');
  // Workers write their own access log; the primary serves the admin API and everyone's metrics.
  const admin = new LbAdmin(config, { log, configPath: options.configPath, accessLog: false });
  const primary = new LbPrimary(config, {
    workers,
    drainTimeoutMs: options.drainTimeoutMs,
    log,
    onWorkerMetrics: (id, snapshot) => admin.metrics?.mergeWorker(id, snapshot),
    accessLog: options.accessLog ?? config.accessLog,
  });
  await primary.start();
  const adminUrl = await admin.start(primary.runtime);
  if (adminUrl)
    console.log(`scaleout lb admin API on ${adminUrl}/api/v1/status, metrics on ${adminUrl}/metrics`);
  const ports = await primary.ready;
  for (const [name, port] of Object.entries(ports)) {
    const l = config.listeners[name]!;
    const url = `${l.protocol}://${formatHostPort(l.listen.host, port)}${l.protocol.startsWith('http') ? '/' : ''}`;
    console.log(
      `scaleout lb listening on ${url} (listener ${name}, ${l.rules.length} rules, ${workers} workers)`,
    );
  }
  await firstHealthVerdicts(primary.runtime, config);
  printTargets(primary.runtime);
  if (options.configPath) watchConfig(options.configPath, log, (c) => primary.reload(c));
  onStopSignals(log, options.drainTimeoutMs, async () => {
    await primary.stop();
    await admin.close();
  });
  return primary;
}

function printTargets(runtime: LbRuntime): void {
  for (const [name, rt] of runtime.groups) {
    console.log(`target group ${name} (${rt.settings.algorithm}):`);
    for (const t of rt.group.list()) {
      console.log(
        `  target ${t.id.padEnd(22)} weight ${String(t.configuredWeight).padEnd(4)} ${t.state} (${t.reason})`,
      );
    }
  }
}

/** SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to the drain timeout), exit 0. */
function onStopSignals(log: Logger, drainTimeoutMs: number, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${signal}: draining in-flight requests (up to ${drainTimeoutMs} ms)`);
    await stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void handler('SIGTERM'));
  process.on('SIGINT', () => void handler('SIGINT'));
}

export interface RunOptions {
  configPath?: string;
  drainTimeoutMs: number;
  log?: Logger;
  /** JSON access log: true = stdout, false = off, a string = a file. */
  accessLog?: boolean | string;
}

/** Starts the LB, prints what listens where and the targets' health, reloads on SIGHUP/file change. */
export async function runLoadBalancer(config: ScaleoutConfig, options: RunOptions): Promise<LbRuntime> {
  const log = options.log ?? createLogger('scaleout-lb');
  const admin = new LbAdmin(config, { log, configPath: options.configPath, accessLog: options.accessLog });
  const runtime = new LbRuntime({
    log,
    stateFile: config.admin?.stateFile,
    drainTimeoutMs: options.drainTimeoutMs,
    onRequest: admin.onRequest,
  });
  await runtime.apply(config);
  const adminUrl = await admin.start(runtime);
  if (adminUrl)
    console.log(`scaleout lb admin API on ${adminUrl}/api/v1/status, metrics on ${adminUrl}/metrics`);
  for (const [name, address] of runtime.addresses) {
    const l = config.listeners[name]!;
    const url = `${l.protocol}://${formatHostPort(address.address, address.port)}${l.protocol.startsWith('http') ? '/' : ''}`;
    console.log(`scaleout lb listening on ${url} (listener ${name}, ${l.rules.length} rules)`);
  }
  await firstHealthVerdicts(runtime, config);
  printTargets(runtime);
  if (options.configPath) watchConfig(options.configPath, log, (c) => runtime.apply(c));
  onStopSignals(log, options.drainTimeoutMs, async () => {
    await runtime.stop();
    await admin.close();
  });
  return runtime;
}

/** Waits until each target has a verdict, long enough for a dead one to fail its threshold of checks. */
async function firstHealthVerdicts(runtime: LbRuntime, config: ScaleoutConfig): Promise<void> {
  let waitMs = 0;
  for (const g of Object.values(config.targetGroups)) {
    const hc = g.healthCheck;
    if (hc.enabled) waitMs = Math.max(waitMs, (hc.unhealthyThreshold - 1) * hc.interval + hc.timeout + 200);
  }
  const deadline = Date.now() + waitMs;
  const pending = () =>
    [...runtime.groups.values()].some((rt) => rt.group.list().some((t) => t.state === 'initial'));
  while (Date.now() < deadline && pending()) await new Promise((r) => setTimeout(r, 25));
}

/** Reloads on SIGHUP and when the file changes; a bad file is refused and the old config keeps serving. */
function watchConfig(path: string, log: Logger, apply: (config: ScaleoutConfig) => Promise<void>): void {
  let timer: NodeJS.Timeout | undefined;
  const reload = async (why: string) => {
    let config: ScaleoutConfig;
    try {
      config = loadConfig(path);
    } catch (err) {
      log.error(
        { configFile: path, problems: (err as Error).message.split('\n') },
        `config reload (${why}) refused: the running config stays`,
      );
      return;
    }
    try {
      await apply(config);
      log.info({ configFile: path }, `config reloaded (${why})`);
    } catch (err) {
      log.error({ configFile: path, err: (err as Error).message }, `config reload (${why}) failed to apply`);
    }
  };
  process.on('SIGHUP', () => void reload('SIGHUP'));
  try {
    // Editors replace the file on save (a new inode), so watch its folder and debounce the burst of events.
    watch(dirname(resolve(path)), { persistent: false }, (_event, name) => {
      if (name !== null && name !== basename(path)) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload('file changed'), 200);
    });
  } catch (err) {
    log.warn(
      { configFile: path, err: (err as Error).message },
      'cannot watch the config file; reload with SIGHUP',
    );
  }
}
