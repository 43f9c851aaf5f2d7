// Health-aware answers end to end: real TCP servers on loopback addresses are stopped and restarted;
// the DNS server withholds and restores their addresses within the thresholds, fails open below the
// threshold, fails over to a secondary, and drains with a safe-to-stop time.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { admin, dig, parseDig, sleep, startDns, type RunningDns } from './helpers.js';

const INTERVAL_MS = 150;

/** A stoppable TCP listener standing in for the servers behind one address. */
class Backend {
  server: net.Server | undefined;
  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  async start(): Promise<void> {
    const server = net.createServer((s) => s.destroy());
    server.listen(this.port, this.host);
    await once(server, 'listening');
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

async function freePort(host: string): Promise<number> {
  const s = net.createServer().listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function addresses(port: number, name: string): Promise<string[]> {
  const out = parseDig(await dig(port, name, 'A'));
  return out.answer.map((l) => l.split('\t').at(-1)!).sort();
}

/** Polls until the answer equals `expected`, for at most `ms`; returns how long it took. */
async function waitForAnswer(port: number, name: string, expected: string[], ms = 5000): Promise<number> {
  const start = Date.now();
  let last: string[] = [];
  while (Date.now() - start < ms) {
    last = await addresses(port, name);
    if (JSON.stringify(last) === JSON.stringify(expected)) return Date.now() - start;
    await sleep(50);
  }
  assert.fail(`${name}: expected ${expected.join(',')} within ${ms} ms, last answer ${last.join(',')}`);
}

describe('scaleout dns health-aware answers', () => {
  let dns: RunningDns;
  let port: number;
  const backends = new Map<string, Backend>();

  before(async () => {
    port = await freePort('127.0.0.2');
    for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.6']) {
      const b = new Backend(host, port);
      await b.start();
      backends.set(host, b);
    }
    dns = await startDns([
      '--zone',
      'example.test',
      '--record',
      'www 5 A 127.0.0.2 127.0.0.3 127.0.0.4',
      // 127.0.0.5 has no server: the primary is down from the start.
      '--record',
      'fo 5 A 127.0.0.5 | 127.0.0.6',
      '--health-port',
      String(port),
      '--health-interval',
      String(INTERVAL_MS),
      '--health-timeout',
      '200',
      '--healthy-threshold',
      '2',
      '--unhealthy-threshold',
      '2',
      '--drain-grace',
      '2',
      '--admin',
      '127.0.0.1:0',
    ]);
  });

  after(async () => {
    await dns.stop();
    for (const b of backends.values()) await b.stop();
  });

  it('answers with every healthy address', async () => {
    await waitForAnswer(dns.port, 'www.example.test', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('withholds an address within the unhealthy threshold after its server stops, and restores it', async () => {
    await backends.get('127.0.0.3')!.stop();
    const tookDown = await waitForAnswer(dns.port, 'www.example.test', ['127.0.0.2', '127.0.0.4']);
    // 2 failed checks at 150 ms: well under 2 s even on a busy machine.
    assert.ok(tookDown < 2000, `withheld after ${tookDown} ms`);
    await dns.waitForLog(/target 127\.0\.0\.3 is unhealthy/);
    await backends.get('127.0.0.3')!.start();
    const tookUp = await waitForAnswer(dns.port, 'www.example.test', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    assert.ok(tookUp < 2000, `back after ${tookUp} ms`);
  });

  it('fails open below the threshold (1 of 3 up < 50%) and says so in the logs', async () => {
    await backends.get('127.0.0.2')!.stop();
    await backends.get('127.0.0.3')!.stop();
    // First 127.0.0.2 or .3 goes down alone (2 of 3 up: answer the two), then both: fail open.
    await dns.waitForLog(
      /^fail-open: 1 of 3 addresses of www\.example\.test\.\/A default up, answering with all 3$/,
    );
    assert.deepEqual(await addresses(dns.port, 'www.example.test'), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    const status = JSON.parse((await admin(dns.adminPort!, '/status')).body) as {
      recordSets: Array<{ name: string; pools: Array<{ failOpen: boolean; up: number }> }>;
    };
    const www = status.recordSets.find((s) => s.name === 'www.example.test./A')!;
    assert.equal(www.pools[0]!.failOpen, true);
    assert.equal(www.pools[0]!.up, 1);
    await backends.get('127.0.0.2')!.start();
    await backends.get('127.0.0.3')!.start();
    await dns.waitForLog(/^fail-open ended/);
    await waitForAnswer(dns.port, 'www.example.test', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('fails over to the secondary while the primary is down, and back', async () => {
    await waitForAnswer(dns.port, 'fo.example.test', ['127.0.0.6']);
    const primary = new Backend('127.0.0.5', port);
    backends.set('127.0.0.5', primary);
    await primary.start();
    await waitForAnswer(dns.port, 'fo.example.test', ['127.0.0.5']);
    await primary.stop();
    await waitForAnswer(dns.port, 'fo.example.test', ['127.0.0.6']);
  });

  it('drains an address: withdrawn at once, safe to stop after TTL + grace', async () => {
    const before = Date.now();
    const res = await admin(dns.adminPort!, '/drain?recordSet=www.example.test&address=127.0.0.4', 'POST');
    assert.equal(res.status, 200);
    const body = JSON.parse(res.body) as { safeToStopAt: string };
    const safeAt = Date.parse(body.safeToStopAt);
    // TTL 5 s + grace 2 s.
    assert.ok(safeAt >= before + 7000 && safeAt <= Date.now() + 7000, body.safeToStopAt);
    assert.deepEqual(await addresses(dns.port, 'www.example.test'), ['127.0.0.2', '127.0.0.3']);
    type Addr = {
      address: string;
      state: string;
      draining: boolean;
      safeToStop: boolean;
      safeToStopAt: string;
    };
    const status = JSON.parse((await admin(dns.adminPort!, '/status')).body) as {
      recordSets: Array<{ name: string; pools: Array<{ addresses: Addr[] }> }>;
    };
    const drained = status.recordSets
      .find((s) => s.name === 'www.example.test./A')!
      .pools[0]!.addresses.find((a) => a.address === '127.0.0.4')!;
    assert.equal(drained.state, 'draining');
    assert.equal(drained.draining, true);
    assert.equal(drained.safeToStop, false);
    assert.equal(drained.safeToStopAt, body.safeToStopAt);
    // Draining is not "down": the others stay above the threshold, no fail-open.
    assert.equal(
      (await admin(dns.adminPort!, '/undrain?recordSet=www.example.test&address=127.0.0.4', 'POST')).status,
      200,
    );
    assert.deepEqual(await addresses(dns.port, 'www.example.test'), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    const unknown = await admin(dns.adminPort!, '/drain?recordSet=www.example.test&address=10.9.9.9', 'POST');
    assert.equal(unknown.status, 404);
  });
});
