// Encoders for the PostgreSQL messages the proxy itself writes: to clients (authentication, errors,
// local results such as EXPLAIN ROUTE) and to servers (startup, auth, injected Parse/Close, queries).
// Forwarded traffic is never re-encoded: the proxy passes the raw bytes through.

/** Builds one message: type byte (0 for the untyped startup packet), int32 length, body. */
export class MessageWriter {
  private parts: Buffer[] = [];
  private size = 0;

  int8(v: number): this {
    const b = Buffer.allocUnsafe(1);
    b.writeUInt8(v);
    return this.push(b);
  }
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  cstring(s: string): this {
    return this.push(Buffer.from(s + '\0', 'utf8'));
  }
  bytes(b: Buffer): this {
    return this.push(b);
  }
  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  /** type 0 = no type byte (startup, SSLRequest, CancelRequest). */
  finish(type: string | 0): Buffer {
    const head = type === 0 ? 4 : 5;
    const out = Buffer.allocUnsafe(head + this.size);
    if (type !== 0) out.write(type, 0, 'latin1');
    out.writeInt32BE(4 + this.size, head - 4);
    let off = head;
    for (const p of this.parts) {
      p.copy(out, off);
      off += p.length;
    }
    return out;
  }
}

export interface ErrorFields {
  severity?: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function fields(type: 'E' | 'N', f: ErrorFields): Buffer {
  const w = new MessageWriter();
  const severity = f.severity ?? 'ERROR';
  w.int8(0x53).cstring(severity); // S
  w.int8(0x56).cstring(severity); // V (non-localized)
  w.int8(0x43).cstring(f.code); // C
  w.int8(0x4d).cstring(f.message); // M
  if (f.detail) w.int8(0x44).cstring(f.detail);
  if (f.hint) w.int8(0x48).cstring(f.hint);
  w.int8(0);
  return w.finish(type);
}

export const errorResponse = (f: ErrorFields): Buffer => fields('E', f);
export const noticeResponse = (f: ErrorFields): Buffer => fields('N', { severity: 'NOTICE', ...f });

const READY = {
  I: Buffer.from([0x5a, 0, 0, 0, 5, 0x49]),
  T: Buffer.from([0x5a, 0, 0, 0, 5, 0x54]),
  E: Buffer.from([0x5a, 0, 0, 0, 5, 0x45]),
};
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => READY[status];

export const authenticationOk = (): Buffer => new MessageWriter().int32(0).finish('R');
export const authenticationCleartext = (): Buffer => new MessageWriter().int32(3).finish('R');
export const authenticationMd5 = (salt: Buffer): Buffer =>
  new MessageWriter().int32(5).bytes(salt).finish('R');
export const authenticationSasl = (mechanisms: string[]): Buffer => {
  const w = new MessageWriter().int32(10);
  for (const m of mechanisms) w.cstring(m);
  return w.int8(0).finish('R');
};
export const authenticationSaslContinue = (data: string): Buffer =>
  new MessageWriter().int32(11).bytes(Buffer.from(data)).finish('R');
export const authenticationSaslFinal = (data: string): Buffer =>
  new MessageWriter().int32(12).bytes(Buffer.from(data)).finish('R');

export const parameterStatus = (name: string, value: string): Buffer =>
  new MessageWriter().cstring(name).cstring(value).finish('S');
export const backendKeyData = (pid: number, secret: number): Buffer =>
  new MessageWriter().int32(pid).int32(secret).finish('K');
export const commandComplete = (tag: string): Buffer => new MessageWriter().cstring(tag).finish('C');
export const emptyQueryResponse = (): Buffer => new MessageWriter().finish('I');

/** RowDescription for text columns (type text, oid 25). */
export function rowDescription(columns: string[]): Buffer {
  const w = new MessageWriter().int16(columns.length);
  for (const c of columns) w.cstring(c).int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0);
  return w.finish('T');
}

export function dataRow(values: (string | null)[]): Buffer {
  const w = new MessageWriter().int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else {
      const b = Buffer.from(v, 'utf8');
      w.int32(b.length).bytes(b);
    }
  }
  return w.finish('D');
}

// ---- frontend messages the proxy sends to servers ----

export function startupMessage(params: Record<string, string>): Buffer {
  const w = new MessageWriter().int32(196608);
  for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
  return w.int8(0).finish(0);
}
export const passwordMessage = (password: string): Buffer =>
  new MessageWriter().cstring(password).finish('p');
export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const b = Buffer.from(data);
  return new MessageWriter().cstring(mechanism).int32(b.length).bytes(b).finish('p');
}
export const saslResponse = (data: string): Buffer =>
  new MessageWriter().bytes(Buffer.from(data)).finish('p');
export const query = (sql: string): Buffer => new MessageWriter().cstring(sql).finish('Q');
export const closeStatement = (name: string): Buffer =>
  new MessageWriter().int8(0x53).cstring(name).finish('C');
export const terminate = (): Buffer => new MessageWriter().finish('X');
export const cancelRequest = (pid: number, secret: number): Buffer =>
  new MessageWriter().int32(80877102).int32(pid).int32(secret).finish(0);
