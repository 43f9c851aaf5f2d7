import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import {
  closed,
  connect,
  echoOnce,
  startEchoTarget,
  startStalledTarget,
  startTcpLb,
  waitFor,
} from './harness.js';

describe('tcp listener when connects hang or a side resets', () => {
  it('gives up on a target that does not answer the connect, and tries the next one', async () => {
    const stalled = await startStalledTarget('stalled');
    const live = await startEchoTarget('live');
    // round-robin offers "stalled" first.
    const lb = await startTcpLb([stalled, live], { algorithm: 'round-robin', connectTimeoutMs: 300 });
    try {
      const started = Date.now();
      assert.equal((await echoOnce(lb.port, Buffer.from('through'))).toString(), 'through');
      assert.ok(Date.now() - started >= 250, 'answered before the connect timeout: "stalled" was not tried');
      assert.equal(lb.listener.stats.connectTimeouts, 1);
      assert.equal(lb.listener.targetStats().get('stalled')?.connectFailures, 1);
      assert.equal(lb.group.get('stalled')!.outstanding, 0);
    } finally {
      await lb.stop();
      await Promise.all([stalled.close(), live.close()]);
    }
  });

  it('resets the client when its only attempt times out', async () => {
    const stalled = await startStalledTarget('stalled');
    const lb = await startTcpLb([stalled], { connectTimeoutMs: 200, maxAttempts: 1 });
    try {
      const socket = await connect(lb.port);
      socket.write('bytes that never arrive');
      assert.equal((await closed(socket)).code, 'ECONNRESET');
      assert.equal(lb.listener.stats.failedConnections, 1);
      assert.equal(lb.listener.stats.connectTimeouts, 1);
    } finally {
      await lb.stop();
      await stalled.close();
    }
  });

  it('a client reset reaches the target as a reset', async () => {
    let targetSide: net.Socket | undefined;
    const target = await startEchoTarget('t', '127.0.0.1', 0, (s) => {
      targetSide = s;
      s.pipe(s);
    });
    const lb = await startTcpLb([target]);
    try {
      const socket = await connect(lb.port);
      socket.write('hi');
      await once(socket, 'data');
      const targetClosed = closed(targetSide!);
      socket.resetAndDestroy();
      assert.equal((await targetClosed).code, 'ECONNRESET');
      assert.ok(await waitFor(() => lb.listener.activeConnections === 0, 1000));
    } finally {
      await lb.stop();
      await target.close();
    }
  });

  it('a target reset reaches the client as a reset', async () => {
    const target = await startEchoTarget('t', '127.0.0.1', 0, (s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    const lb = await startTcpLb([target]);
    try {
      const socket = await connect(lb.port);
      const ended = closed(socket);
      socket.write('boom');
      assert.equal((await ended).code, 'ECONNRESET');
      assert.ok(await waitFor(() => lb.listener.activeConnections === 0, 1000));
      assert.equal(lb.group.get('t')!.connections, 0);
    } finally {
      await lb.stop();
      await target.close();
    }
  });
});
