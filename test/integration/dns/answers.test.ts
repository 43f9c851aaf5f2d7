// `scaleout dns` answering real clients: dig (Debian dnsutils) and node's own resolver, over UDP and
// TCP, for every record type, negative answers, truncation, EDNS, and malformed input.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import dnsPacket from 'dns-packet';
import {
  dig,
  FIXTURES,
  frame,
  parseDig,
  query,
  startDns,
  tcpConnect,
  udpExchange,
  type RunningDns,
} from './helpers.js';

describe('scaleout dns answers', () => {
  let dns: RunningDns;
  let resolver: Resolver;

  before(async () => {
    dns = await startDns([
      '--zone-file',
      `${FIXTURES}all-types.zone`,
      '--zone',
      'example.test',
      '--record',
      'pool A 127.0.0.2 127.0.0.3 127.0.0.4',
      '--zone',
      'second.test',
      '--record',
      'www 60 A 127.0.0.20',
      '--allow-transfer',
      '127.0.0.1',
    ]);
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dns.port}`]);
  });

  after(async () => {
    await dns.stop();
  });

  it('logs where it listens, the zones and the record sets at startup', async () => {
    await dns.waitForLog(/^record set pool/);
    const msgs = dns.logs.map((l) => String(l.msg));
    assert.ok(msgs.some((m) => /^dns listening on udp 127\.0\.0\.1:\d+ and tcp 127\.0\.0\.1:\d+$/.test(m)));
    assert.ok(msgs.some((m) => m.startsWith('zone example.test. loaded')));
    assert.ok(msgs.some((m) => m.startsWith('zone second.test. loaded')));
    assert.ok(msgs.some((m) => m.startsWith('record set pool.example.test./A: simple, 3 addresses')));
  });

  it('answers every record type with AA set (dig)', async () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        'example.test',
        'SOA',
        /SOA\tns1\.example\.test\. hostmaster\.example\.test\. 2024010101 7200 3600 1209600 60/,
      ],
      ['example.test', 'NS', /NS\tns1\.example\.test\./],
      ['example.test', 'MX', /MX\t10 mail\.example\.test\./],
      ['example.test', 'TXT', /TXT\t"v=spf1 -all"/],
      ['www.example.test', 'A', /A\t127\.0\.0\.2/],
      ['www.example.test', 'AAAA', /AAAA\t::1/],
      ['alias.example.test', 'CNAME', /CNAME\twww\.example\.test\./],
      ['_sip._tcp.example.test', 'SRV', /SRV\t10 60 5060 sip\.example\.test\./],
      ['sip.example.test', 'A', /600\tIN\tA\t127\.0\.0\.11/],
    ];
    for (const [name, type, re] of cases) {
      for (const transport of ['+notcp', '+tcp']) {
        const out = parseDig(await dig(dns.port, '+norec', transport, name, type));
        assert.equal(out.status, 'NOERROR', `${name} ${type} ${transport}`);
        assert.ok(out.flags.includes('aa'), `${name} ${type}: AA flag`);
        assert.ok(!out.flags.includes('ra'), 'no recursion available');
        assert.ok(
          out.answer.some((l) => re.test(l)),
          `${name} ${type} ${transport}: ${out.answer.join(' | ')}`,
        );
      }
    }
  });

  it('chases a CNAME inside the zone and stops at one that leaves it', async () => {
    const inZone = parseDig(await dig(dns.port, 'alias.example.test', 'A'));
    assert.equal(inZone.answer.length, 2);
    assert.match(inZone.answer[0]!, /CNAME\twww\.example\.test\./);
    assert.match(inZone.answer[1]!, /^www\.example\.test\.\t300\tIN\tA\t127\.0\.0\.2$/);
    const outside = parseDig(await dig(dns.port, 'ext.example.test', 'A'));
    assert.equal(outside.status, 'NOERROR');
    assert.deepEqual(outside.answer.length, 1);
    assert.match(outside.answer[0]!, /CNAME\twww\.example\.org\./);
  });

  it('tells NXDOMAIN from NODATA, with the SOA (negative TTL) in authority', async () => {
    const nx = parseDig(await dig(dns.port, 'nope.example.test', 'A'));
    assert.equal(nx.status, 'NXDOMAIN');
    assert.ok(nx.flags.includes('aa'));
    assert.equal(nx.answer.length, 0);
    // RFC 2308: the SOA's TTL is min(SOA TTL 300, minimum 60).
    assert.match(nx.authority[0]!, /^example\.test\.\t+60\tIN\tSOA\t/);
    const nodata = parseDig(await dig(dns.port, 'www.example.test', 'MX'));
    assert.equal(nodata.status, 'NOERROR');
    assert.equal(nodata.answer.length, 0);
    assert.match(nodata.authority[0]!, /SOA/);
    // An empty non-terminal exists: NODATA, not NXDOMAIN.
    const ent = parseDig(await dig(dns.port, 'a.b.example.test', 'A'));
    assert.equal(ent.status, 'NOERROR');
    assert.equal(ent.answer.length, 0);
    const deep = parseDig(await dig(dns.port, 'deep.a.b.example.test', 'TXT'));
    assert.equal(deep.answer.length, 1);
  });

  it('refuses names outside its zones and does not recurse', async () => {
    const out = parseDig(await dig(dns.port, '+rec', 'www.example.org', 'A'));
    assert.equal(out.status, 'REFUSED');
    assert.ok(!out.flags.includes('aa'));
    assert.ok(!out.flags.includes('ra'));
    const second = parseDig(await dig(dns.port, 'www.second.test', 'A'));
    assert.match(second.answer[0]!, /60\tIN\tA\t127\.0\.0\.20/);
  });

  it('matches names case-insensitively and echoes the question as asked', async () => {
    const out = await dig(dns.port, 'WwW.ExAmPlE.TeSt', 'A');
    const p = parseDig(out);
    assert.equal(p.status, 'NOERROR');
    assert.match(p.answer[0]!, /^WwW\.ExAmPlE\.TeSt\.\t300\tIN\tA\t127\.0\.0\.2$/);
  });

  it('answers the node resolver for every type and negative answer', async () => {
    assert.deepEqual(await resolver.resolve4('www.example.test'), ['127.0.0.2']);
    assert.deepEqual(await resolver.resolve6('www.example.test'), ['::1']);
    assert.deepEqual(await resolver.resolveMx('example.test'), [
      { exchange: 'mail.example.test', priority: 10 },
    ]);
    assert.deepEqual(await resolver.resolveTxt('example.test'), [['v=spf1 -all']]);
    assert.deepEqual(await resolver.resolveNs('example.test'), ['ns1.example.test']);
    assert.deepEqual(await resolver.resolveCname('alias.example.test'), ['www.example.test']);
    assert.deepEqual(await resolver.resolveSrv('_sip._tcp.example.test'), [
      { name: 'sip.example.test', port: 5060, priority: 10, weight: 60 },
    ]);
    const soa = await resolver.resolveSoa('example.test');
    assert.equal(soa.nsname, 'ns1.example.test');
    assert.equal(soa.minttl, 60);
    assert.deepEqual((await resolver.resolve4('pool.example.test')).sort(), [
      '127.0.0.2',
      '127.0.0.3',
      '127.0.0.4',
    ]);
    await assert.rejects(resolver.resolve4('nope.example.test'), { code: 'ENOTFOUND' });
    await assert.rejects(resolver.resolveMx('www.example.test'), { code: 'ENODATA' });
    await assert.rejects(resolver.resolve4('www.example.org'), { code: 'EREFUSED' });
  });

  it('truncates an answer too big for UDP (TC, no records) and dig retries over TCP', async () => {
    const udpOnly = await dig(dns.port, '+noedns', '+ignore', 'big.example.test', 'TXT');
    const p = parseDig(udpOnly);
    assert.ok(p.flags.includes('tc'), `flags: ${p.flags.join(' ')}`);
    assert.equal(p.answer.length, 0);
    const retried = await dig(dns.port, '+noedns', 'big.example.test', 'TXT');
    assert.match(retried, /Truncated, retrying in TCP mode/);
    assert.equal(parseDig(retried).answer.length, 15);
    // With EDNS the client offers 1232 bytes here (dig's default), which holds all 15 strings.
    const edns = parseDig(await dig(dns.port, '+bufsize=1232', 'big.example.test', 'TXT'));
    assert.ok(!edns.flags.includes('tc'));
    assert.equal(edns.answer.length, 15);
    // A truncated EDNS answer keeps its OPT record.
    const small = await dig(dns.port, '+bufsize=512', '+ignore', 'big.example.test', 'TXT');
    assert.ok(parseDig(small).flags.includes('tc'));
    assert.match(small, /OPT PSEUDOSECTION/);
  });

  it('echoes EDNS with payload 1232, answers BADVERS for an unknown version', async () => {
    const out = await dig(dns.port, '+edns=0', '+bufsize=4096', 'www.example.test', 'A');
    assert.match(out, /EDNS: version: 0, flags:; udp: 1232/);
    const bad = await dig(dns.port, '+edns=1', '+noednsneg', 'www.example.test', 'A');
    assert.match(bad, /status: BADVERS/);
    const plain = await dig(dns.port, '+noedns', 'www.example.test', 'A');
    assert.doesNotMatch(plain, /OPT PSEUDOSECTION/);
  });

  it('answers pipelined queries on one TCP connection, in order', async () => {
    const conn = await tcpConnect(dns.port);
    const names = ['www.example.test', 'nope.example.test', 'alias.example.test', 'example.test'];
    const packets = names.map((n, i) =>
      dnsPacket.encode({ type: 'query', id: 100 + i, questions: [{ name: n, type: 'A', class: 'IN' }] }),
    );
    conn.socket.write(Buffer.concat(packets.map(frame)));
    for (let i = 0; i < names.length; i++) {
      const reply = await conn.nextReply();
      assert.ok(reply, `reply ${i}`);
      const decoded = dnsPacket.decode(reply);
      assert.equal(decoded.id, 100 + i);
      assert.equal(decoded.questions![0]!.name, names[i]);
    }
    conn.socket.destroy();
  });

  it('transfers a zone (AXFR) to an allowed client over TCP', async () => {
    const out = await dig(dns.port, 'example.test', 'AXFR');
    const lines = out.split('\n').filter((l) => /\tIN\t/.test(l));
    assert.match(lines[0]!, /SOA/);
    assert.match(lines.at(-1)!, /SOA/);
    assert.ok(lines.some((l) => /^pool\.example\.test\.\t\d+\tIN\tA\t127\.0\.0\.3$/.test(l)));
    assert.ok(lines.some((l) => /^big\.example\.test\./.test(l)));
  });

  it('drops or FORMERRs malformed packets and keeps answering everyone', async () => {
    const good = query('www.example.test', 'A');
    const pointerLoop = Buffer.from(good);
    pointerLoop.writeUInt16BE(0, 10);
    // A question name that is a pointer to itself.
    const looped = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    const lyingCounts = Buffer.from(good);
    lyingCounts.writeUInt16BE(5, 6); // claims 5 answers that are not there
    const twoQuestions = Buffer.from(good);
    twoQuestions.writeUInt16BE(2, 4);
    const cases: Array<[string, Buffer, 'drop' | 'FORMERR']> = [
      ['empty', Buffer.alloc(0), 'drop'],
      ['truncated header', good.subarray(0, 7), 'drop'],
      ['truncated question', good.subarray(0, 20), 'FORMERR'],
      ['pointer loop in the question', looped, 'FORMERR'],
      ['counts that lie', lyingCounts, 'FORMERR'],
      ['two questions', twoQuestions, 'FORMERR'],
      [
        'a response, not a query',
        Buffer.concat([good.subarray(0, 2), Buffer.from([0x84, 0]), good.subarray(4)]),
        'drop',
      ],
    ];
    for (const [what, packet, expected] of cases) {
      const reply = await udpExchange(dns.port, packet, expected === 'drop' ? 300 : 1000);
      if (expected === 'drop') assert.equal(reply, undefined, what);
      else {
        assert.ok(reply, `${what}: expected FORMERR`);
        assert.equal(reply.readUInt16BE(2) & 0xf, 1, `${what}: rcode`);
        assert.equal(reply.readUInt16BE(0), packet.readUInt16BE(0), `${what}: id`);
      }
    }
    // Oversized and too-short TCP frames close that connection only.
    const bad = await tcpConnect(dns.port);
    bad.socket.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
    await bad.closed;
    const short = await tcpConnect(dns.port);
    short.socket.write(Buffer.from([0, 3, 1, 2, 3]));
    await short.closed;
    const ok = parseDig(await dig(dns.port, '+tcp', 'www.example.test', 'A'));
    assert.equal(ok.status, 'NOERROR');
    assert.equal(dns.proc.exitCode, null);
  });

  it('serves /metrics-free deployments too: no admin endpoint unless asked', () => {
    assert.equal(dns.adminPort, undefined);
  });
});
