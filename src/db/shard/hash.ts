// The shard of a key, computed exactly as PostgreSQL's hash partitioning places a row:
// `PARTITION BY HASH (key)` with `MODULUS n` puts a row in the partition whose remainder is
// hash(key) mod n, where hash is the type's "extended" hash function (seeded with PostgreSQL's
// partition seed) folded through hash_combine64. Matching it lets `satisfies_hash_partition()` on any
// shard check placement, and lets a shard be turned into (or checked as) a real hash partition.
//
// Written by hand because no npm package reproduces PostgreSQL's hash functions; the algorithm
// (Bob Jenkins' lookup3 as PostgreSQL's src/common/hashfn.c uses it, little-endian word order) is a
// public fact, the code is ours. Checked against the server in test/integration/db-shard/placement.

import type { ShardKeyType } from '../config.js';

/** HASH_PARTITION_SEED in PostgreSQL's partition bound code. */
const PARTITION_SEED = 0x7a5b22367996dcfdn;
const SEED_HI = Number(PARTITION_SEED >> 32n) >>> 0;
const SEED_LO = Number(PARTITION_SEED & 0xffffffffn) >>> 0;
const MASK64 = (1n << 64n) - 1n;

const rot = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/** The lookup3 state, as three unsigned 32-bit words. */
class State {
  constructor(
    public a: number,
    public b: number,
    public c: number,
  ) {}

  mix(): void {
    let { a, b, c } = this;
    a = (a - c) >>> 0;
    a = (a ^ rot(c, 4)) >>> 0;
    c = (c + b) >>> 0; // prettier-ignore
    b = (b - a) >>> 0;
    b = (b ^ rot(a, 6)) >>> 0;
    a = (a + c) >>> 0; // prettier-ignore
    c = (c - b) >>> 0;
    c = (c ^ rot(b, 8)) >>> 0;
    b = (b + a) >>> 0; // prettier-ignore
    a = (a - c) >>> 0;
    a = (a ^ rot(c, 16)) >>> 0;
    c = (c + b) >>> 0; // prettier-ignore
    b = (b - a) >>> 0;
    b = (b ^ rot(a, 19)) >>> 0;
    a = (a + c) >>> 0; // prettier-ignore
    c = (c - b) >>> 0;
    c = (c ^ rot(b, 4)) >>> 0;
    b = (b + a) >>> 0; // prettier-ignore
    this.a = a;
    this.b = b;
    this.c = c;
  }

  final(): void {
    let { a, b, c } = this;
    c = (c ^ b) >>> 0;
    c = (c - rot(b, 14)) >>> 0; // prettier-ignore
    a = (a ^ c) >>> 0;
    a = (a - rot(c, 11)) >>> 0; // prettier-ignore
    b = (b ^ a) >>> 0;
    b = (b - rot(a, 25)) >>> 0; // prettier-ignore
    c = (c ^ b) >>> 0;
    c = (c - rot(b, 16)) >>> 0; // prettier-ignore
    a = (a ^ c) >>> 0;
    a = (a - rot(c, 4)) >>> 0; // prettier-ignore
    b = (b ^ a) >>> 0;
    b = (b - rot(a, 14)) >>> 0; // prettier-ignore
    c = (c ^ b) >>> 0;
    c = (c - rot(b, 24)) >>> 0; // prettier-ignore
    this.a = a;
    this.b = b;
    this.c = c;
  }

  /** The seed is hashed as a first 12-byte block (high word, low word, zero). */
  seed(): void {
    this.a = (this.a + SEED_HI) >>> 0;
    this.b = (this.b + SEED_LO) >>> 0;
    this.mix();
  }

  result(): bigint {
    return (BigInt(this.b) << 32n) | BigInt(this.c);
  }
}

const INIT = 0x9e3779b9 + 3923095;

/** hash_bytes_extended with the partition seed. */
export function hashBytesExtended(k: Uint8Array): bigint {
  let len = k.length;
  const init = (INIT + len) >>> 0;
  const s = new State(init, init, init);
  s.seed();
  const word = (i: number): number =>
    (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24)) >>> 0;
  let p = 0;
  while (len >= 12) {
    s.a = (s.a + word(p)) >>> 0;
    s.b = (s.b + word(p + 4)) >>> 0;
    s.c = (s.c + word(p + 8)) >>> 0;
    s.mix();
    p += 12;
    len -= 12;
  }
  // The tail, little-endian, into a (bytes 0-3), b (4-7) and c (8-10, shifted up one byte: the
  // lowest byte of c is left for the length, already in the initial state).
  for (let i = 0; i < len; i++) {
    const byte = k[p + i]!;
    if (i < 4) s.a = (s.a + byte * 2 ** (8 * i)) >>> 0;
    else if (i < 8) s.b = (s.b + byte * 2 ** (8 * (i - 4))) >>> 0;
    else s.c = (s.c + byte * 2 ** (8 * (i - 7))) >>> 0;
  }
  s.final();
  return s.result();
}

