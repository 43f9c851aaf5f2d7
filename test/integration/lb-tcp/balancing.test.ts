import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type net from 'node:net';
import {
  closed,
  connect,
  deadPort,
  echoOnce,
  readAll,
  startEchoTarget,
  startTcpLb,
  waitFor,
  type EchoTarget,
} from './harness.js';

/** A target that answers every connection with its id and closes. */
const whoami = (id: string, host = '127.0.0.1', port = 0) =>
  startEchoTarget(id, host, port, (socket) => socket.end(id));

async function ask(port: number, localAddress?: string): Promise<string> {
  const socket = await connect(port, localAddress);
  const reply = (await readAll(socket)).toString();
  socket.destroy();
  return reply;
}

const FAST_TCP_CHECK = {
  protocol: 'tcp' as const,
  path: '/',
  intervalMs: 100,
  timeoutMs: 300,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  successCodes: '200-399',
};

describe('tcp listener balances connections like the group says', () => {
  let targets: EchoTarget[];
  before(async () => {
    targets = await Promise.all(['a', 'b', 'c'].map((id) => whoami(id)));
  });
  after(async () => {
    await Promise.all(targets.map((t) => t.close()));
  });

  it('round-robin gives every target the same number of connections', async () => {
    const lb = await startTcpLb(targets, { algorithm: 'round-robin' });
    try {
      const counts = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const id = await ask(lb.port);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      assert.deepEqual([...counts.entries()].sort(), [
        ['a', 10],
        ['b', 10],
        ['c', 10],
      ]);
      for (const t of targets) assert.equal(lb.listener.targetStats().get(t.id)?.total, 10);
    } finally {
      await lb.stop();
    }
  });

  it('least-connections counts a long-lived connection for its whole life', async () => {
    const holders = await Promise.all(['x', 'y', 'z'].map((id) => startEchoTarget(id)));
    const lb = await startTcpLb(holders, { algorithm: 'least-connections' });
    const sockets: net.Socket[] = [];
    try {
      // Opened one at a time, each kept open: the least-loaded target always takes the next one.
      for (let i = 0; i < 6; i++) {
        sockets.push(await connect(lb.port));
        assert.ok(await waitFor(() => lb.listener.stats.active === i + 1, 1000));
        assert.ok(await waitFor(() => holders.reduce((n, h) => n + h.open.size, 0) === i + 1, 1000));
      }
      assert.deepEqual(
        holders.map((h) => h.open.size),
        [2, 2, 2],
      );
      for (const t of lb.group.list()) {
        assert.equal(t.connections, 2);
        assert.equal(t.outstanding, 2);
        assert.equal(lb.listener.connectionsTo(t.id), 2);
      }
      for (const s of sockets) s.end();
      assert.ok(await waitFor(() => lb.group.list().every((t) => t.outstanding === 0), 2000));
    } finally {
      for (const s of sockets) s.destroy();
      await lb.stop();
      await Promise.all(holders.map((h) => h.close()));
    }
  });

  it('a select() hook replaces the default pick (e.g. a group runtime with slow start)', async () => {
    const seenIps: string[] = [];
    const lb = await startTcpLb(targets, { algorithm: 'round-robin' });
    const custom = await startTcpLb(targets, {
      select: (clientIp) => {
        seenIps.push(clientIp);
        return lb.group.select(); // any Selection works; here: always offer "c" first
      },
    });
    try {
      lb.group.get('a')!.adminDisabled = true;
      lb.group.get('b')!.adminDisabled = true;
      lb.group.refresh();
      for (let i = 0; i < 3; i++) assert.equal(await ask(custom.port, '127.0.0.4'), 'c');
      assert.deepEqual(seenIps, ['127.0.0.4', '127.0.0.4', '127.0.0.4']);
      // A hook that throws costs that one client its connection (a reset), not the listener.
      const broken = await startTcpLb(targets, {
        select: () => {
          throw new Error('hook bug');
        },
      });
      const refused = await connect(broken.port).catch(() => undefined);
      if (refused) assert.equal((await closed(refused)).code, 'ECONNRESET');
      assert.equal(broken.listener.stats.noTarget, 1);
      await broken.stop();
    } finally {
      await custom.stop();
      await lb.stop();
    }
  });

  for (const algorithm of ['ring-hash', 'maglev'] as const) {
    it(`${algorithm} on the source IP keeps each client on one target`, async () => {
      const lb = await startTcpLb(targets, { algorithm, hashOn: 'source-ip' });
      try {
        const bySource = new Map<string, Set<string>>();
        for (let host = 2; host <= 9; host++) {
          const source = `127.0.0.${host}`;
          const seen = new Set<string>();
          for (let i = 0; i < 5; i++) seen.add(await ask(lb.port, source));
          bySource.set(source, seen);
        }
        for (const [source, seen] of bySource) assert.equal(seen.size, 1, `${source} moved: ${[...seen]}`);
        const used = new Set([...bySource.values()].map((s) => [...s][0]));
        assert.ok(used.size >= 2, `eight sources all hashed to ${[...used]}`);
      } finally {
        await lb.stop();
      }
    });
  }
});

