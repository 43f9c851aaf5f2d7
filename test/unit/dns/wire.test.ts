// The query decoder and the responder on hostile input: property tests (fast-check) over random and
// mutated packets. Nothing may throw; every answer must be a well-formed DNS message.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import { silentLogger } from '../../../src/core/log.js';
import { decodeQuery, keyToName, nameToKey, isSubdomain } from '../../../src/dns/wire.js';
import { DnsMetrics } from '../../../src/dns/metrics.js';
import { Responder } from '../../../src/dns/responder.js';
import { AddressRecordSet } from '../../../src/dns/record-set.js';
import { RateLimiter, DEFAULT_RRL } from '../../../src/dns/rrl.js';
import { Zone, ZoneSet } from '../../../src/dns/zone.js';
import { parseZoneFile } from '../../../src/dns/zone-file.js';

const ZONE = `$ORIGIN example.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 60
@ NS ns1
@ MX 10 mail
ns1 A 127.0.0.1
alias CNAME www
loop1 CNAME loop2
loop2 CNAME loop1
txt TXT "a" "b"
`;

function makeResponder(): Responder {
  const parsed = parseZoneFile(ZONE, 'test.zone');
  const zone = new Zone(parsed.originKey, parsed.records);
  zone.addRecordSet(
    new AddressRecordSet(
      {
        ownerKey: nameToKey('www.example.test.'),
        type: 'A',
        ttl: 30,
        policy: 'simple',
        addresses: [1, 2, 3].map((i) => ({ address: `127.0.0.${i + 1}`, weight: 1 })),
        upThreshold: 0.5,
        maxAnswers: 8,
      },
      silentLogger,
    ),
    'test',
  );
  const zones = new ZoneSet();
  zones.add(zone);
  return new Responder(
    zones,
    new DnsMetrics(),
    { udpPayloadSize: 1232, allowTransfer: [] },
    new RateLimiter({ ...DEFAULT_RRL, responsesPerSecond: 0 }),
  );
}

const validQueries = fc
  .record({
    id: fc.integer({ min: 0, max: 65535 }),
    name: fc.constantFrom(
      'www.example.test',
      'WWW.example.TEST',
      'alias.example.test',
      'nope.example.test',
      'example.test',
      'loop1.example.test',
      'txt.example.test',
      'x.org',
    ),
    type: fc.constantFrom('A', 'AAAA', 'MX', 'TXT', 'SOA', 'NS', 'CNAME', 'ANY', 'AXFR', 'SRV'),
    edns: fc.boolean(),
  })
  .map(({ id, name, type, edns }) =>
    dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
      additionals: edns
        ? [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: 4096,
              flags: 0,
              options: [],
            } as unknown as dnsPacket.Answer,
          ]
        : [],
    }),
  );

/** A valid query with some bytes overwritten, cut short or extended: the decoder's worst case. */
const mutatedQueries = fc
  .tuple(
    validQueries,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat()),
    fc.uint8Array({ maxLength: 20 }),
  )
  .map(([q, edits, cut, tail]) => {
    const buf = Buffer.concat([q, Buffer.from(tail)]);
    for (const [pos, val] of edits) buf[pos % buf.length] = val;
    return cut === null ? buf : buf.subarray(0, cut % (buf.length + 1));
  });

function checkReply(query: Buffer, reply: Buffer | Buffer[] | null): void {
  if (reply === null) return;
  for (const msg of Array.isArray(reply) ? reply : [reply]) {
    assert.ok(msg.length >= 12 && msg.length <= 65535);
    assert.equal(msg.readUInt16BE(0), query.readUInt16BE(0), 'reply carries the query ID');
    assert.ok(msg.readUInt16BE(2) & 0x8000, 'QR set');
    dnsPacket.decode(msg); // must be a well-formed message
  }
}

