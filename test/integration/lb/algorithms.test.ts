import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { ALGORITHMS } from '../../../src/balancing/index.js';
import type { AlgorithmName } from '../../../src/balancing/types.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { startLb } from '../../helpers/lb.js';

const HASHED: AlgorithmName[] = ['ring-hash', 'maglev'];
const WEIGHT_AWARE: AlgorithmName[] = ['weighted-round-robin', 'random', 'power-of-two'];

async function spread(url: string, count: number, concurrency: number, headers: Record<string, string> = {}) {
  const agent = new Agent({ connections: concurrency });
  const byTarget = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const res = await request(url, { headers, dispatcher: agent });
        await res.body.text();
        assert.equal(res.statusCode, 200);
        const t = res.headers['x-target'] as string;
        byTarget.set(t, (byTarget.get(t) ?? 0) + 1);
      }
    }),
  );
  await agent.close();
  return byTarget;
}

describe('every balancing algorithm spreads real traffic', () => {
  let targets: TestTarget[];
  before(async () => {
    targets = await startTargets(4);
  });
  after(async () => {
    await stopTargets(targets);
  });

  for (const algorithm of ALGORITHMS.filter((a) => !HASHED.includes(a))) {
    it(`${algorithm}: every target gets a fair share`, async () => {
      const lb = await startLb(targets, { targetGroup: { algorithm } });
      try {
        const byTarget = await spread(`${lb.url}/spread`, 400, 4);
        assert.equal(byTarget.size, 4, `targets reached: ${[...byTarget.keys()]}`);
        for (const [t, n] of byTarget) assert.ok(n >= 50, `${algorithm}: target ${t} got ${n}/400`);
      } finally {
        await lb.stop();
      }
    });
  }

  for (const algorithm of WEIGHT_AWARE) {
    it(`${algorithm}: a weight-3 target gets about three times the share`, async () => {
      const lb = await startLb(targets, {
        targetGroup: { algorithm },
        targets: targets.map((t, i) => ({
          id: t.id,
          host: '127.0.0.1',
          port: t.port,
          weight: i === 0 ? 3 : 1,
        })),
      });
      try {
        // One request at a time: load-aware algorithms then see equal loads, so only weights decide.
        const byTarget = await spread(`${lb.url}/weighted`, 600, 1);
        const heavy = byTarget.get(String(targets[0]!.port)) ?? 0;
        // Expected 3/6 = 300 of 600.
        assert.ok(heavy > 240 && heavy < 360, `${algorithm}: weight-3 target got ${heavy}/600`);
      } finally {
        await lb.stop();
      }
    });
  }

  for (const algorithm of HASHED) {
    it(`${algorithm}: a key sticks to one target and many keys spread`, async () => {
      const lb = await startLb(targets, { targetGroup: { algorithm, hashOn: 'header:x-user' } });
      try {
        const home = new Map<string, string>();
        for (let user = 0; user < 60; user++) {
          const byTarget = await spread(`${lb.url}/hash`, 5, 1, { 'x-user': `user-${user}` });
          assert.equal(byTarget.size, 1, `user-${user} moved between targets`);
          home.set(`user-${user}`, [...byTarget.keys()][0]!);
        }
        const used = new Set(home.values());
        assert.ok(used.size >= 3, `60 keys landed on only ${used.size} targets`);
      } finally {
        await lb.stop();
      }
    });
  }

  it('least-outstanding sends new requests away from a busy target', async () => {
    targets[0]!.delayMs = 300;
    const lb = await startLb(targets, { targetGroup: { algorithm: 'least-outstanding' } });
    try {
      const byTarget = await spread(`${lb.url}/busy`, 200, 4);
      const slow = byTarget.get(String(targets[0]!.port)) ?? 0;
      assert.ok(slow <= 10, `the busy target got ${slow}/200`);
    } finally {
      targets[0]!.delayMs = 0;
      await lb.stop();
    }
  });
});
