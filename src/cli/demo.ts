import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { createLogger } from '../core/log.js';
import { formatHostPort } from '../core/types.js';
import { quickStartConfig } from '../lb/quick-start.js';
import { runLoadBalancer } from './lb.js';
import { duration, hostPort, integer } from './options.js';

/** A tiny web server standing in for an app instance: it says which instance answered. */
function startDemoTarget(name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok\n');
    res.setHeader('content-type', 'text/plain');
    res.end(
      `Hello from ${name} (${req.method} ${req.url}, via ${req.headers['x-forwarded-for'] ?? 'direct'})\n`,
    );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

interface DemoFlags {
  listen: { host: string; port: number };
  targets: number;
  chaos?: number;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the load balancer alone in front of local demo targets (no PostgreSQL needed)')
    .option('--listen <host:port>', 'address for the load balancer', hostPort, {
      host: '127.0.0.1',
      port: 8080,
    })
    .option('--targets <n>', 'how many demo targets', integer(1, 20), 3)
    .option(
      '--chaos <duration>',
      'stop a random target for a while at this interval, to watch failover',
      duration,
    )
    .action(async (flags: DemoFlags) => {
      const chaosMs = flags.chaos;
      const servers = await Promise.all(
        Array.from({ length: flags.targets }, (_, i) => startDemoTarget(`instance-${i + 1}`)),
      );
      const targets = servers.map((s) => {
        const { port } = s.address() as AddressInfo;
        return { id: formatHostPort('127.0.0.1', port), host: '127.0.0.1', port, weight: 1 };
      });
      console.log(`demo targets: ${targets.map((t) => t.id).join(', ')}`);
      const log = createLogger('scaleout-demo');
      const config = quickStartConfig({
        listen: flags.listen,
        targets,
        targetGroup: { healthCheck: { path: '/healthz', interval: '1s' } },
      });
      const lb = await runLoadBalancer(config, { drainTimeoutMs: 2000, log });
      lb.group('default')!.group.on('transition', (target, t) => {
        console.log(`${new Date().toISOString()}  ${target.id}: ${t.from} -> ${t.to} (${t.reason})`);
      });
      const url = `http://${formatHostPort(flags.listen.host, lb.addresses.get('default')!.port)}/`;
      console.log(`\nTry it:  curl ${url}   (run it a few times: the answering instance rotates)`);
      if (chaosMs) startChaos(servers, chaosMs);
      else
        console.log(
          'Add --chaos 20s to stop a target now and then and watch the load balancer route around it.',
        );
    });
}

/** Every `intervalMs`, closes one demo target for half the interval, then brings it back. */
function startChaos(servers: http.Server[], intervalMs: number): void {
  setInterval(() => {
    const server = servers[Math.floor(Math.random() * servers.length)]!;
    const { port } = server.address() as AddressInfo;
    console.log(`chaos: stopping the target on port ${port} for ${intervalMs / 2000} s`);
    server.closeAllConnections();
    server.close(() => setTimeout(() => server.listen(port, '127.0.0.1'), intervalMs / 2));
  }, intervalMs).unref();
}
