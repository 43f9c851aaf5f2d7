import { HttpParseError } from './head-parser.js';

// Incremental scanner for chunked message bodies. The proxy forwards chunked bytes verbatim (no
// re-encoding); it only needs to know where the message ends and to refuse broken framing, since a
// bad chunk size is how request smuggling through chunked bodies works.

const enum State {
  Size,
  SizeSpace,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

const MAX_SIZE_DIGITS = 12; // 16^12 bytes per chunk is far beyond any real body.
const MAX_TRAILER_BYTES = 16 * 1024;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

export class ChunkedScanner {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private trailerBytes = 0;

  constructor(private readonly errorStatus: 400 | 502 = 400) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Scans `buf` from `start`; `payload`, if given, is called with each piece of chunk data. Returns the index just past the end of the message, or -1 when the whole
   * buffer belongs to the body and more is needed. Throws HttpParseError on malformed framing.
   */
  scan(buf: Buffer, start = 0, payload?: (data: Buffer) => void): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case State.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) this.fail('chunk size too large');
            this.size = this.size * 16 + v;
            i++;
          } else if (this.digits === 0) {
            this.fail('invalid chunk size');
          } else if (c === 0x0d) {
            this.state = State.SizeLf;
            i++;
          } else if (c === 0x3b) {
            this.state = State.Extension;
            i++;
          } else if (c === 0x20 || c === 0x09) {
            this.state = State.SizeSpace;
            i++;
          } else {
            this.fail('invalid chunk size');
          }
          break;
        }
        case State.SizeSpace: {
          const c = buf[i++]!;
          if (c === 0x3b) this.state = State.Extension;
          else if (c === 0x0d) this.state = State.SizeLf;
          else if (c !== 0x20 && c !== 0x09) this.fail('invalid chunk size');
          break;
        }
        case State.Extension: {
          const c = buf[i++]!;
          if (c === 0x0d) this.state = State.SizeLf;
          else if ((c < 0x20 && c !== 0x09) || c === 0x7f) this.fail('control character in chunk extension');
          else if (++this.trailerBytes > MAX_TRAILER_BYTES) this.fail('chunk extension too long');
          break;
        }
        case State.SizeLf:
          if (buf[i++] !== 0x0a) this.fail('chunk size line not ended by CRLF');
          this.digits = 0;
          this.trailerBytes = 0;
          this.state = this.size === 0 ? State.TrailerStart : State.Data;
          break;
        case State.Data: {
          const take = Math.min(this.size, n - i);
          // `payload` receives the body without its framing (for HTTP/1.0 clients, which lack chunked).
          if (payload && take > 0) payload(buf.subarray(i, i + take));
          i += take;
          this.size -= take;
          if (this.size === 0) this.state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (buf[i++] !== 0x0d) this.fail('chunk data not followed by CRLF');
          this.state = State.DataLf;
          break;
        case State.DataLf:
          if (buf[i++] !== 0x0a) this.fail('chunk data not followed by CRLF');
          this.state = State.Size;
          break;
        case State.TrailerStart:
          if (buf[i] === 0x0d) {
            this.state = State.FinalLf;
            i++;
          } else {
            this.state = State.TrailerLine;
          }
          break;
        case State.TrailerLine: {
          const c = buf[i++]!;
          if (c === 0x0d) this.state = State.TrailerLf;
          else if (c === 0x0a || (c < 0x20 && c !== 0x09) || c === 0x7f) this.fail('bad trailer line');
          else if (++this.trailerBytes > MAX_TRAILER_BYTES) this.fail('trailer section too large');
          break;
        }
        case State.TrailerLf:
          if (buf[i++] !== 0x0a) this.fail('trailer line not ended by CRLF');
          this.state = State.TrailerStart;
          break;
        case State.FinalLf:
          if (buf[i++] !== 0x0a) this.fail('chunked body not ended by CRLF');
          this.state = State.Done;
          return i;
        case State.Done:
          return i;
      }
    }
    return -1;
  }

  private fail(message: string): never {
    throw new HttpParseError(this.errorStatus, 'BAD_CHUNK', message);
  }
}
