// DNS wire format: a small, strict decoder for queries and a compressing writer for responses.
//
// Why by hand and not dns-packet on the hot path: dns-packet decodes every packet into fresh objects
// and re-encodes every answer from scratch, which costs more than everything else a query needs.
// A server only has to read the header, one question and an OPT record, and it can pre-encode its
// answers once (see answer-cache.ts). dns-packet still encodes the rdata of A/AAAA/TXT/SRV when a zone
// is loaded (zone-file.ts), and it is the independent decoder the tests check our answers with.
//
// Names are handled as "keys": the uncompressed wire form with ASCII letters lowercased, as a latin1
// string (e.g. "\x03www\x07example\x04test\x00"). Keys compare case-insensitively by construction,
// hash fast in a Map, and stripping the first label is one slice.

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(TYPE).map(([name, code]) => [code, name]),
);

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

export const RCODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(RCODE).map(([name, code]) => [code, name]),
);

export const CLASS_IN = 1;
export const OPCODE_QUERY = 0;
export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const OPT_CODE_ECS = 8;
export const MAX_NAME_LENGTH = 255;

/** EDNS Client Subnet (RFC 7871) as sent by the resolver. */
export interface ClientSubnet {
  family: 1 | 2;
  sourcePrefix: number;
  /** The address bytes as sent (ceil(sourcePrefix / 8) of them). */
  address: Buffer;
}

export interface Edns {
  udpSize: number;
  version: number;
  ecs: ClientSubnet | undefined;
}

export interface Query {
  id: number;
  /** The query's flags word (we copy RD and the opcode from it). */
  flags: number;
  opcode: number;
  qnameKey: string;
  /** Offset just past the question section: bytes 12..questionEnd are echoed in the answer. */
  questionEnd: number;
  qtype: number;
  qclass: number;
  edns: Edns | undefined;
}

/** Why a packet was not decoded. `drop`: no answer at all; `formerr`: answer FORMERR with this ID. */
export type DecodeFailure =
  { kind: 'drop'; reason: string } | { kind: 'formerr'; id: number; reason: string };

export type DecodeResult = { ok: true; query: Query } | ({ ok: false } & DecodeFailure);

// One scratch buffer per process for lowercasing names: the decoder is synchronous, so reuse is safe.
const scratch = Buffer.allocUnsafe(MAX_NAME_LENGTH + 1);

/**
 * Reads the question name at `offset` (no compression pointers allowed: the question is the first
 * name in a query, so a pointer could only point back into the header). Returns the key and the end
 * offset, or a reason string.
 */