describe('dns wire decoder and responder under fuzzing', () => {
  it('never throws on random bytes, and answers only with well-formed messages', () => {
    const responder = makeResponder();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const buf = Buffer.from(bytes);
        checkReply(buf, responder.respond(buf, '192.0.2.1', false));
        checkReply(buf, responder.respond(buf, '192.0.2.1', true));
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on mutated valid queries; answers decode with dns-packet', () => {
    const responder = makeResponder();
    fc.assert(
      fc.property(mutatedQueries, (buf) => {
        checkReply(buf, responder.respond(buf, '192.0.2.1', false));
      }),
      { numRuns: 5000 },
    );
  });

  it('answers valid queries the way dns-packet reads them', () => {
    const responder = makeResponder();
    fc.assert(
      fc.property(validQueries, (buf) => {
        const reply = responder.respond(buf, '192.0.2.1', false) as Buffer;
        const q = dnsPacket.decode(buf);
        const r = dnsPacket.decode(reply);
        assert.equal(r.id, q.id);
        assert.equal(r.questions![0]!.name, q.questions![0]!.name);
        assert.equal(r.questions![0]!.type, q.questions![0]!.type);
        assert.equal(r.flag_rd, true, 'RD copied');
        assert.equal(r.flag_ra, false, 'never RA');
        assert.equal((r.additionals ?? []).length, (q.additionals ?? []).length, 'OPT echoed iff sent');
      }),
      { numRuns: 500 },
    );
  });

  it('rejects pointer loops, lying counts and truncation with the right verdict', () => {
    const q = dnsPacket.encode({
      type: 'query',
      id: 7,
      questions: [{ name: 'a.example.test', type: 'A', class: 'IN' }],
    });
    assert.equal(decodeQuery(q.subarray(0, 11)).ok, false);
    const short = decodeQuery(q.subarray(0, 11));
    assert.ok(!short.ok && short.kind === 'drop');
    const selfPointer = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    const sp = decodeQuery(selfPointer);
    assert.ok(!sp.ok && sp.kind === 'formerr' && /pointer/.test(sp.reason));
    const lying = Buffer.from(q);
    lying.writeUInt16BE(3, 10);
    const ly = decodeQuery(lying);
    assert.ok(!ly.ok && ly.kind === 'formerr' && /count/.test(ly.reason));
    // An answer record whose name is a pointer loop is skipped safely (skipping never follows pointers).
    const withLoop = Buffer.concat([q, Buffer.from([0xc0, q.length, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])]);
    withLoop.writeUInt16BE(1, 6);
    assert.equal(decodeQuery(withLoop).ok, true);
    const longLabel = Buffer.from(q);
    longLabel[12] = 64;
    assert.ok(!decodeQuery(longLabel).ok);
  });

  it('reads EDNS version and client subnet, and refuses a malformed one', () => {
    const q = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ name: 'www.example.test', type: 'A', class: 'IN' }],
      additionals: [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: 1400,
          flags: 0,
          options: [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: '10.1.2.0' }],
        } as dnsPacket.Answer,
      ],
    });
    const d = decodeQuery(q);
    assert.ok(d.ok);
    assert.equal(d.query.edns!.udpSize, 1400);
    assert.equal(d.query.edns!.ecs!.sourcePrefix, 24);
    assert.deepEqual([...d.query.edns!.ecs!.address], [10, 1, 2]);
    const bad = Buffer.from(q);
    bad[bad.length - 5] = 33; // source prefix 33 > 32
    assert.ok(!decodeQuery(bad).ok);
  });

  it('converts names and checks zone membership on label boundaries', () => {
    const key = nameToKey('WWW.Example.test.');
    assert.equal(keyToName(key), 'www.example.test.');
    assert.ok(isSubdomain(key, nameToKey('example.test.')));
    assert.ok(!isSubdomain(nameToKey('wwwexample.test.'), nameToKey('example.test.')));
    assert.ok(!isSubdomain(nameToKey('xample.test.'), nameToKey('example.test.')));
    assert.throws(() => nameToKey('a'.repeat(64) + '.test.'), /63/);
    assert.equal(keyToName(nameToKey('a\\.b.test.')), 'a\\.b.test.');
  });
});
