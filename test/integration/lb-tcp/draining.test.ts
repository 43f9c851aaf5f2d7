import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { TcpDrainResult } from '../../../src/lb/tcp/index.js';
import { closed, connect, echoOnce, startEchoTarget, startTcpLb } from './harness.js';

async function roundTrip(socket: net.Socket, text: string): Promise<string> {
  socket.write(text);
  const [reply] = (await once(socket, 'data')) as [Buffer];
  return reply.toString();
}

describe('draining a target with long-lived connections', () => {
  it('keeps existing connections working until the deadline, sends new ones elsewhere, then cuts', async () => {
    const targets = await Promise.all(['x', 'y'].map((id) => startEchoTarget(id)));
    const lb = await startTcpLb(targets, { algorithm: 'round-robin' });
    const events: TcpDrainResult[] = [];
    lb.listener.on('target-drained', (r) => events.push(r));
    try {
      const longLived = await connect(lb.port);
      assert.equal(await roundTrip(longLived, 'first'), 'first');
      const drainedId = targets.find((t) => lb.listener.connectionsTo(t.id) === 1)!.id;
      const otherId = drainedId === 'x' ? 'y' : 'x';
      const otherBefore = lb.listener.targetStats().get(otherId)?.total ?? 0;

      const drain = lb.listener.drainTarget(drainedId, 800);
      assert.equal(lb.group.get(drainedId)!.state, 'draining');
      assert.equal(lb.group.get(drainedId)!.reason, 'Target.DeregistrationInProgress');

      // New connections all go to the other target.
      for (let i = 0; i < 6; i++)
        assert.equal((await echoOnce(lb.port, Buffer.from(`n${i}`))).toString(), `n${i}`);
      assert.equal(lb.listener.targetStats().get(otherId)!.total - otherBefore, 6);
      assert.equal(lb.listener.targetStats().get(drainedId)!.total, 1);

      // The old connection still works before the deadline.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await roundTrip(longLived, 'still here'), 'still here');
      assert.equal(lb.listener.isDrained(drainedId), false);

      const ended = closed(longLived);
      const result = await drain;
      assert.equal(result.targetId, drainedId);
      assert.equal(result.cut, 1);
      assert.ok(result.durationMs >= 700, `drain ended after ${result.durationMs} ms, before the deadline`);
      assert.equal((await ended).code, 'ECONNRESET');
      assert.equal(lb.listener.isDrained(drainedId), true);
      assert.equal(lb.group.get(drainedId)!.connections, 0);
      assert.equal(lb.listener.stats.drainClosed, 1);
      assert.deepEqual(events, [result]);
    } finally {
      await lb.stop();
      await Promise.all(targets.map((t) => t.close()));
    }
  });

  it('reports the target drained as soon as its last connection ends by itself', async () => {
    const target = await startEchoTarget('solo');
    const spare = await startEchoTarget('spare');
    const lb = await startTcpLb([target, spare], { algorithm: 'round-robin' });
    try {
      const socket = await connect(lb.port); // round-robin: the first connection goes to "solo"
      assert.equal(await roundTrip(socket, 'a'), 'a');
      assert.equal(lb.listener.connectionsTo('solo'), 1);
      const drain = lb.listener.drainTarget('solo', 10_000);
      setTimeout(() => socket.end(), 100);
      const result = await drain;
      assert.equal(result.cut, 0);
      assert.ok(result.durationMs < 5000);
      assert.ok(lb.listener.isDrained('solo'));
      // Draining an already idle target resolves at once.
      assert.equal((await lb.listener.drainTarget('spare', 10_000)).cut, 0);
      await assert.rejects(lb.listener.drainTarget('nope', 100), /"nope" is not registered/);
    } finally {
      await lb.stop();
      await Promise.all([target.close(), spare.close()]);
    }
  });

  it('cutTarget() resets the connections of one target at once and leaves the others alone', async () => {
    const targets = await Promise.all(['p', 'q'].map((id) => startEchoTarget(id)));
    const lb = await startTcpLb(targets, { algorithm: 'round-robin' });
    try {
      const toP = await connect(lb.port);
      const toQ = await connect(lb.port);
      assert.equal(await roundTrip(toP, '1'), '1');
      assert.equal(await roundTrip(toQ, '2'), '2');
      assert.equal(lb.listener.connectionsTo('p'), 1);
      const ended = closed(toP);
      assert.equal(lb.listener.cutTarget('p'), 1);
      assert.equal((await ended).code, 'ECONNRESET');
      assert.equal(await roundTrip(toQ, 'q lives'), 'q lives');
      assert.equal(lb.listener.cutTarget('p'), 0);
      toQ.end();
    } finally {
      await lb.stop();
      await Promise.all(targets.map((t) => t.close()));
    }
  });

  it('close() stops accepting, lets open connections run until the drain timeout, then cuts them', async () => {
    const target = await startEchoTarget('t');
    const lb = await startTcpLb([target]);
    const socket = await connect(lb.port);
    assert.equal(await roundTrip(socket, 'before'), 'before');
    const ended = closed(socket);
    const started = Date.now();
    const closing = lb.listener.close(600);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await roundTrip(socket, 'during'), 'during');
    const refused = net.connect({ host: '127.0.0.1', port: lb.port });
    const refusal = await closed(refused);
    assert.equal(refusal.code, 'ECONNREFUSED');
    await closing;
    assert.ok(Date.now() - started >= 500);
    assert.equal((await ended).code, 'ECONNRESET');
    assert.equal(lb.listener.activeConnections, 0);
    assert.equal(lb.listener.stats.drainClosed, 1);
    await target.close();
  });
});