function readQuestionName(buf: Buffer, offset: number): { key: string; end: number } | string {
  let pos = offset;
  let len = 0;
  while (true) {
    if (pos >= buf.length) return 'question name runs past the end of the packet';
    const labelLen = buf[pos]!;
    if (labelLen === 0) {
      scratch[len++] = 0;
      return { key: scratch.toString('latin1', 0, len), end: pos + 1 };
    }
    if (labelLen > 63) return labelLen >= 0xc0 ? 'compression pointer in question name' : 'bad label type';
    if (pos + 1 + labelLen > buf.length) return 'question label runs past the end of the packet';
    if (len + 1 + labelLen + 1 > MAX_NAME_LENGTH) return 'question name longer than 255 bytes';
    scratch[len++] = labelLen;
    for (let i = 1; i <= labelLen; i++) {
      const c = buf[pos + i]!;
      scratch[len++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    pos += 1 + labelLen;
  }
}

/**
 * Skips a name anywhere in a message. A pointer ends a name, so skipping never follows one and
 * cannot loop; only the bytes are bounds-checked.
 */
function skipName(buf: Buffer, offset: number): number {
  let pos = offset;
  let total = 0;
  while (true) {
    if (pos >= buf.length) return -1;
    const b = buf[pos]!;
    if (b === 0) return pos + 1;
    if (b >= 0xc0) return pos + 2 <= buf.length ? pos + 2 : -1;
    if (b > 63) return -1;
    total += b + 1;
    if (total > MAX_NAME_LENGTH) return -1;
    pos += b + 1;
  }
}

/**
 * Decodes a query: header, exactly one question, and the additional section's OPT record.
 * Answer and authority records (legal, but unused in a QUERY) are skipped with bounds checks, so a
 * count that lies about the packet's content gives FORMERR instead of a read past the end.
 */
const u16 = (buf: Buffer, pos: number) => (buf[pos]! << 8) | buf[pos + 1]!;

export function decodeQuery(buf: Buffer): DecodeResult {
  if (buf.length < 12) return { ok: false, kind: 'drop', reason: 'shorter than a DNS header' };
  const id = u16(buf, 0);
  const flags = u16(buf, 2);
  if (flags & FLAG_QR) return { ok: false, kind: 'drop', reason: 'is a response, not a query' };
  const opcode = (flags >> 11) & 0xf;
  const qdcount = u16(buf, 4);
  const ancount = u16(buf, 6);
  const nscount = u16(buf, 8);
  const arcount = u16(buf, 10);
  if (qdcount !== 1) return { ok: false, kind: 'formerr', id, reason: `question count ${qdcount}` };
  const name = readQuestionName(buf, 12);
  if (typeof name === 'string') return { ok: false, kind: 'formerr', id, reason: name };
  if (name.end + 4 > buf.length) return { ok: false, kind: 'formerr', id, reason: 'question truncated' };
  const qtype = u16(buf, name.end);
  const qclass = u16(buf, name.end + 2);
  const questionEnd = name.end + 4;
  let edns: Edns | undefined;
  if (ancount + nscount + arcount > 0) {
    let pos = questionEnd;
    for (let i = 0; i < ancount + nscount; i++) {
      pos = skipRecord(buf, pos);
      if (pos < 0) return { ok: false, kind: 'formerr', id, reason: 'record count larger than the packet' };
    }
    for (let i = 0; i < arcount; i++) {
      const start = pos;
      pos = skipRecord(buf, pos);
      if (pos < 0) return { ok: false, kind: 'formerr', id, reason: 'record count larger than the packet' };
      if (buf[start] === 0 && u16(buf, start + 1) === TYPE.OPT) {
        if (edns) return { ok: false, kind: 'formerr', id, reason: 'more than one OPT record' };
        const opt = readOpt(buf, start);
        if (typeof opt === 'string') return { ok: false, kind: 'formerr', id, reason: opt };
        edns = opt;
      }
    }
  }
  return {
    ok: true,
    query: { id, flags, opcode, qnameKey: name.key, questionEnd, qtype, qclass, edns },
  };
}

function skipRecord(buf: Buffer, offset: number): number {
  const pos = skipName(buf, offset);
  if (pos < 0 || pos + 10 > buf.length) return -1;
  const end = pos + 10 + u16(buf, pos + 8);
  return end <= buf.length ? end : -1;
}

/** Reads an OPT record whose root name is at `offset` (already bounds-checked by skipRecord). */
function readOpt(buf: Buffer, offset: number): Edns | string {
  const udpSize = u16(buf, offset + 3);
  const version = buf[offset + 6]!;
  const rdlen = u16(buf, offset + 9);
  let pos = offset + 11;
  const end = pos + rdlen;
  let ecs: ClientSubnet | undefined;
  while (pos < end) {
    if (pos + 4 > end) return 'EDNS option truncated';
    const code = u16(buf, pos);
    const len = u16(buf, pos + 2);
    if (pos + 4 + len > end) return 'EDNS option longer than the OPT record';
    if (code === OPT_CODE_ECS) {
      const parsed = readClientSubnet(buf, pos + 4, len);
      if (typeof parsed === 'string') return parsed;
      ecs = parsed;
    }
    pos += 4 + len;
  }
  return { udpSize, version, ecs };
}

function readClientSubnet(buf: Buffer, offset: number, len: number): ClientSubnet | string {
  if (len < 4) return 'EDNS client subnet too short';
  const family = u16(buf, offset);
  const sourcePrefix = buf[offset + 2]!;
  const maxPrefix = family === 1 ? 32 : family === 2 ? 128 : -1;
  if (maxPrefix < 0) return `EDNS client subnet family ${family}`;
  if (sourcePrefix > maxPrefix) return 'EDNS client subnet prefix too long';
  if (len - 4 !== Math.ceil(sourcePrefix / 8)) return 'EDNS client subnet address length mismatch';
  return {
    family: family as 1 | 2,
    sourcePrefix,
    address: Buffer.from(buf.subarray(offset + 4, offset + len)),
  };
}

// ---------------------------------------------------------------------------------------------
// Names as text

/** "www.Example.test." or "www.example.test" → key. Supports \. and \DDD escapes. Throws on bad names. */
export function nameToKey(text: string): string {
  if (text === '.' || text === '') return '\x00';
  const labels: number[][] = [];
  let label: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '.') {
      if (label.length === 0) throw new Error(`empty label in name "${text}"`);
      labels.push(label);
      label = [];
    } else if (ch === '\\') {
      const digits = /^\d{3}/.exec(text.slice(i + 1));
      if (digits) {
        const v = Number(digits[0]);
        if (v > 255) throw new Error(`bad escape \\${digits[0]} in name "${text}"`);
        label.push(v);
        i += 3;
      } else {
        if (i + 1 >= text.length) throw new Error(`dangling backslash in name "${text}"`);
        label.push(text.charCodeAt(++i) & 0xff);
      }
    } else {
      const c = text.charCodeAt(i);
      if (c > 0x7e || c <= 0x20) throw new Error(`character "${ch}" not allowed in name "${text}"`);
      label.push(c);
    }
  }
  if (label.length > 0) labels.push(label);
  let key = '';
  for (const l of labels) {
    if (l.length > 63) throw new Error(`label longer than 63 bytes in name "${text}"`);
    key += String.fromCharCode(l.length);
    for (const c of l) key += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  key += '\x00';
  if (key.length > MAX_NAME_LENGTH) throw new Error(`name "${text}" is longer than 255 bytes`);
  return key;
}

/** key → "www.example.test." (dotted, with escapes for unusual bytes). */
export function keyToName(key: string): string {
  if (key === '\x00') return '.';
  let out = '';
  let pos = 0;
  while (pos < key.length) {
    const len = key.charCodeAt(pos);
    if (len === 0) break;
    for (let i = 1; i <= len; i++) {
      const c = key.charCodeAt(pos + i);
      const ch = key[pos + i]!;
      if (ch === '.' || ch === '\\') out += '\\' + ch;
      else if (c <= 0x20 || c > 0x7e) out += '\\' + String(c).padStart(3, '0');
      else out += ch;
    }
    out += '.';
    pos += len + 1;
  }
  return out;
}

/** The parent of a key ("\x03www\x04test\x00" → "\x04test\x00"), or undefined for the root. */
export function parentKey(key: string): string | undefined {
  const len = key.charCodeAt(0);
  return len === 0 ? undefined : key.slice(len + 1);
}

export function isSubdomain(key: string, apexKey: string): boolean {
  if (!key.endsWith(apexKey)) return false;
  if (key.length === apexKey.length) return true;
  // The match must start on a label boundary: walk the labels from the start.
  let pos = 0;
  const target = key.length - apexKey.length;
  while (pos < target) pos += key.charCodeAt(pos) + 1;
  return pos === target;
}

// ---------------------------------------------------------------------------------------------
// Writing records

/** Rdata as a sequence of raw bytes and (compressible) names, so the writer can compress names. */
export type RdataPart = Buffer | { name: string; compress: boolean };

export interface RR {
  ownerKey: string;
  type: number;
  ttl: number;
  rdata: RdataPart[];
}

/**
 * Appends records to a buffer with RFC 1035 name compression. The compression table maps a name
 * key to the offset where that name (as a whole) was written; seeding it with the question name's
 * suffixes lets answers point into the question, as other servers do.
 */
export class MessageWriter {
  buf: Buffer;
  length: number;
  private readonly names = new Map<string, number>();

  constructor(start: number, capacity = 65535) {
    this.buf = Buffer.alloc(capacity);
    this.length = start;
  }

  /** Records that the name `key` is written at `offset` (all its suffixes too). */
  seedName(key: string, offset: number): void {
    let k: string | undefined = key;
    let off = offset;
    while (k && k !== '\x00') {
      if (off < 0x4000 && !this.names.has(k)) this.names.set(k, off);
      off += k.charCodeAt(0) + 1;
      k = parentKey(k);
    }
  }

  offsetOf(key: string): number | undefined {
    return this.names.get(key);
  }

  writeName(key: string, compress = true): void {
    let k = key;
    while (k !== '\x00') {
      const known = compress ? this.names.get(k) : undefined;
      if (known !== undefined) {
        this.ensure(2);
        this.buf.writeUInt16BE(0xc000 | known, this.length);
        this.length += 2;
        return;
      }
      const labelLen = k.charCodeAt(0);
      if (compress && this.length < 0x4000) this.names.set(k, this.length);
      this.ensure(labelLen + 1);
      this.buf.write(k.slice(0, labelLen + 1), this.length, 'latin1');
      this.length += labelLen + 1;
      k = k.slice(labelLen + 1);
    }
    this.ensure(1);
    this.buf[this.length++] = 0;
  }

  writeRR(rr: RR): void {
    this.writeName(rr.ownerKey);
    this.writeRRTail(rr);
  }

  /** Everything after the owner name: type, class, TTL, rdlength, rdata. */
  writeRRTail(rr: RR): void {
    this.ensure(10);
    this.buf.writeUInt16BE(rr.type, this.length);
    this.buf.writeUInt16BE(CLASS_IN, this.length + 2);
    this.buf.writeUInt32BE(rr.ttl >>> 0, this.length + 4);
    const rdlenAt = this.length + 8;
    this.length += 10;
    for (const part of rr.rdata) {
      if (Buffer.isBuffer(part)) {
        this.ensure(part.length);
        part.copy(this.buf, this.length);
        this.length += part.length;
      } else {
        this.writeName(part.name, part.compress);
      }
    }
    this.buf.writeUInt16BE(this.length - rdlenAt - 2, rdlenAt);
  }

  bytes(from: number): Buffer {
    return Buffer.from(this.buf.subarray(from, this.length));
  }

  private ensure(n: number): void {
    if (this.length + n > this.buf.length) throw new RangeError('DNS message longer than 65535 bytes');
  }
}

/** Encodes one record's tail (type..rdata) with names uncompressed; used for per-address answers. */
export function encodeRRTail(rr: Omit<RR, 'ownerKey'>): Buffer {
  const w = new MessageWriter(0, 2048);
  w.writeRRTail({ ...rr, ownerKey: '\x00' });
  return w.bytes(0);
}

/** Wire bytes of a name key (uncompressed). */
export function keyToWire(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}
