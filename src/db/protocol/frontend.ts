// Client (frontend) messages: the startup packet and a strict structural check of every message type
// a client may send. A message that fails the check never reaches a server: the session answers with
// an ErrorResponse (08P01 protocol_violation) and closes.
import { FramingError } from './framer.js';

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
/** PostgreSQL's own limit for the startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10_000;

export type StartupPacket =
  | { kind: 'startup'; params: Map<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number };

/** Length of the startup packet at the head of `buf`, or undefined if fewer than 4 bytes. Throws on a bad length. */
export function startupPacketLength(buf: Buffer): number | undefined {
  if (buf.length < 4) return undefined;
  const len = buf.readInt32BE(0);
  if (len < 8) throw new FramingError(`invalid startup packet length ${len}`);
  if (len > MAX_STARTUP_PACKET) throw new FramingError(`startup packet of ${len} bytes is too large`);
  return len;
}

export function parseStartupPacket(pkt: Buffer): StartupPacket {
  const code = pkt.readInt32BE(4);
  if (code === SSL_REQUEST && pkt.length === 8) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST && pkt.length === 8) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST && pkt.length === 16) {
    return { kind: 'cancel', pid: pkt.readInt32BE(8), secret: pkt.readInt32BE(12) };
  }
  if (code !== PROTOCOL_3_0) {
    throw new FramingError(
      `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0`,
      '0A000',
    );
  }
  const params = new Map<string, string>();
  let pos = 8;
  while (true) {
    if (pos >= pkt.length) throw new FramingError('startup packet is not terminated');
    if (pkt[pos] === 0) {
      if (pos !== pkt.length - 1) throw new FramingError('startup packet has trailing bytes');
      break;
    }
    const keyEnd = pkt.indexOf(0, pos);
    if (keyEnd < 0) throw new FramingError('startup packet has an unterminated parameter name');
    const valEnd = pkt.indexOf(0, keyEnd + 1);
    if (valEnd < 0) throw new FramingError('startup packet has an unterminated parameter value');
    params.set(pkt.toString('utf8', pos, keyEnd), pkt.toString('utf8', keyEnd + 1, valEnd));
    pos = valEnd + 1;
  }
  if (!params.get('user'))
    throw new FramingError('no PostgreSQL user name specified in startup packet', '28000');
  return { kind: 'startup', params };
}

/** Reads NUL-terminated strings and integers from a message body, failing on any overrun. */
export class BodyReader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly end: number,
  ) {}
  cstring(): string {
    const start = this.pos;
    this.skipCstring();
    return this.buf.toString('utf8', start, this.pos - 1);
  }
  /** Steps over a NUL-terminated string without decoding it (validation only). */
  skipCstring(): void {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new FramingError('invalid message format: unterminated string');
    this.pos = nul + 1;
  }
  int16(): number {
    if (this.pos + 2 > this.end) throw new FramingError('invalid message format: truncated');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    if (this.pos + 4 > this.end) throw new FramingError('invalid message format: truncated');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new FramingError('invalid message format: truncated');
    this.pos += n;
  }
  done(): void {
    if (this.pos !== this.end)
      throw new FramingError('invalid message format: length does not match contents');
  }
}

/**
 * Checks that a client message of a known type is well formed (every count and length inside it adds
 * up to the message length). Throws FramingError otherwise. `start`/`end` delimit the whole message.
 */
export function validateFrontendMessage(type: number, buf: Buffer, start: number, end: number): void {
  if (type === 0x51) {
    // Query, the hot path: one string, its terminator the last byte and nowhere before.
    if (end - start < 6 || buf[end - 1] !== 0 || buf.indexOf(0, start + 5) !== end - 1) {
      throw new FramingError('invalid message format: Query must be one NUL-terminated string');
    }
    return;
  }
  const r = new BodyReader(buf, start + 5, end);
  switch (type) {
    case 0x50: {
      // P Parse
      r.skipCstring();
      r.skipCstring();
      const n = r.int16();
      if (n < 0) throw new FramingError('invalid message format: negative parameter count');
      r.skip(4 * n);
      return r.done();
    }
    case 0x42: {
      // B Bind
      r.skipCstring();
      r.skipCstring();
      const nf = r.int16();
      if (nf < 0) throw new FramingError('invalid message format: negative format count');
      r.skip(2 * nf);
      const np = r.int16();
      if (np < 0) throw new FramingError('invalid message format: negative parameter count');
      for (let i = 0; i < np; i++) {
        const len = r.int32();
        if (len < -1) throw new FramingError('invalid message format: negative parameter length');
        if (len > 0) r.skip(len);
      }
      const nr = r.int16();
      if (nr < 0) throw new FramingError('invalid message format: negative result format count');
      r.skip(2 * nr);
      return r.done();
    }
    case 0x44: // D Describe
    case 0x43: {
      // C Close
      const kind = buf[start + 5];
      if (end - start < 7 || (kind !== 0x53 && kind !== 0x50)) {
        throw new FramingError('invalid message format: Describe/Close target must be S or P');
      }
      r.skip(1);
      r.skipCstring();
      return r.done();
    }
    case 0x45: // E Execute
      r.skipCstring();
      r.int32();
      return r.done();
    case 0x53: // S Sync
    case 0x48: // H Flush
    case 0x58: // X Terminate
    case 0x63: // c CopyDone
      return r.done();
    case 0x64: // d CopyData
      return;
    case 0x66: // f CopyFail
      r.skipCstring();
      return r.done();
    case 0x46: {
      // F FunctionCall
      r.int32();
      const nf = r.int16();
      if (nf < 0) throw new FramingError('invalid message format: negative format count');
      r.skip(2 * nf);
      const na = r.int16();
      if (na < 0) throw new FramingError('invalid message format: negative argument count');
      for (let i = 0; i < na; i++) {
        const len = r.int32();
        if (len > 0) r.skip(len);
      }
      r.int16();
      return r.done();
    }
    case 0x70: // p password / SASL (checked by the auth code)
      return;
    default:
      throw new FramingError(
        `invalid frontend message type ${type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : type}`,
      );
  }
}

export function readCString(buf: Buffer, pos: number): { value: string; next: number } {
  const nul = buf.indexOf(0, pos);
  return { value: buf.toString('utf8', pos, nul), next: nul + 1 };
}
