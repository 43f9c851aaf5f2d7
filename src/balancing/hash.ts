// MurmurHash3 (x86, 32-bit) of a JS string, read as its UTF-16 code units.
//
// Hand-written on purpose: the hash runs once per request on the hot path, and the npm packages for
// murmur/xxhash either want a Buffer (an encode + allocation per request) or are unmaintained, while
// node:crypto offers only cryptographic hashes (~1 µs and an object per call). Reading two UTF-16 code
// units as one little-endian 32-bit block makes this exactly MurmurHash3_x86_32 of the string's
// UTF-16LE bytes (the tests check that against a byte-wise reference and published vectors), with no
// encoding step and no allocation.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixBlock(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** Final avalanche of MurmurHash3: spreads every input bit over the whole 32-bit result. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3_x86_32 of `key`'s UTF-16LE encoding; an unsigned 32-bit integer. */
export function murmur3(key: string, seed = 0): number {
  const length = key.length;
  const pairsEnd = length & ~1;
  let h = seed | 0;
  let i = 0;
  for (; i < pairsEnd; i += 2) {
    h ^= mixBlock(key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < length) h ^= mixBlock(key.charCodeAt(i));
  h ^= length * 2; // length in bytes
  return fmix32(h);
}
