import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { murmur3 } from '../../../src/balancing/hash.js';

/** Straightforward byte-wise MurmurHash3_x86_32, checked against published vectors below. */
function murmur3Bytes(bytes: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = bytes.length >> 2;
  const mix = (k: number) => Math.imul((Math.imul(k, c1) << 15) | (Math.imul(k, c1) >>> 17), c2);
  for (let b = 0; b < blocks; b++) {
    const i = b * 4;
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= mix(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    for (let b = rest - 1; b >= 0; b--) k = (k << 8) | bytes[tail + b]!;
    h ^= mix(k);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

test('the byte-wise reference matches published MurmurHash3_x86_32 vectors', () => {
  const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
  assert.equal(murmur3Bytes(ascii(''), 0), 0);
  assert.equal(murmur3Bytes(ascii(''), 1), 0x514e28b7);
  assert.equal(murmur3Bytes(ascii(''), 0xffffffff), 0x81f16f39);
  assert.equal(murmur3Bytes(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), 0x76293b50);
  assert.equal(murmur3Bytes(new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0), 0xf55b516b);
  assert.equal(murmur3Bytes(new Uint8Array([0x21, 0x43, 0x65]), 0), 0x7e4a8634);
  assert.equal(murmur3Bytes(new Uint8Array([0x21, 0x43]), 0), 0xa0f7b07a);
  assert.equal(murmur3Bytes(new Uint8Array([0x21]), 0), 0x72661cf4);
  assert.equal(murmur3Bytes(ascii('test'), 0), 0xba6bd213);
  assert.equal(murmur3Bytes(ascii('Hello, world!'), 0x4d2), 0xfaf6cdb3);
  assert.equal(murmur3Bytes(ascii('The quick brown fox jumps over the lazy dog'), 0), 0x2e4ff723);
});

test('murmur3(string) is MurmurHash3_x86_32 of the UTF-16LE bytes, for any string and seed', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.integer({ min: 0, max: 0xffffffff }),
      (s, seed) => {
        const bytes = new Uint8Array(Buffer.from(s, 'utf16le'));
        assert.equal(murmur3(s, seed), murmur3Bytes(bytes, seed));
      },
    ),
    { numRuns: 500 },
  );
});

test('murmur3 returns unsigned 32-bit integers and spreads similar keys', () => {
  const buckets = new Array<number>(16).fill(0);
  for (let i = 0; i < 16000; i++) {
    const h = murmur3(`192.168.${i >> 8}.${i & 255}`);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32, `${h}`);
    buckets[h >>> 28]!++;
  }
  for (const b of buckets) assert.ok(b > 850 && b < 1150, `bucket of ${b} out of 16000 is not near 1000`);
});
