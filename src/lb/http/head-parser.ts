// Strict HTTP/1.x head parsing for the proxy's hot path.
//
// Why by hand: node:http parses every request into IncomingMessage objects and re-serialises headers,
// which alone costs more CPU than our whole per-request budget. The proxy only needs the framing
// facts (length, chunked, keep-alive, upgrade) and a validated list of header lines that it forwards
// almost verbatim. Being strict here is also the smuggling defence: anything ambiguous is refused
// with 400 before a target sees it (RFC 9112 §6.3, §11.2).

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

/** Framing facts shared by requests and responses. */
interface HeadCommon {
  /** HTTP/1.x minor version (0 or 1). */
  minor: number;
  /** Header names and values, alternating, as received (names keep their case). */
  headers: string[];
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
  reason: string;
}

// RFC 9110 token characters.
const TOKEN = new Uint8Array(128);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[ch.charCodeAt(0)] = 1;
}

function isToken(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}

/** Header values may hold visible ASCII, SP, HTAB and obs-text; no other control characters. */
function hasBadValueChar(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Finds the end of the head in `buf`. Returns the index just past CRLFCRLF, 0 when more bytes are
 * needed, or throws for an oversized head or bare-LF line endings (which some servers accept and others
 * don't: a classic smuggling lever).
 */
export function findHeadEnd(buf: Buffer, limits: HeadLimits, isRequest: boolean): number {
  const idx = buf.indexOf(CRLFCRLF);
  const scanned = idx === -1 ? buf.length : idx;
  if (buf.indexOf(10) !== -1) {
    // A LF not preceded by CR anywhere inside the head is refused.
    let lf = buf.indexOf(10);
    while (lf !== -1 && lf < scanned) {
      if (lf === 0 || buf[lf - 1] !== 13) {
        throw new HttpParseError(isRequest ? 400 : 502, 'BARE_LF', 'line ending without CR in the head');
      }
      lf = buf.indexOf(10, lf + 1);
    }
  }
  if (idx === -1) {
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

/** Parses header lines from `s` starting at `pos` (just after the start line's CRLF) up to `end`. */
function parseHeaderLines(
  s: string,
  pos: number,
  end: number,
  into: HeadCommon,
  limits: HeadLimits,
  isRequest: boolean,
  onHeader: (lower: string, value: string) => void,
): void {
  const fail = (code: string, message: string, status: 400 | 431 = 400): never => {
    throw new HttpParseError(isRequest ? status : 502, code, message);
  };
  const headers = into.headers;
  let contentLengthSeen = false;
  let transferEncoding: string | undefined;
  while (pos < end) {
    let eol = s.indexOf('\r\n', pos);
    if (eol === -1 || eol > end) eol = end;
    if (eol === pos) break;
    const first = s.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) fail('OBS_FOLD', 'obsolete line folding in header');
    const colon = s.indexOf(':', pos);
    if (colon === -1 || colon > eol) fail('BAD_HEADER', 'header line without a colon');
    // No whitespace between name and colon (RFC 9112 §5.1): refuse rather than guess.
    if (!isToken(s, pos, colon)) fail('BAD_HEADER_NAME', 'invalid header name');
    let vStart = colon + 1;
    let vEnd = eol;
    while (vStart < vEnd && (s.charCodeAt(vStart) === 0x20 || s.charCodeAt(vStart) === 0x09)) vStart++;
    while (vEnd > vStart && (s.charCodeAt(vEnd - 1) === 0x20 || s.charCodeAt(vEnd - 1) === 0x09)) vEnd--;
    if (hasBadValueChar(s, vStart, vEnd)) fail('BAD_HEADER_VALUE', 'control character in header value');
    if (headers.length >= limits.maxHeaderCount * 2) fail('TOO_MANY_HEADERS', 'too many header fields', 431);
    const name = s.slice(pos, colon);
    const value = s.slice(vStart, vEnd);
    headers.push(name, value);
    const lower = name.toLowerCase();
    switch (lower) {
      case 'content-length': {
        // Several Content-Length fields (or a list) are fine only when they all agree.
        for (const part of value.split(',')) {
          const v = part.trim();
          if (!/^\d{1,15}$/.test(v)) fail('BAD_CONTENT_LENGTH', 'invalid Content-Length');
          const n = Number(v);
          if (contentLengthSeen && n !== into.contentLength)
            fail('CONFLICTING_CONTENT_LENGTH', 'different Content-Lengths');
          contentLengthSeen = true;
          into.contentLength = n;
        }
        break;
      }
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case 'connection':
        for (const part of value.split(',')) {
          const token = part.trim().toLowerCase();
          if (token === 'close') into.connectionClose = true;
          else if (token === 'keep-alive') into.connectionKeepAlive = true;
          else if (token !== '') (into.connectionTokens ??= []).push(token);
        }
        break;
      default:
        onHeader(lower, value);
    }
    pos = eol + 2;
  }
  if (transferEncoding !== undefined) {
    if (contentLengthSeen && isRequest) {
      fail('CL_AND_TE', 'both Content-Length and Transfer-Encoding');
    }
    const codings = transferEncoding
      .toLowerCase()
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    if (codings.length === 0 || codings[codings.length - 1] !== 'chunked') {
      // A request body without chunked last has no knowable end; a response is then read until close.
      if (isRequest) fail('BAD_TRANSFER_ENCODING', 'Transfer-Encoding must end in chunked');
    } else {
      if (codings.indexOf('chunked') !== codings.length - 1)
        fail('BAD_TRANSFER_ENCODING', 'chunked applied twice');
      if (isRequest && (codings.length !== 1 || into.minor === 0)) {
        // Other codings (gzip, chunked) are legal but almost never sent by clients; HTTP/1.0 has no chunked.
        throw new HttpParseError(501, 'UNSUPPORTED_TRANSFER_ENCODING', 'unsupported Transfer-Encoding');
      }
      into.chunked = true;
    }
    // A response with Transfer-Encoding ignores Content-Length (RFC 9112 §6.3).
    into.contentLength = -1;
  }
}

// Control characters are exactly what these patterns must refuse.
/* eslint-disable no-control-regex */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
/* eslint-enable no-control-regex */

/** Parses a complete request head (`headLength` from findHeadEnd). */
export function parseRequestHead(buf: Buffer, headLength: number, limits: HeadLimits): RequestHead {
  let s = buf.toString('latin1', 0, headLength);
  // Tolerate empty lines before the request line (RFC 9112 §2.2).
  let start = 0;
  while (s.startsWith('\r\n', start)) start += 2;
  if (start > 0) s = s.slice(start);
  const lineEnd = s.indexOf('\r\n');
  const m = REQUEST_LINE.exec(s.slice(0, lineEnd));
  if (!m) throw new HttpParseError(400, 'BAD_REQUEST_LINE', 'malformed request line');
  const head: RequestHead = {
    method: m[1]!,
    target: m[2]!,
    minor: m[3] === '1' ? 1 : 0,
    headers: [],
    contentLength: -1,
    chunked: false,
    connectionClose: false,
    connectionKeepAlive: false,
    upgrade: undefined,
    connectionTokens: undefined,
    headLength,
    host: undefined,
    expectContinue: false,
  };
  let hostCount = 0;
  let upgrade: string | undefined;
  parseHeaderLines(s, lineEnd + 2, s.length - 2, head, limits, true, (lower, value) => {
    if (lower === 'host') {
      hostCount++;
      head.host = value;
    } else if (lower === 'upgrade') {
      upgrade = value;
    } else if (lower === 'expect') {
      if (value.toLowerCase() === '100-continue') head.expectContinue = true;
    }
  });
  if (hostCount > 1) throw new HttpParseError(400, 'MULTIPLE_HOST', 'more than one Host header');
  if (head.minor === 1 && hostCount === 0)
    throw new HttpParseError(400, 'MISSING_HOST', 'HTTP/1.1 request without Host');
  if (upgrade !== undefined && head.connectionTokens?.includes('upgrade')) head.upgrade = upgrade;
  return head;
}

/** Parses a complete response head from a target. Errors carry status 502 (the target misbehaved). */
export function parseResponseHead(buf: Buffer, headLength: number, limits: HeadLimits): ResponseHead {
  const s = buf.toString('latin1', 0, headLength);
  const lineEnd = s.indexOf('\r\n');
  const m = STATUS_LINE.exec(s.slice(0, lineEnd));
  if (!m) throw new HttpParseError(502, 'BAD_STATUS_LINE', 'malformed status line from target');
  const head: ResponseHead = {
    status: Number(m[2]),
    reason: m[3] ?? '',
    minor: m[1] === '1' ? 1 : 0,
    headers: [],
    contentLength: -1,
    chunked: false,
    connectionClose: false,
    connectionKeepAlive: false,
    upgrade: undefined,
    connectionTokens: undefined,
    headLength,
  };
  let upgrade: string | undefined;
  parseHeaderLines(s, lineEnd + 2, s.length - 2, head, limits, false, (lower, value) => {
    if (lower === 'upgrade') upgrade = value;
  });
  if (upgrade !== undefined) head.upgrade = upgrade;
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
