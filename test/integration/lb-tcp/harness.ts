// Test-only wiring for the TCP load balancer: real echo targets on loopback, a target group with the
// chosen algorithm, optional active health checks, and a TcpListener on an ephemeral port.
import net from 'node:net';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { AlgorithmName } from '../../../src/balancing/types.js';
import { createBalancer } from '../../../src/balancing/index.js';
import { ActiveHealthChecker, type HealthCheckConfig } from '../../../src/health/active.js';
import {
  DEFAULT_PASSIVE_HEALTH,
  PassiveHealth,
  type PassiveHealthConfig,
} from '../../../src/health/passive.js';
import type { Target } from '../../../src/registry/target.js';
import { TargetGroup } from '../../../src/registry/target-group.js';
import { TcpListener, type TcpListenerOptions } from '../../../src/lb/tcp/index.js';

export interface EchoTarget {
  id: string;
  host: string;
  port: number;
  server: net.Server;
  /** Connections accepted so far, and the sockets still open. */
  accepted: number;
  open: Set<net.Socket>;
  close(): Promise<void>;
}

/**
 * A TCP echo server. `onConnection` replaces the echo (for targets that parse a PROXY header).
 * allowHalfOpen: after the client's FIN it still sends its echo, then ends its side.
 */
export async function startEchoTarget(
  id: string,
  host = '127.0.0.1',
  port = 0,
  onConnection?: (socket: net.Socket) => void,
): Promise<EchoTarget> {
  const open = new Set<net.Socket>();
  const target: EchoTarget = {
    id,
    host,
    port: 0,
    server: undefined as unknown as net.Server,
    accepted: 0,
    open,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => target.server.close(() => resolve()));
    },
  };
  target.server = net.createServer({ allowHalfOpen: true }, (socket) => {
    target.accepted++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    if (onConnection) return onConnection(socket);
    socket.pipe(socket);
  });
  target.server.listen(port, host);
  await once(target.server, 'listening');
  target.port = (target.server.address() as net.AddressInfo).port;
  return target;
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function deadPort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface TestTcpLb {
  listener: TcpListener;
  group: TargetGroup;
  passive: PassiveHealth;
  checker: ActiveHealthChecker | undefined;
  port: number;
  stop(): Promise<void>;
}

export interface TestTcpLbOptions extends Partial<Omit<TcpListenerOptions, 'group'>> {
  algorithm?: AlgorithmName;
  /** Active checks; without them every target is forced healthy. */
  healthCheck?: HealthCheckConfig;
  passiveHealth?: PassiveHealthConfig;
}

export async function startTcpLb(
  targets: Array<{ id: string; host: string; port: number; weight?: number }>,
  o: TestTcpLbOptions = {},
): Promise<TestTcpLb> {
  const { algorithm, healthCheck: hc, passiveHealth, ...listenerOptions } = o;
  const thresholds = hc
    ? { healthyThreshold: hc.healthyThreshold, unhealthyThreshold: hc.unhealthyThreshold }
    : { healthyThreshold: 1, unhealthyThreshold: 1 };
  const group = new TargetGroup('tcp-test', createBalancer<Target>(algorithm ?? 'round-robin'), thresholds);
  for (const t of targets) {
    const target = group.register({ id: t.id, host: t.host, port: t.port, weight: t.weight ?? 1 });
    if (!hc) target.health.force('healthy', 'Target.HealthCheckDisabled');
  }
  group.refresh();
  const passive = new PassiveHealth(group, passiveHealth ?? DEFAULT_PASSIVE_HEALTH);
  const checker = hc ? new ActiveHealthChecker(group, hc) : undefined;
  const listener = new TcpListener({
    host: '127.0.0.1',
    port: 0,
    connectTimeoutMs: 1000,
    idleTimeoutMs: 30_000,
    maxAttempts: 3,
    proxyProtocol: false,
    passive,
    ...listenerOptions,
    group,
  });
  const address = await listener.listen();
  checker?.start();
  return {
    listener,
    group,
    passive,
    checker,
    port: address.port,
    async stop() {
      checker?.stop();
      await listener.close(500);
    },
  };
}

/** Connects to the LB (optionally from another loopback source address). */
export async function connect(port: number, localAddress?: string, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ host, port, localAddress, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Reads everything until the peer's FIN (or close); rejects on error. */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** Sends `payload`, half-closes, and returns what came back before the LB's FIN. */
export async function echoOnce(port: number, payload: Buffer, localAddress?: string): Promise<Buffer> {
  const socket = await connect(port, localAddress);
  const reply = readAll(socket);
  socket.end(payload);
  const out = await reply;
  socket.destroy();
  return out;
}

/** Resolves when the socket closes, with whether it ended by error (e.g. a reset). */
export function closed(socket: net.Socket): Promise<{ hadError: boolean; code?: string }> {
  return new Promise((resolve) => {
    let code: string | undefined;
    socket.on('error', (err: NodeJS.ErrnoException) => (code = err.code));
    if (socket.destroyed) resolve({ hadError: false });
    socket.once('close', (hadError) => resolve({ hadError, code }));
  });
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

export interface StalledTarget {
  id: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * A target whose TCP connects hang, on loopback: a listener (backlog 1) in a worker thread whose event
 * loop is blocked, so nothing is accepted. Once the kernel's accept queue is full, new SYNs are dropped
 * and a connect neither succeeds nor fails until the caller's timeout.
 */
export async function startStalledTarget(id: string): Promise<StalledTarget> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const net = require('node:net');
     const server = net.createServer().listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0); // block until the test is done
     });`,
    { eval: true, workerData: flag },
  );
  const [port] = (await once(worker, 'message')) as [number];
  // Fill the accept queue (backlog + 1 completed handshakes); later SYNs get no answer.
  const fillers = Array.from({ length: 3 }, () =>
    net.connect({ host: '127.0.0.1', port }).on('error', () => {}),
  );
  await new Promise((r) => setTimeout(r, 100));
  return {
    id,
    host: '127.0.0.1',
    port,
    async close() {
      for (const s of fillers) s.destroy();
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await worker.terminate();
    },
  };
}
