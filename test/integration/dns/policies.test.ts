// Every routing policy's spread over many queries, through the real server (config file `dns:`
// section), and the admin endpoint's live view of the spread against the configured weights.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { admin, dig, parseDig, startDns, type RunningDns } from './helpers.js';

const CONFIG = `
dns:
  rateLimit: { responsesPerSecond: 0 }
  zones:
    - name: example.test
      recordSets:
        - { name: rr, addresses: [127.0.0.2, 127.0.0.3, 127.0.0.4] }
        - name: mv
          policy: multivalue
          addresses: [${Array.from({ length: 10 }, (_, i) => `127.0.1.${i + 1}`).join(', ')}]
        - name: w
          policy: weighted
          addresses: [{ address: 127.0.0.2, weight: 1 }, { address: 127.0.0.3, weight: 3 }]
        - { name: fo, policy: failover, addresses: [127.0.0.2], secondary: [127.0.0.9] }
        - name: src
          policy: source
          addresses: [127.0.0.2]
          sources:
            - { subnets: [10.0.0.0/8], addresses: [127.0.0.10] }
            - { subnets: [127.0.0.0/8], addresses: [127.0.0.127] }
        - { name: v6, type: AAAA, addresses: ['::1', '::2'] }
`;

/** Sends `count` A queries for `name` from one UDP socket and returns each answer's addresses. */
async function ask(port: number, name: string, count: number, type: 'A' | 'AAAA' = 'A'): Promise<string[][]> {
  const socket = dgram.createSocket('udp4');
  const answers: string[][] = [];
  try {
    for (let i = 0; i < count; i++) {
      const reply = new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply')), 2000);
        socket.once('message', (m) => {
          clearTimeout(timer);
          resolve(m);
        });
      });
      socket.send(
        dnsPacket.encode({ type: 'query', id: i, questions: [{ name, type, class: 'IN' }] }),
        port,
        '127.0.0.1',
      );
      const decoded = dnsPacket.decode(await reply);
      answers.push((decoded.answers ?? []).map((a) => String((a as { data: unknown }).data)));
    }
  } finally {
    socket.close();
  }
  return answers;
}

function firstCounts(answers: string[][]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a[0]!, (counts.get(a[0]!) ?? 0) + 1);
  return counts;
}

describe('scaleout dns routing policies', () => {
  let dns: RunningDns;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'scaleout-dns-'));
    writeFileSync(join(dir, 'scaleout.yaml'), CONFIG);
    dns = await startDns(['--config', join(dir, 'scaleout.yaml'), '--admin', '127.0.0.1:0']);
    await dns.waitForLog(/^record set v6/);
  });

  after(async () => {
    await dns.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('simple: every address in each answer, the order rotating evenly', async () => {
    const answers = await ask(dns.port, 'rr.example.test', 300);
    for (const a of answers) assert.deepEqual([...a].sort(), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    const counts = firstCounts(answers);
    for (const addr of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) assert.equal(counts.get(addr), 100, addr);
    // Each answer is a rotation of the same cycle.
    const cycle = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    for (const a of answers) {
      const start = cycle.indexOf(a[0]!);
      assert.deepEqual(a, [...cycle.slice(start), ...cycle.slice(0, start)]);
    }
  });

  it('multivalue: up to 8 distinct healthy addresses, shuffled', async () => {
    const answers = await ask(dns.port, 'mv.example.test', 500);
    for (const a of answers) {
      assert.equal(a.length, 8);
      assert.equal(new Set(a).size, 8);
    }
    const counts = firstCounts(answers);
    assert.equal(counts.size, 10);
    // Uniform would be 50 each; a shuffle this far off (p < 1e-6) means it is not shuffling.
    for (const [addr, n] of counts) assert.ok(n >= 20 && n <= 90, `${addr} first ${n} times`);
    assert.ok(new Set(answers.map((a) => a.join())).size > 400, 'orders vary');
  });

  it('weighted: one address per answer, in proportion to the weights', async () => {
    const answers = await ask(dns.port, 'w.example.test', 400);
    for (const a of answers) assert.equal(a.length, 1);
    const counts = firstCounts(answers);
    assert.equal(counts.get('127.0.0.3'), 300);
    assert.equal(counts.get('127.0.0.2'), 100);
  });

  it('failover: the primary while it is up', async () => {
    const answers = await ask(dns.port, 'fo.example.test', 20);
    for (const a of answers) assert.deepEqual(a, ['127.0.0.2']);
  });

  it('source: by EDNS client subnet, else by the resolver address', async () => {
    const byResolver = parseDig(await dig(dns.port, 'src.example.test', 'A'));
    assert.match(byResolver.answer.join(), /127\.0\.0\.127/);
    const ecs = await dig(dns.port, '+subnet=10.1.2.0/24', 'src.example.test', 'A');
    assert.match(parseDig(ecs).answer.join(), /127\.0\.0\.10$/);
    assert.match(ecs, /CLIENT-SUBNET: 10\.1\.2\.0\/24\/24/);
    const other = parseDig(await dig(dns.port, '+subnet=192.0.2.0/24', 'src.example.test', 'A'));
    assert.match(other.answer.join(), /127\.0\.0\.2$/);
    // A policy that ignores the subnet says so with scope 0.
    const unscoped = await dig(dns.port, '+subnet=10.1.2.0/24', 'rr.example.test', 'A');
    assert.match(unscoped, /CLIENT-SUBNET: 10\.1\.2\.0\/24\/0/);
  });

  it('AAAA record sets rotate too', async () => {
    const answers = await ask(dns.port, 'v6.example.test', 10, 'AAAA');
    assert.deepEqual(
      firstCounts(answers),
      new Map([
        ['::1', 5],
        ['::2', 5],
      ]),
    );
  });

  it('shows the actual spread next to the expected share in /status and /metrics', async () => {
    const status = JSON.parse((await admin(dns.adminPort!, '/status')).body) as {
      recordSets: Array<{
        name: string;
        pools: Array<{
          addresses: Array<{
            address: string;
            expectedShare: number;
            answers: { share: number; total: number };
          }>;
        }>;
      }>;
    };
    const w = status.recordSets.find((s) => s.name === 'w.example.test./A')!;
    const byAddr = new Map(w.pools[0]!.addresses.map((a) => [a.address, a]));
    assert.equal(byAddr.get('127.0.0.3')!.expectedShare, 0.75);
    assert.equal(byAddr.get('127.0.0.3')!.answers.share, 0.75);
    assert.equal(byAddr.get('127.0.0.2')!.answers.total, 100);
    const metrics = (await admin(dns.adminPort!, '/metrics')).body;
    // 300 from the simple-policy test plus the one ECS query of the source test.
    assert.match(
      metrics,
      /scaleout_dns_answers_total\{record_set="w\.example\.test\.\/A",pool="default",address="127\.0\.0\.3"\} 300/,
    );
    assert.match(
      metrics,
      /scaleout_dns_queries_total\{zone="example\.test\.",name="rr\.example\.test\.",type="A",rcode="NOERROR"\} 301/,
    );
  });
});
