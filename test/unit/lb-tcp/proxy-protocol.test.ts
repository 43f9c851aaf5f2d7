import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  encodeProxyV1,
  encodeProxyV2,
  normalizeIp,
  ipv6ToBytes,
  PROXY_V2_SIGNATURE,
} from '../../../src/lb/tcp/proxy-protocol.js';

const v4 = { sourceIp: '192.0.2.10', sourcePort: 51234, destinationIp: '198.51.100.7', destinationPort: 443 };
const v6 = { sourceIp: '2001:db8::1', sourcePort: 40000, destinationIp: 'fe80::a:b', destinationPort: 5432 };

describe('PROXY protocol v1', () => {
  it('writes the TCP4 line', () => {
    assert.equal(encodeProxyV1(v4).toString(), 'PROXY TCP4 192.0.2.10 198.51.100.7 51234 443\r\n');
  });

  it('writes the TCP6 line', () => {
    assert.equal(encodeProxyV1(v6).toString(), 'PROXY TCP6 2001:db8::1 fe80::a:b 40000 5432\r\n');
  });

  it('unmaps IPv4-mapped addresses from a dual-stack socket, and maps IPv4 when the families differ', () => {
    const mapped = { ...v4, sourceIp: '::ffff:192.0.2.10', destinationIp: '::FFFF:198.51.100.7' };
    assert.equal(encodeProxyV1(mapped).toString(), 'PROXY TCP4 192.0.2.10 198.51.100.7 51234 443\r\n');
    const mixed = { ...v4, destinationIp: '::1' };
    assert.equal(encodeProxyV1(mixed).toString(), 'PROXY TCP6 ::ffff:192.0.2.10 ::1 51234 443\r\n');
  });

  it('says UNKNOWN when an address is missing or not an IP', () => {
    assert.equal(encodeProxyV1({ ...v4, sourceIp: '' }).toString(), 'PROXY UNKNOWN\r\n');
    assert.equal(encodeProxyV1({ ...v4, destinationIp: 'example.com' }).toString(), 'PROXY UNKNOWN\r\n');
    assert.equal(encodeProxyV1({ ...v4, sourcePort: -1 }).toString(), 'PROXY UNKNOWN\r\n');
  });

  it('never exceeds the 107-byte maximum of the spec', () => {
    const worst = {
      sourceIp: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      destinationIp: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      sourcePort: 65535,
      destinationPort: 65535,
    };
    assert.equal(encodeProxyV1(worst).length, 104);
    assert.ok(encodeProxyV1(worst).length <= 107);
  });
});

describe('PROXY protocol v2', () => {
  it('encodes TCP over IPv4 byte for byte', () => {
    const expected = Buffer.concat([
      PROXY_V2_SIGNATURE,
      Buffer.from([0x21, 0x11, 0x00, 12]),
      Buffer.from([192, 0, 2, 10, 198, 51, 100, 7]),
      Buffer.from([0xc8, 0x22, 0x01, 0xbb]), // 51234, 443
    ]);
    assert.deepEqual(encodeProxyV2(v4), expected);
  });

  it('encodes TCP over IPv6 byte for byte', () => {
    const header = encodeProxyV2(v6);
    assert.equal(header.length, 16 + 36);
    assert.deepEqual(
      header.subarray(0, 16),
      Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x21, 0, 36])]),
    );
    assert.equal(header.subarray(16, 32).toString('hex'), '20010db8000000000000000000000001');
    assert.equal(header.subarray(32, 48).toString('hex'), 'fe80' + '0'.repeat(20) + '000a000b');
    assert.equal(header.readUInt16BE(48), 40000);
    assert.equal(header.readUInt16BE(50), 5432);
  });

  it('falls back to UNSPEC with no address block when an address is unknown', () => {
    assert.deepEqual(
      encodeProxyV2({ ...v4, sourceIp: 'nope' }),
      Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x00, 0x00, 0x00])]),
    );
  });

  it('round-trips any IPv4 pair and ports through the fixed layout', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.nat(65535), fc.nat(65535), (src, dst, sp, dp) => {
        const h = encodeProxyV2({ sourceIp: src, destinationIp: dst, sourcePort: sp, destinationPort: dp });
        assert.equal(h.length, 28);
        assert.equal([...h.subarray(16, 20)].join('.'), src);
        assert.equal([...h.subarray(20, 24)].join('.'), dst);
        assert.equal(h.readUInt16BE(24), sp);
        assert.equal(h.readUInt16BE(26), dp);
      }),
    );
  });
});

describe('IPv6 text to bytes', () => {
  it('handles compression at the start, middle and end, and an embedded IPv4 tail', () => {
    assert.equal(ipv6ToBytes('::').toString('hex'), '0'.repeat(32));
    assert.equal(ipv6ToBytes('::1').toString('hex'), '0'.repeat(31) + '1');
    assert.equal(ipv6ToBytes('1::').toString('hex'), '0001' + '0'.repeat(28));
    assert.equal(ipv6ToBytes('1:2::7:8').toString('hex'), '00010002' + '0'.repeat(16) + '00070008');
    assert.equal(ipv6ToBytes('::ffff:192.0.2.1').toString('hex'), '0'.repeat(20) + 'ffffc0000201');
    assert.throws(() => ipv6ToBytes('1.2.3.4'), /not an IPv6 address/);
  });

  it('agrees with the WHATWG URL parser on any address, compressed or not', () => {
    const bytesArb = fc.uint8Array({ minLength: 16, maxLength: 16 });
    fc.assert(
      fc.property(bytesArb, fc.boolean(), (bytes, sparse) => {
        const b = Buffer.from(bytes);
        if (sparse) b.fill(0, 4, 12); // make runs of zeros so "::" compression shows up
        const full = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
        const compressed = new URL(`http://[${full}]/`).hostname.slice(1, -1);
        assert.deepEqual(ipv6ToBytes(full), b);
        assert.deepEqual(ipv6ToBytes(compressed), b);
      }),
      { numRuns: 500 },
    );
  });
  it('reads every textual form fast-check generates (dotted tails, any compression) as URL does', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
        assert.deepEqual(ipv6ToBytes(text), ipv6ToBytes(canonical));
      }),
      { numRuns: 500 },
    );
  });
});

describe('normalizeIp', () => {
  it('unmaps IPv4-mapped IPv6, drops zones and rejects non-addresses', () => {
    assert.equal(normalizeIp('::ffff:127.0.0.2'), '127.0.0.2');
    assert.equal(normalizeIp('fe80::1%eth0'), 'fe80::1');
    assert.equal(normalizeIp('::1'), '::1');
    assert.equal(normalizeIp('10.1.2.3'), '10.1.2.3');
    assert.equal(normalizeIp(undefined), undefined);
    assert.equal(normalizeIp('localhost'), undefined);
    assert.equal(normalizeIp('::ffff:not-v4'), undefined);
  });
});
