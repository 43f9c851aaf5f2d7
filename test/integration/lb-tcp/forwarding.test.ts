import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { TcpListener } from '../../../src/lb/tcp/index.js';
import { TargetGroup } from '../../../src/registry/target-group.js';
import { createBalancer } from '../../../src/balancing/index.js';
import type { Target } from '../../../src/registry/target.js';
import {
  closed,
  connect,
  echoOnce,
  readAll,
  startEchoTarget,
  startTcpLb,
  waitFor,
  type EchoTarget,
  type TestTcpLb,
} from './harness.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('tcp listener forwards byte streams', () => {
  let targets: EchoTarget[];
  let lb: TestTcpLb;
  before(async () => {
    targets = await Promise.all(['a', 'b', 'c'].map((id) => startEchoTarget(id)));
    lb = await startTcpLb(targets);
  });
  after(async () => {
    await lb.stop();
    await Promise.all(targets.map((t) => t.close()));
  });

  it('echoes through many concurrent connections, each with its own bytes', async () => {
    const before = lb.listener.stats.accepted;
    const payloads = Array.from({ length: 60 }, (_, i) => randomBytes(1000 + i * 997));
    const replies = await Promise.all(payloads.map((p) => echoOnce(lb.port, p)));
    replies.forEach((r, i) => assert.equal(sha(r), sha(payloads[i]!), `connection ${i} got other bytes`));
    assert.equal(lb.listener.stats.accepted - before, 60);
    assert.ok(await waitFor(() => lb.listener.activeConnections === 0, 2000), 'connections left open');
    for (const t of targets) assert.equal(lb.listener.connectionsTo(t.id), 0);
    for (const t of lb.group.list()) assert.equal(t.outstanding, 0, `${t.id} outstanding not released`);
  });

  it('moves a large payload both ways intact (16 MiB echo)', async () => {
    const payload = randomBytes(16 << 20);
    const inBefore = lb.listener.stats.bytesIn;
    const outBefore = lb.listener.stats.bytesOut;
    const reply = await echoOnce(lb.port, payload);
    assert.equal(reply.length, payload.length);
    assert.equal(sha(reply), sha(payload));
    assert.equal(lb.listener.stats.bytesIn - inBefore, payload.length);
    assert.equal(lb.listener.stats.bytesOut - outBefore, payload.length);
  });

  it('passes the client FIN on and still carries the answer (half-close both ways)', async () => {
    // A target that answers only after the client's FIN, then sends its own FIN.
    const counter = await startEchoTarget('count', '127.0.0.1', 0, (socket) => {
      let n = 0;
      socket.on('data', (c: Buffer) => (n += c.length));
      socket.on('end', () => socket.end(`got ${n} bytes`));
    });
    const solo = await startTcpLb([counter]);
    try {
      const socket = await connect(solo.port);
      const reply = readAll(socket);
      socket.write('x'.repeat(5000));
      socket.end('y'.repeat(5000));
      assert.equal((await reply).toString(), 'got 10000 bytes');
      await closed(socket);
    } finally {
      await solo.stop();
      await counter.close();
    }
  });

  it('keeps a target-side half-close open for more client bytes', async () => {
    // The target greets and half-closes at once; the client may still send, and the target reads it.
    let received = '';
    let targetGotFin!: () => void;
    const gotFin = new Promise<void>((resolve) => (targetGotFin = resolve));
    const greeter = await startEchoTarget('greeter', '127.0.0.1', 0, (socket) => {
      socket.end('hello');
      socket.on('data', (c: Buffer) => (received += c.toString()));
      socket.on('end', () => targetGotFin());
    });
    const solo = await startTcpLb([greeter]);
    try {
      const socket = await connect(solo.port);
      assert.equal((await readAll(socket)).toString(), 'hello');
      socket.end('still here');
      await gotFin;
      assert.equal(received, 'still here');
    } finally {
      await solo.stop();
      await greeter.close();
    }
  });

  it('applies backpressure: a client that does not read stalls the target instead of filling memory', async () => {
    const total = 64 << 20;
    let written = 0;
    let finished = false;
    const firehose = await startEchoTarget('firehose', '127.0.0.1', 0, (socket) => {
      const chunk = Buffer.alloc(256 * 1024, 7);
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        finished = true;
        socket.end();
      };
      pump();
    });
    const solo = await startTcpLb([firehose]);
    try {
      const socket = await connect(solo.port);
      socket.pause();
      // Wait until the target stops making progress (its writes are blocked), bounded at 3 s.
      let last = -1;
      for (let i = 0; i < 30 && written !== last; i++) {
        last = written;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(!finished, 'the target wrote everything although nobody read: no backpressure');
      assert.ok(written < 40 << 20, `target wrote ${written} bytes into a paused client`);
      const reply = readAll(socket);
      socket.resume();
      assert.equal((await reply).length, total);
      assert.ok(finished);
    } finally {
      await solo.stop();
      await firehose.close();
    }
  });

  it('sends bytes the client wrote before the target connected first, in order', async () => {
    const payload = randomBytes(200_000); // above maxPendingBytes: the client is paused, not dropped
    const socket = net.connect({ host: '127.0.0.1', port: lb.port, allowHalfOpen: true });
    const reply = readAll(socket);
    socket.end(payload); // queued before the TCP handshake completes
    assert.equal(sha(await reply), sha(payload));
  });
});