/** hash_bytes_uint32_extended with the partition seed. */
export function hashUint32Extended(k: number): bigint {
  const init = (INIT + 4) >>> 0;
  const s = new State(init, init, init);
  s.seed();
  s.a = (s.a + (k >>> 0)) >>> 0;
  s.final();
  return s.result();
}

/** hash_combine64(0, h): how the row hash folds in its (only) key column. */
function combine64(acc: bigint, h: bigint): bigint {
  return (acc ^ ((h + 0x49a0f4dd15e5a8e3n + ((acc << 54n) & MASK64) + (acc >> 7n)) & MASK64)) & MASK64;
}

/** hashint8extended: the two halves are folded so that equal int4 and int8 values hash alike. */
function hashInt8(v: bigint): bigint {
  const u = BigInt.asUintN(64, v);
  let lo = Number(u & 0xffffffffn) >>> 0;
  const hi = Number(u >> 32n) >>> 0;
  lo = (lo ^ (v >= 0n ? hi : ~hi >>> 0)) >>> 0;
  return hashUint32Extended(lo);
}

/** A shard key value, already checked against its column type (see parseKey). */
export type KeyValue = bigint | number | string | Uint8Array;

/** The 64-bit partition row hash of one key. */
export function partitionHash(type: ShardKeyType, value: KeyValue): bigint {
  switch (type) {
    case 'bigint':
      return combine64(0n, hashInt8(value as bigint));
    case 'int':
    case 'smallint':
      return combine64(0n, hashUint32Extended(Number(value) | 0));
    case 'text':
      return combine64(0n, hashBytesExtended(Buffer.from(value as string, 'utf8')));
    case 'uuid':
      return combine64(0n, hashBytesExtended(value as Uint8Array));
  }
}

/** The shard (hash partition remainder) of a key among `shards` shards. */
export function shardOf(type: ShardKeyType, value: KeyValue, shards: number): number {
  return Number(partitionHash(type, value) % BigInt(shards));
}

export class KeyError extends Error {}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  bigint: [-(2n ** 63n), 2n ** 63n - 1n],
  int: [-(2n ** 31n), 2n ** 31n - 1n],
  smallint: [-(2n ** 15n), 2n ** 15n - 1n],
};
const UUID_TEXT = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

/**
 * A key given as text (a literal, a text-format parameter, a hint) checked against the key type, as
 * the server's input function would: a wrong value is refused before anything is sent.
 */
export function parseKey(type: ShardKeyType, text: string): KeyValue {
  switch (type) {
    case 'bigint':
    case 'int':
    case 'smallint': {
      const t = text.trim();
      if (!/^[+-]?\d+$/.test(t)) throw new KeyError(`invalid input syntax for type ${type}: "${text}"`);
      const v = BigInt(t);
      const [lo, hi] = INT_RANGE[type]!;
      if (v < lo || v > hi) throw new KeyError(`value "${text}" is out of range for type ${type}`);
      return type === 'bigint' ? v : Number(v);
    }
    case 'text':
      return text;
    case 'uuid': {
      const m = UUID_TEXT.exec(text.trim());
      if (!m) throw new KeyError(`invalid input syntax for type uuid: "${text}"`);
      return Buffer.from(m.slice(1).join(''), 'hex');
    }
  }
}

/** A key sent as a binary-format parameter (int2/int4/int8 by length, uuid 16 bytes, text as is). */
export function parseBinaryKey(type: ShardKeyType, bytes: Buffer): KeyValue {
  if (type === 'text') return bytes.toString('utf8');
  if (type === 'uuid') {
    if (bytes.length !== 16) throw new KeyError(`a binary uuid has 16 bytes, got ${bytes.length}`);
    return Buffer.from(bytes);
  }
  let v: bigint;
  if (bytes.length === 8) v = bytes.readBigInt64BE(0);
  else if (bytes.length === 4) v = BigInt(bytes.readInt32BE(0));
  else if (bytes.length === 2) v = BigInt(bytes.readInt16BE(0));
  else throw new KeyError(`a binary integer key has 2, 4 or 8 bytes, got ${bytes.length}`);
  return parseKey(type, v.toString());
}
