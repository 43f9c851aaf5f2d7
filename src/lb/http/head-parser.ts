// Strict HTTP/1.x head parsing for the proxy's hot path.
//
// Why by hand: node:http parses every request into IncomingMessage objects and re-serialises headers,
// which alone costs more CPU than our whole per-request budget. The proxy only needs the framing
// facts (length, chunked, keep-alive, upgrade) and where each header line lies, so that it can forward
// the lines it keeps as the bytes it received. It works on the bytes and makes strings only for what
// it must read (method, target, Host); the full header list is made on first use (rules on headers,
// hashing on a header or cookie, HTTP/2 answers). Being strict here is also the smuggling defence:
// anything ambiguous is refused with 400 before a target sees it (RFC 9112 §6.3, §11.2).

export class HttpParseError extends Error {
  constructor(
    readonly status: 400 | 413 | 431 | 501 | 502,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface HeadLimits {
  /** Bytes of the whole head (request line + headers). */
  maxHeaderBytes: number;
  maxHeaderCount: number;
}

/** What a header line is to the proxy (the forwarding code decides what to keep from this). */
export const enum HeaderKind {
  Plain,
  /** Hop-by-hop (RFC 9110 §7.6.1), named in Connection, or set aside by the proxy: never forwarded. */
  HopByHop,
  Connection,
  Upgrade,
  ContentLength,
  TransferEncoding,
  Host,
  Expect,
  XForwardedFor,
  XForwardedProto,
  XForwardedPort,
  XForwardedOther,
}

/**
 * Where a head's notable header lines lie in the received bytes: every line that is not
 * HeaderKind.Plain, as [start, end (past its CRLF), kind] triples in order. Plain lines are the gaps.
 * The bytes are the caller's and are never reused while the head lives.
 */
export interface WireHead {
  buf: Buffer;
  /** Index just past the start line's CRLF (the first header line begins here). */
  headerStart: number;
  /** Index of the empty line's CRLF that ends the head. */
  headerEnd: number;
  notable: number[];
}

/** Framing facts shared by requests and responses. */
interface HeadCommon {
  /** HTTP/1.x minor version (0 or 1). */
  minor: number;
  /** Header names and values, alternating, as received (names keep their case). */
  readonly headers: string[];
  /** Content-Length, or -1 when absent. */
  contentLength: number;
  chunked: boolean;
  connectionClose: boolean;
  connectionKeepAlive: boolean;
  /** Value of Upgrade when Connection lists "upgrade". */
  upgrade: string | undefined;
  /** Header names listed in Connection (lower case), which are hop-by-hop too. */
  connectionTokens: string[] | undefined;
  /** Bytes consumed from the buffer, CRLFCRLF included. */
  headLength: number;
  /** The received bytes, for heads parsed from the wire (undefined for heads made from HTTP/2). */
  wire: WireHead | undefined;
}

export interface RequestHead extends HeadCommon {
  method: string;
  target: string;
  host: string | undefined;
  expectContinue: boolean;
}

export interface ResponseHead extends HeadCommon {
  status: number;
  /** The reason phrase (may be empty). */
  readonly reason: string;
  readonly wire: WireHead;
}

/** Calls `each` for every header line of a head read from the wire, with its name and value bounds. */
function forEachLine(
  wire: WireHead,
  each: (start: number, nameEnd: number, valueStart: number, valueEnd: number, end: number) => void,
): void {
  const { buf, headerEnd } = wire;
  let pos = wire.headerStart;
  while (pos < headerEnd) {
    const eol = buf.indexOf(CR, pos);
    const colon = buf.indexOf(COLON, pos);
    let valueStart = colon + 1;
    let valueEnd = eol;
    while (buf[valueStart] === SP || buf[valueStart] === HTAB) valueStart++;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    each(pos, colon, valueStart, valueEnd, eol + 2);
    pos = eol + 2;
  }
}

/** The value of the header line at buf[start, end) (its CRLF included), trimmed. */
export function lineValue(wire: WireHead, start: number, end: number): string {
  const { buf } = wire;
  let valueStart = buf.indexOf(COLON, start) + 1;
  let valueEnd = end - 2;
  while (buf[valueStart] === SP || buf[valueStart] === HTAB) valueStart++;
  while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
  return buf.toString('latin1', valueStart, valueEnd);
}

/** The header strings of a head read from the wire (made on first use: few requests need them). */
function headerStrings(wire: WireHead): string[] {
  const out: string[] = [];
  forEachLine(wire, (start, nameEnd, valueStart, valueEnd) => {
    out.push(wire.buf.toString('latin1', start, nameEnd), wire.buf.toString('latin1', valueStart, valueEnd));
  });
  return out;
}

class WireHeadCommon implements WireHead {
  minor = 1;
  contentLength = -1;
  chunked = false;
  connectionClose = false;
  connectionKeepAlive = false;
  upgrade: string | undefined = undefined;
  connectionTokens: string[] | undefined = undefined;
  readonly notable: number[] = [];
  private headerList: string[] | undefined = undefined;

  constructor(
    readonly buf: Buffer,
    readonly headerStart: number,
    readonly headLength: number,
  ) {}

  get headerEnd(): number {
    return this.headLength - 2;
  }

  /** The head is its own WireHead (one object per head instead of two). */
  get wire(): WireHead {
    return this;
  }

  get headers(): string[] {
    return (this.headerList ??= headerStrings(this));
  }
}

class WireRequestHead extends WireHeadCommon implements RequestHead {
  host: string | undefined = undefined;
  expectContinue = false;

  constructor(
    buf: Buffer,
    headerStart: number,
    headLength: number,
    readonly method: string,
    readonly target: string,
  ) {
    super(buf, headerStart, headLength);
  }
}

class WireResponseHead extends WireHeadCommon implements ResponseHead {
  constructor(
    buf: Buffer,
    headerStart: number,
    headLength: number,
    readonly status: number,
    private readonly reasonStart: number,
    private readonly reasonEnd: number,
  ) {
    super(buf, headerStart, headLength);
  }

  get reason(): string {
    return this.buf.toString('latin1', this.reasonStart, this.reasonEnd);
  }
}

// RFC 9110 token characters.
const TOKEN = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[ch.charCodeAt(0)] = 1;
}

const CR = 13;
const LF = 10;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** Header values may hold visible ASCII, SP, HTAB and obs-text; no other control characters. */
function isBadValueByte(c: number): boolean {
  return (c < 0x20 && c !== HTAB) || c === 0x7f;
}

/** Whether buf[start, end) is `lower` (lower-case ASCII letters and '-'), ignoring case. */
function nameIs(buf: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    // OR 0x20 folds A-Z onto a-z and leaves '-' and digits alone. Names are validated tokens and values
    // hold no control characters, so no other byte can fold onto one of `lower`'s characters.
    if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

const X_FORWARDED = 'x-forwarded-';

function classify(buf: Buffer, start: number, end: number): HeaderKind {
  switch (end - start) {
    case 2:
      return nameIs(buf, start, end, 'te') ? HeaderKind.HopByHop : HeaderKind.Plain;
    case 4:
      return nameIs(buf, start, end, 'host') ? HeaderKind.Host : HeaderKind.Plain;
    case 6:
      return nameIs(buf, start, end, 'expect') ? HeaderKind.Expect : HeaderKind.Plain;
    case 7:
      if (nameIs(buf, start, end, 'upgrade')) return HeaderKind.Upgrade;
      return nameIs(buf, start, end, 'trailer') ? HeaderKind.HopByHop : HeaderKind.Plain;
    case 10:
      if (nameIs(buf, start, end, 'connection')) return HeaderKind.Connection;
      return nameIs(buf, start, end, 'keep-alive') ? HeaderKind.HopByHop : HeaderKind.Plain;
    case 14:
      return nameIs(buf, start, end, 'content-length') ? HeaderKind.ContentLength : HeaderKind.Plain;
    case 15:
      if (nameIs(buf, start, end, 'x-forwarded-for')) return HeaderKind.XForwardedFor;
      break;
    case 16:
      if (nameIs(buf, start, end, 'proxy-connection')) return HeaderKind.HopByHop;
      if (nameIs(buf, start, end, 'x-forwarded-port')) return HeaderKind.XForwardedPort;
      break;
    case 17:
      if (nameIs(buf, start, end, 'transfer-encoding')) return HeaderKind.TransferEncoding;
      if (nameIs(buf, start, end, 'x-forwarded-proto')) return HeaderKind.XForwardedProto;
      break;
    case 18:
      return nameIs(buf, start, end, 'proxy-authenticate') ? HeaderKind.HopByHop : HeaderKind.Plain;
    case 19:
      return nameIs(buf, start, end, 'proxy-authorization') ? HeaderKind.HopByHop : HeaderKind.Plain;
  }
  if (end - start > X_FORWARDED.length && nameIs(buf, start, start + X_FORWARDED.length, X_FORWARDED))
    return HeaderKind.XForwardedOther;
  return HeaderKind.Plain;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Finds the end of the head in `buf`. Returns the index just past CRLFCRLF, 0 when more bytes are
 * needed, or throws for an oversized head or bare-LF line endings (which some servers accept and others
 * don't: a classic smuggling lever). A bare LF inside a complete head is refused by the parsers.
 */
export function findHeadEnd(buf: Buffer, limits: HeadLimits, isRequest: boolean): number {
  const idx = buf.indexOf(CRLFCRLF);
  if (idx === -1) {
    // Refuse a head that ends its lines with bare LFs now rather than wait for a CRLFCRLF that never comes.
    let lf = buf.indexOf(LF);
    while (lf !== -1) {
      if (lf === 0 || buf[lf - 1] !== CR) {
        throw new HttpParseError(isRequest ? 400 : 502, 'BARE_LF', 'line ending without CR in the head');
      }
      lf = buf.indexOf(LF, lf + 1);
    }
    if (buf.length > limits.maxHeaderBytes) {
      throw new HttpParseError(isRequest ? 431 : 502, 'HEAD_TOO_LARGE', 'header section too large');
    }
    return 0;
  }
  if (idx + 4 > limits.maxHeaderBytes) {
    throw new HttpParseError(isRequest ? 431 : 502, 'HEAD_TOO_LARGE', 'header section too large');
  }
  return idx + 4;
}

/** Content-Length's value: one number, or a list of equal ones; -2 when malformed. */
function parseContentLength(buf: Buffer, start: number, end: number): number {
  let result = -1;
  let i = start;
  while (i <= end) {
    // One list element: optional whitespace, 1 to 15 digits, optional whitespace.
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    let n = 0;
    let digits = 0;
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
      n = n * 10 + (buf[i]! - 0x30);
      digits++;
      i++;
    }
    while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
    if (digits === 0 || digits > 15) return -2;
    if (i < end && buf[i] !== 0x2c) return -2;
    if (result !== -1 && n !== result) return -3;
    result = n;
    i++; // past the comma (or past the end)
  }
  return result;
}

/** Sets the framing facts from a Connection header's value. */
function readConnection(into: WireHeadCommon, buf: Buffer, start: number, end: number): void {
  if (nameIs(buf, start, end, 'keep-alive')) into.connectionKeepAlive = true;
  else if (nameIs(buf, start, end, 'close')) into.connectionClose = true;
  else {
    for (const part of buf.toString('latin1', start, end).split(',')) {
      const token = part.trim().toLowerCase();
      if (token === 'close') into.connectionClose = true;
      else if (token === 'keep-alive') into.connectionKeepAlive = true;
      else if (token !== '') (into.connectionTokens ??= []).push(token);
    }
  }
}

/** Applies Transfer-Encoding's codings (all its fields joined) to the framing facts. */
function readTransferEncoding(
  into: WireHeadCommon,
  codingsText: string,
  contentLengthSeen: boolean,
  isRequest: boolean,
): void {
  if (contentLengthSeen && isRequest) {
    throw new HttpParseError(400, 'CL_AND_TE', 'both Content-Length and Transfer-Encoding');
  }
  const codings =
    codingsText === 'chunked'
      ? ['chunked']
      : codingsText
          .toLowerCase()
          .split(',')
          .map((c) => c.trim())
          .filter(Boolean);
  if (codings.length === 0 || codings[codings.length - 1] !== 'chunked') {
    // A request body without chunked last has no knowable end; a response is then read until close.
    if (isRequest)
      throw new HttpParseError(400, 'BAD_TRANSFER_ENCODING', 'Transfer-Encoding must end in chunked');
  } else {
    if (codings.indexOf('chunked') !== codings.length - 1)
      throw new HttpParseError(isRequest ? 400 : 502, 'BAD_TRANSFER_ENCODING', 'chunked applied twice');
    if (isRequest && (codings.length !== 1 || into.minor === 0)) {
      // Other codings (gzip, chunked) are legal but almost never sent by clients; HTTP/1.0 has no chunked.
      throw new HttpParseError(501, 'UNSUPPORTED_TRANSFER_ENCODING', 'unsupported Transfer-Encoding');
    }
    into.chunked = true;
  }
  // A message with Transfer-Encoding ignores Content-Length (RFC 9112 §6.3).
  into.contentLength = -1;
}

function fail(isRequest: boolean, code: string, message: string, status: 400 | 431 = 400): never {
  throw new HttpParseError(isRequest ? status : 502, code, message);
}

/**
 * Parses and validates the header lines of `into` (from headerStart to headerEnd), recording the
 * notable ones and the framing facts. Host (requests), Upgrade and Expect values are read here too.
 * Returns how many Host lines there were.
 */
function parseHeaderLines(
  into: WireRequestHead | WireResponseHead,
  limits: HeadLimits,
  isRequest: boolean,
): number {
  const { buf, notable } = into;
  const end = into.headerEnd;
  let pos = into.headerStart;
  let count = 0;
  let hosts = 0;
  let contentLengthSeen = false;
  let transferEncoding: string | undefined;
  while (pos < end) {
    const lineStart = pos;
    const first = buf[pos]!;
    if (first === SP || first === HTAB) fail(isRequest, 'OBS_FOLD', 'obsolete line folding in header');
    while (TOKEN[buf[pos]!] === 1) pos++;
    if (buf[pos] !== COLON || pos === lineStart) {
      // Say why: no colon on the line, or a bad name before one.
      const eol = buf.indexOf(CR, lineStart);
      const colon = buf.indexOf(COLON, lineStart);
      if (buf[pos] === LF) fail(isRequest, 'BARE_LF', 'line ending without CR in the head');
      if (colon === -1 || colon > eol) fail(isRequest, 'BAD_HEADER', 'header line without a colon');
      fail(isRequest, 'BAD_HEADER_NAME', 'invalid header name');
    }
    const nameEnd = pos;
    pos++;
    while (buf[pos] === SP || buf[pos] === HTAB) pos++;
    const valueStart = pos;
    let c = buf[pos]!;
    while (c !== CR) {
      if (isBadValueByte(c)) {
        if (c === LF) fail(isRequest, 'BARE_LF', 'line ending without CR in the head');
        fail(isRequest, 'BAD_HEADER_VALUE', 'control character in header value');
      }
      c = buf[++pos]!;
    }
    if (buf[pos + 1] !== LF) fail(isRequest, 'BAD_HEADER_VALUE', 'control character in header value');
    let valueEnd = pos;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    pos += 2;
    if (++count > limits.maxHeaderCount) fail(isRequest, 'TOO_MANY_HEADERS', 'too many header fields', 431);
    const kind = classify(buf, lineStart, nameEnd);
    if (kind === HeaderKind.Plain) continue;
    notable.push(lineStart, pos, kind);
    switch (kind) {
      case HeaderKind.ContentLength: {
        // Several Content-Length fields (or a list) are fine only when they all agree.
        const n = parseContentLength(buf, valueStart, valueEnd);
        if (n === -2) fail(isRequest, 'BAD_CONTENT_LENGTH', 'invalid Content-Length');
        if (n === -3 || (contentLengthSeen && n !== into.contentLength))
          fail(isRequest, 'CONFLICTING_CONTENT_LENGTH', 'different Content-Lengths');
        contentLengthSeen = true;
        into.contentLength = n;
        break;
      }
      case HeaderKind.TransferEncoding: {
        const value = nameIs(buf, valueStart, valueEnd, 'chunked')
          ? 'chunked'
          : buf.toString('latin1', valueStart, valueEnd);
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      }
      case HeaderKind.Connection:
        readConnection(into, buf, valueStart, valueEnd);
        break;
      case HeaderKind.Upgrade:
        into.upgrade = buf.toString('latin1', valueStart, valueEnd);
        break;
      case HeaderKind.Host:
        if (isRequest) {
          hosts++;
          (into as WireRequestHead).host = buf.toString('latin1', valueStart, valueEnd);
        }
        break;
      case HeaderKind.Expect:
        if (isRequest && nameIs(buf, valueStart, valueEnd, '100-continue'))
          (into as WireRequestHead).expectContinue = true;
        break;
    }
  }
  if (transferEncoding !== undefined)
    readTransferEncoding(into, transferEncoding, contentLengthSeen, isRequest);
  if (into.connectionTokens !== undefined) markConnectionTokens(into, into.connectionTokens);
  return hosts;
}

/**
 * Header names that Connection lists are hop-by-hop for this message (RFC 9110 §7.6.1). Only plain
 * headers: a Connection that names Host, a framing header or X-Forwarded-* cannot make the proxy drop it.
 */
function markConnectionTokens(wire: WireHead, tokens: string[]): void {
  const { buf, notable } = wire;
  const named: number[] = [];
  forEachLine(wire, (start, nameEnd, _vs, _ve, end) => {
    if (classify(buf, start, nameEnd) !== HeaderKind.Plain) return;
    if (tokens.includes(buf.toString('latin1', start, nameEnd).toLowerCase())) named.push(start, end);
  });
  if (named.length === 0) return;
  // Merge them into the notable lines, keeping the order of the bytes.
  const lines: Array<[number, number, number]> = [];
  for (let i = 0; i < notable.length; i += 3) lines.push([notable[i]!, notable[i + 1]!, notable[i + 2]!]);
  for (let i = 0; i < named.length; i += 2) lines.push([named[i]!, named[i + 1]!, HeaderKind.HopByHop]);
  lines.sort((a, b) => a[0] - b[0]);
  notable.length = 0;
  for (const line of lines) notable.push(...line);
}

/** Whether buf[start, end) is exactly `ascii`. */
function bytesAre(buf: Buffer, start: number, end: number, ascii: string): boolean {
  if (end - start !== ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) if (buf[start + i] !== ascii.charCodeAt(i)) return false;
  return true;
}

const COMMON_METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];

/** The method as a string, without making a new one for the common methods. */
function methodString(buf: Buffer, start: number, end: number): string {
  for (const m of COMMON_METHODS) if (bytesAre(buf, start, end, m)) return m;
  return buf.toString('latin1', start, end);
}

/** Index just past "HTTP/1.x" at `pos`, with x in `minor`, or -1. */
function httpVersionEnd(buf: Buffer, pos: number): number {
  // "HTTP/1." then 0 or 1
  if (
    buf[pos] !== 0x48 ||
    buf[pos + 1] !== 0x54 ||
    buf[pos + 2] !== 0x54 ||
    buf[pos + 3] !== 0x50 ||
    buf[pos + 4] !== 0x2f ||
    buf[pos + 5] !== 0x31 ||
    buf[pos + 6] !== 0x2e ||
    (buf[pos + 7] !== 0x30 && buf[pos + 7] !== 0x31)
  )
    return -1;
  return pos + 8;
}

/** Parses a complete request head (`headLength` from findHeadEnd). */
export function parseRequestHead(buf: Buffer, headLength: number, limits: HeadLimits): RequestHead {
  const bad = (): never => {
    throw new HttpParseError(400, 'BAD_REQUEST_LINE', 'malformed request line');
  };
  // Tolerate empty lines before the request line (RFC 9112 §2.2).
  let pos = 0;
  while (buf[pos] === CR && buf[pos + 1] === LF && pos + 2 < headLength) pos += 2;
  const methodStart = pos;
  while (TOKEN[buf[pos]!] === 1) pos++;
  if (pos === methodStart || buf[pos] !== SP) bad();
  const methodEnd = pos++;
  const targetStart = pos;
  for (let c = buf[pos]!; c > SP && c !== 0x7f; c = buf[++pos]!);
  if (pos === targetStart || buf[pos] !== SP) bad();
  const targetEnd = pos++;
  const versionEnd = httpVersionEnd(buf, pos);
  if (versionEnd === -1 || buf[versionEnd] !== CR || buf[versionEnd + 1] !== LF) bad();
  const head = new WireRequestHead(
    buf,
    versionEnd + 2,
    headLength,
    methodString(buf, methodStart, methodEnd),
    buf.toString('latin1', targetStart, targetEnd),
  );
  head.minor = buf[versionEnd - 1] === 0x31 ? 1 : 0;
  const hostCount = parseHeaderLines(head, limits, true);
  if (hostCount > 1) throw new HttpParseError(400, 'MULTIPLE_HOST', 'more than one Host header');
  if (head.minor === 1 && hostCount === 0)
    throw new HttpParseError(400, 'MISSING_HOST', 'HTTP/1.1 request without Host');
  // A request's Upgrade counts only when Connection lists it.
  if (head.upgrade !== undefined && !head.connectionTokens?.includes('upgrade')) head.upgrade = undefined;
  return head;
}

/** Parses a complete response head from a target. Errors carry status 502 (the target misbehaved). */
export function parseResponseHead(buf: Buffer, headLength: number, limits: HeadLimits): ResponseHead {
  const bad = (): never => {
    throw new HttpParseError(502, 'BAD_STATUS_LINE', 'malformed status line from target');
  };
  // "HTTP/1.x NNN" then optionally " reason", then CRLF.
  const versionEnd = httpVersionEnd(buf, 0);
  if (versionEnd === -1 || buf[versionEnd] !== SP) bad();
  let status = 0;
  for (let i = versionEnd + 1; i < versionEnd + 4; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) bad();
    status = status * 10 + d;
  }
  let pos = versionEnd + 4;
  let reasonStart = pos;
  if (buf[pos] === SP) {
    reasonStart = ++pos;
    for (let c = buf[pos]!; c !== CR; c = buf[++pos]!) if (isBadValueByte(c)) bad();
  }
  if (buf[pos] !== CR || buf[pos + 1] !== LF) bad();
  const head = new WireResponseHead(buf, pos + 2, headLength, status, reasonStart, pos);
  head.minor = buf[versionEnd - 1] === 0x31 ? 1 : 0;
  parseHeaderLines(head, limits, false);
  return head;
}

/** Headers a proxy never forwards (RFC 9110 §7.6.1), besides those named in Connection. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Every value of a header (lower-case name) in a parsed request. */
export function headerValues(head: RequestHead, lowerName: string): string[] {
  const out: string[] = [];
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i]!.toLowerCase() === lowerName) out.push(h[i + 1]!);
  return out;
}