describe('tcp listener edge cases', () => {
  it('closes idle connections after the idle timeout', async () => {
    const target = await startEchoTarget('idle');
    const lb = await startTcpLb([target], { idleTimeoutMs: 300 });
    try {
      const socket = await connect(lb.port);
      socket.write('ping');
      await once(socket, 'data');
      const started = Date.now();
      await closed(socket);
      const waited = Date.now() - started;
      assert.ok(waited >= 200, `closed after ${waited} ms, before the idle timeout`);
      assert.equal(lb.listener.stats.idleTimeouts, 1);
      assert.ok(await waitFor(() => target.open.size === 0, 1000), 'target side left open');
    } finally {
      await lb.stop();
      await target.close();
    }
  });

  it('closes the client connection and counts it when no target is eligible', async () => {
    const group = new TargetGroup('empty', createBalancer<Target>('round-robin'), {
      healthyThreshold: 1,
      unhealthyThreshold: 1,
    });
    const listener = new TcpListener({
      host: '127.0.0.1',
      port: 0,
      group,
      connectTimeoutMs: 500,
      idleTimeoutMs: 1000,
      maxAttempts: 3,
      proxyProtocol: false,
    });
    const { port } = await listener.listen();
    try {
      // The LB resets the connection at once: the client may see it even before its connect callback.
      const socket = net.connect({ host: '127.0.0.1', port });
      let received = 0;
      socket.on('data', (c: Buffer) => (received += c.length));
      socket.write('anyone?');
      const end = await closed(socket);
      assert.equal(end.code, 'ECONNRESET');
      assert.equal(received, 0);
      assert.equal(listener.stats.noTarget, 1);
      assert.ok(await waitFor(() => listener.activeConnections === 0, 1000));
    } finally {
      await listener.close(100);
    }
  });

  it('refuses bad options with a readable error, and reports a port in use', async () => {
    const group = new TargetGroup('g', createBalancer<Target>('round-robin'), {
      healthyThreshold: 1,
      unhealthyThreshold: 1,
    });
    const base = {
      host: '127.0.0.1',
      port: 0,
      group,
      connectTimeoutMs: 500,
      idleTimeoutMs: 1000,
      maxAttempts: 3,
      proxyProtocol: false as const,
    };
    assert.throws(() => new TcpListener({ ...base, maxAttempts: 0 }), /maxAttempts.*from 1/);
    assert.throws(() => new TcpListener({ ...base, connectTimeoutMs: -5 }), /connectTimeoutMs/);
    assert.throws(() => new TcpListener({ ...base, proxyProtocol: 'v3' as 'v1' }), /proxyProtocol/);
    assert.throws(() => new TcpListener({ ...base, port: 70000 }), /port/);
    const first = new TcpListener(base);
    const { port } = await first.listen();
    const second = new TcpListener({ ...base, port });
    await assert.rejects(second.listen(), /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    await first.close(100);
  });
});