describe('tcp listener and target health', () => {
  it('skips a target that refuses connections, trying the next candidate', async () => {
    const live = await Promise.all(['a', 'c'].map((id) => startEchoTarget(id)));
    const dead = { id: 'dead', host: '127.0.0.1', port: await deadPort() };
    const lb = await startTcpLb([live[0]!, dead, live[1]!], { algorithm: 'round-robin', maxAttempts: 2 });
    try {
      for (let i = 0; i < 12; i++) {
        const reply = await echoOnce(lb.port, Buffer.from(`hello ${i}`));
        assert.equal(reply.toString(), `hello ${i}`);
      }
      assert.ok(lb.listener.stats.connectFailures >= 1, 'the dead target was never tried');
      assert.equal(lb.listener.targetStats().get('dead')?.connectFailures, lb.listener.stats.connectFailures);
      assert.equal(lb.listener.stats.failedConnections, 0);
      assert.equal(lb.group.get('dead')!.outstanding, 0);
    } finally {
      await lb.stop();
      await Promise.all(live.map((t) => t.close()));
    }
  });

  it('resets the client when every attempt fails', async () => {
    const dead = [
      { id: 'd1', host: '127.0.0.1', port: await deadPort() },
      { id: 'd2', host: '127.0.0.1', port: await deadPort() },
    ];
    const lb = await startTcpLb(dead, { maxAttempts: 5 });
    try {
      const socket = await connect(lb.port).catch(() => undefined);
      if (socket) assert.equal((await closed(socket)).code, 'ECONNRESET');
      assert.ok(await waitFor(() => lb.listener.stats.failedConnections === 1, 1000));
      // Two candidates only: the selection runs out before maxAttempts.
      assert.equal(lb.listener.stats.connectFailures, 2);
    } finally {
      await lb.stop();
    }
  });

  it('a TCP health check marks a dead target unhealthy and it gets no more attempts', async () => {
    const live = await startEchoTarget('live');
    const dead = { id: 'dead', host: '127.0.0.1', port: await deadPort() };
    const lb = await startTcpLb([live, dead], { healthCheck: FAST_TCP_CHECK });
    try {
      assert.ok(await waitFor(() => lb.group.get('dead')!.state === 'unhealthy', 3000), 'never unhealthy');
      assert.equal(lb.group.get('dead')!.reason, 'Target.ConnectionRefused');
      assert.ok(await waitFor(() => lb.group.get('live')!.state === 'healthy', 3000));
      const failures = lb.listener.stats.connectFailures;
      for (let i = 0; i < 10; i++) assert.equal((await echoOnce(lb.port, Buffer.from('x'))).toString(), 'x');
      assert.equal(lb.listener.stats.connectFailures, failures);
      assert.equal(lb.listener.targetStats().get('live')?.total, 10);
    } finally {
      await lb.stop();
      await live.close();
    }
  });

  it('an HTTP health check on another port decides, even while the traffic port accepts', async () => {
    // Two targets on their own loopback addresses, each with an HTTP health endpoint on the same
    // port number (a group has one health-check port); the one on 127.0.0.3 reports 503.
    const healthServers: http.Server[] = [];
    let healthPort = 0;
    for (let attempt = 0; attempt < 5 && healthServers.length < 2; attempt++) {
      for (const s of healthServers.splice(0)) s.close();
      try {
        for (const [host, status] of [
          ['127.0.0.2', 200],
          ['127.0.0.3', 503],
        ] as const) {
          const server = http.createServer((_req, res) => res.writeHead(status).end());
          server.listen(healthPort, host);
          await once(server, 'listening');
          healthServers.push(server);
          healthPort = (server.address() as net.AddressInfo).port;
        }
      } catch {
        healthPort = 0;
      }
    }
    assert.equal(healthServers.length, 2, 'could not bind one health port on both addresses');
    const good = await whoami('good', '127.0.0.2');
    const sick = await whoami('sick', '127.0.0.3');
    const lb = await startTcpLb([good, sick], {
      healthCheck: { ...FAST_TCP_CHECK, protocol: 'http', path: '/health', port: healthPort },
    });
    try {
      assert.ok(await waitFor(() => lb.group.get('sick')!.state === 'unhealthy', 3000), 'never unhealthy');
      assert.equal(lb.group.get('sick')!.reason, 'Target.ResponseCodeMismatch');
      assert.ok(await waitFor(() => lb.group.get('good')!.state === 'healthy', 3000));
      for (let i = 0; i < 8; i++) assert.equal(await ask(lb.port), 'good');
      assert.equal(sick.accepted, 0);
    } finally {
      await lb.stop();
      await Promise.all([good.close(), sick.close()]);
      for (const s of healthServers) s.close();
    }
  });

  it('fails open like the group says when every target is unhealthy', async () => {
    // Health checks go to a port where nothing listens: both targets turn unhealthy, while their
    // traffic ports still accept. The group then offers every in-service target (ELB's fail-open).
    const pair = await Promise.all(['m', 'n'].map((id) => whoami(id)));
    const lb = await startTcpLb(pair, {
      algorithm: 'round-robin',
      healthCheck: { ...FAST_TCP_CHECK, port: await deadPort() },
    });
    try {
      assert.ok(await waitFor(() => lb.group.list().every((t) => t.state === 'unhealthy'), 3000));
      assert.equal(lb.group.failOpen, true);
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add(await ask(lb.port));
      assert.deepEqual([...seen].sort(), ['m', 'n']);
      assert.equal(lb.listener.stats.noTarget, 0);
    } finally {
      await lb.stop();
      await Promise.all(pair.map((t) => t.close()));
    }
  });
});
