import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ScramClient, ScramServer, scramVerifierFromPassword } from '../../../src/db/auth/scram.js';
import { formatLsn, insertLsnToRecordEnd, parseLsn } from '../../../src/db/lsn.js';
import { FramingError, MessageFramer } from '../../../src/db/protocol/framer.js';
import { parseStartupPacket, validateFrontendMessage } from '../../../src/db/protocol/frontend.js';
import { MessageWriter, query, startupMessage } from '../../../src/db/protocol/messages.js';

describe('message framer', () => {
  it('yields the same messages however the stream is split', () => {
    const msg = fc.record({
      type: fc.integer({ min: 0x41, max: 0x7a }),
      body: fc.uint8Array({ maxLength: 40 }),
    });
    fc.assert(
      fc.property(
        fc.array(msg, { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 20 }),
        (msgs, cuts) => {
          const encoded = msgs.map((m) =>
            new MessageWriter().bytes(Buffer.from(m.body)).finish(String.fromCharCode(m.type)),
          );
          const stream = Buffer.concat(encoded);
          const framer = new MessageFramer(1 << 20);
          const seen: Buffer[] = [];
          let pos = 0;
          for (const cut of [...cuts, stream.length]) {
            const next = Math.min(stream.length, pos + cut);
            framer.push(stream.subarray(pos, next), (_t, b, s, e) =>
              seen.push(Buffer.from(b.subarray(s, e))),
            );
            pos = next;
            if (pos >= stream.length) break;
          }
          assert.deepEqual(seen, encoded);
          assert.equal(framer.pendingBytes, 0);
        },
      ),
    );
  });

  it('refuses lengths below 4 and above the limit', () => {
    const f = new MessageFramer(100);
    assert.throws(() => f.push(Buffer.from([0x51, 0, 0, 0, 3]), () => {}), FramingError);
    assert.throws(
      () => new MessageFramer(100).push(Buffer.from([0x51, 0, 0, 1, 0]), () => {}),
      /exceeds the limit/,
    );
  });
});

describe('frontend message validation', () => {
  const check = (b: Buffer): void => validateFrontendMessage(b[0]!, b, 0, b.length);
  it('accepts well-formed messages', () => {
    check(query('SELECT 1'));
    check(new MessageWriter().cstring('s').cstring('SELECT $1').int16(1).int32(23).finish('P'));
    check(
      new MessageWriter()
        .cstring('')
        .cstring('s')
        .int16(0)
        .int16(1)
        .int32(1)
        .bytes(Buffer.from('7'))
        .int16(0)
        .finish('B'),
    );
    check(new MessageWriter().int8(0x53).cstring('s').finish('D'));
    check(new MessageWriter().cstring('').int32(0).finish('E'));
    check(new MessageWriter().finish('S'));
  });
  it('refuses counts and lengths that do not add up, and unknown types', () => {
    assert.throws(
      () => check(new MessageWriter().cstring('s').cstring('q').int16(2).int32(23).finish('P')),
      FramingError,
    );
    assert.throws(
      () => check(new MessageWriter().cstring('').cstring('s').int16(0).int16(1).int32(50).finish('B')),
      FramingError,
    );
    assert.throws(() => check(new MessageWriter().int8(0x58).cstring('s').finish('D')), FramingError);
    assert.throws(() => check(new MessageWriter().int32(1).finish('S')), FramingError);
    assert.throws(() => check(new MessageWriter().bytes(Buffer.from('abc')).finish('Q')), FramingError);
    assert.throws(() => check(new MessageWriter().finish('z')), /invalid frontend message type/);
  });
  it('parses startup packets', () => {
    const p = parseStartupPacket(startupMessage({ user: 'u', database: 'd' }));
    assert.equal(p.kind, 'startup');
    assert.equal(p.kind === 'startup' && p.params.get('database'), 'd');
    assert.equal(parseStartupPacket(new MessageWriter().int32(80877103).finish(0)).kind, 'ssl');
    assert.throws(
      () => parseStartupPacket(new MessageWriter().int32(196608).cstring('user').finish(0)),
      FramingError,
    );
  });
});

describe('SCRAM-SHA-256', () => {
  it('client and server agree with the right password, not with a wrong one', () => {
    const verifier = scramVerifierFromPassword('pw');
    for (const [password, ok] of [
      ['pw', true],
      ['nope', false],
    ] as const) {
      const server = new ScramServer(verifier);
      const cl = new ScramClient(password);
      const serverFirst = server.first(cl.first());
      const final = server.final(cl.final(serverFirst));
      assert.equal(final !== undefined, ok);
      if (final) assert.equal(cl.verify(final), true);
    }
  });
});

describe('LSN', () => {
  it('parses, formats and compares', () => {
    assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
    assert.equal(formatLsn(parseLsn('0/3000028')!), '0/3000028');
    assert.equal(parseLsn('nope'), undefined);
    assert.equal(insertLsnToRecordEnd(parseLsn('0/3000028')!), parseLsn('0/3000000'));
    assert.equal(insertLsnToRecordEnd(parseLsn('0/3002018')!), parseLsn('0/3002000'));
    assert.equal(insertLsnToRecordEnd(parseLsn('0/3002050')!), parseLsn('0/3002050'));
  });
});
