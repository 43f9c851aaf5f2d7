import { copyBytes } from '../../core/copy-bytes.js';
import {
  HeaderKind,
  HOP_BY_HOP,
  lineValue,
  type RequestHead,
  type ResponseHead,
  type WireHead,
} from './head-parser.js';

// The heads the proxy sends on. Lines it keeps go out as the bytes it received (runs of adjacent kept
// lines are one copy); only what it adds or rewrites is made as text.

export interface ForwardContext {
  clientIp: string;
  proto: 'http' | 'https';
  listenerPort: number;
  /** The peer is a trusted proxy: keep and extend its X-Forwarded-* headers instead of replacing them. */
  trustedPeer: boolean;
  /** Host for HTTP/1.0 requests that carry none (targets speak 1.1, which requires one). */
  defaultHost: string;
  /** Kept here on first use: the X-Forwarded-* lines when the peer sent none worth keeping. */
  ownForwardedLines?: string;
}

function isHopByHop(kind: HeaderKind): boolean {
  return kind === HeaderKind.HopByHop || kind === HeaderKind.Connection || kind === HeaderKind.Upgrade;
}

function isXForwarded(kind: HeaderKind): boolean {
  return kind >= HeaderKind.XForwardedFor;
}

/** Writes a short latin1 string into dst at `at`; returns the byte count. */
function writeLatin1(text: string, dst: Buffer, at: number): number {
  if (text.length > 64) return dst.write(text, at, 'latin1');
  for (let i = 0; i < text.length; i++) dst[at + i] = text.charCodeAt(i);
  return text.length;
}

/** Bytes of the header lines that `drop` refuses. */
function droppedBytes(wire: WireHead, drop: (kind: HeaderKind) => boolean): number {
  const { notable } = wire;
  let size = 0;
  for (let i = 0; i < notable.length; i += 3)
    if (drop(notable[i + 2]!)) size += notable[i + 1]! - notable[i]!;
  return size;
}

/**
 * Copies the bytes of `wire` from `from` to the end of its header lines, leaving out the lines that
 * `drop` refuses, into `out` at `at`. Returns the byte count.
 */
function copyKeptLines(
  wire: WireHead,
  from: number,
  drop: (kind: HeaderKind) => boolean,
  out: Buffer,
  at: number,
): number {
  const { buf, notable } = wire;
  let size = 0;
  let pos = from;
  for (let i = 0; i < notable.length; i += 3) {
    if (!drop(notable[i + 2]!)) continue;
    size += copyBytes(buf, pos, notable[i]!, out, at + size);
    pos = notable[i + 1]!;
  }
  return size + copyBytes(buf, pos, wire.headerEnd, out, at + size);
}

/** `prefix`, the bytes from `from` with the kept lines, `suffix` and `body`, in one new buffer. */
function assemble(
  wire: WireHead,
  from: number,
  prefix: string,
  drop: (kind: HeaderKind) => boolean,
  suffix: string,
  body?: Buffer,
): Buffer {
  const linesSize = wire.headerEnd - from - droppedBytes(wire, drop);
  const bodySize = body === undefined ? 0 : body.length;
  const out = Buffer.allocUnsafe(prefix.length + linesSize + suffix.length + bodySize);
  let at = writeLatin1(prefix, out, 0);
  at += copyKeptLines(wire, from, drop, out, at);
  at += writeLatin1(suffix, out, at);
  if (body !== undefined) copyBytes(body, 0, body.length, out, at);
  return out;
}

function forwardedLines(ctx: ForwardContext, xff: string | undefined, proto?: string, port?: string): string {
  return (
    `X-Forwarded-For: ${xff === undefined ? ctx.clientIp : `${xff}, ${ctx.clientIp}`}\r\n` +
    `X-Forwarded-Proto: ${proto ?? ctx.proto}\r\nX-Forwarded-Port: ${port ?? ctx.listenerPort}\r\n`
  );
}

const dropUntrusted = (kind: HeaderKind): boolean => isHopByHop(kind) || isXForwarded(kind);
const dropTrusted = (kind: HeaderKind): boolean =>
  isHopByHop(kind) ||
  kind === HeaderKind.XForwardedFor ||
  kind === HeaderKind.XForwardedProto ||
  kind === HeaderKind.XForwardedPort;

/**
 * The head sent to the target: the request line and header lines as received (Host untouched), minus
 * hop-by-hop headers, plus X-Forwarded-For/-Proto/-Port. Always HTTP/1.1 so the connection stays alive.
 */
export function buildUpstreamRequestHead(req: RequestHead, ctx: ForwardContext): Buffer | string {
  const wire = req.wire;
  if (wire === undefined) return buildUpstreamRequestHeadFromFields(req, ctx);
  // The request line goes as received when it is already HTTP/1.1 and starts the buffer.
  const lineAsIs = req.minor === 1 && wire.buf[0] !== 13;
  let prefix = lineAsIs ? '' : `${req.method} ${req.target} HTTP/1.1\r\n`;
  if (req.host === undefined) prefix += `Host: ${ctx.defaultHost}\r\n`;
  let suffix: string;
  if (ctx.trustedPeer) {
    // Only a trusted peer's X-Forwarded-* can be believed; from anyone else they are spoofable.
    let xff: string | undefined;
    let proto: string | undefined;
    let port: string | undefined;
    const { notable } = wire;
    for (let i = 0; i < notable.length; i += 3) {
      const kind = notable[i + 2]!;
      if (kind === HeaderKind.XForwardedFor) {
        const value = lineValue(wire, notable[i]!, notable[i + 1]!);
        xff = xff === undefined ? value : `${xff}, ${value}`;
      } else if (kind === HeaderKind.XForwardedProto) proto = lineValue(wire, notable[i]!, notable[i + 1]!);
      else if (kind === HeaderKind.XForwardedPort) port = lineValue(wire, notable[i]!, notable[i + 1]!);
    }
    suffix = forwardedLines(ctx, xff, proto, port);
  } else {
    // The same for every request of a connection (the session keeps one ForwardContext).
    suffix = ctx.ownForwardedLines ??= forwardedLines(ctx, undefined);
  }
  if (req.upgrade !== undefined) suffix += `Connection: upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  suffix += '\r\n';
  return assemble(
    wire,
    lineAsIs ? 0 : wire.headerStart,
    prefix,
    ctx.trustedPeer ? dropTrusted : dropUntrusted,
    suffix,
  );
}

/** The same from header strings: for requests that did not arrive as HTTP/1 bytes (HTTP/2). */
function buildUpstreamRequestHeadFromFields(req: RequestHead, ctx: ForwardContext): string {
  let out = `${req.method} ${req.target} HTTP/1.1\r\n`;
  if (req.host === undefined) out += `Host: ${ctx.defaultHost}\r\n`;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfPort: string | undefined;
  const h = req.headers;
  const tokens = req.connectionTokens;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    const lower = name.toLowerCase();
    if (lower.startsWith('x-forwarded-')) {
      if (!ctx.trustedPeer) continue;
      if (lower === 'x-forwarded-for') {
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      }
      if (lower === 'x-forwarded-proto') xfProto = value;
      else if (lower === 'x-forwarded-port') xfPort = value;
      else out += `${name}: ${value}\r\n`;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || tokens?.includes(lower)) continue;
    out += `${name}: ${value}\r\n`;
  }
  out += forwardedLines(ctx, xff, xfProto, xfPort);
  if (req.upgrade !== undefined) out += `Connection: upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  return out + '\r\n';
}

const dropFromResponse = (kind: HeaderKind): boolean => isHopByHop(kind);

/**
 * The head sent to the client, followed by `body` when given (one buffer, so one write): the target's
 * status line and header lines as received minus hop-by-hop ones, plus `extra` (header lines from the
 * LB itself, e.g. a stickiness cookie, each ending in CRLF) and our own Connection.
 */
export function buildClientResponseHead(
  res: ResponseHead,
  keepAlive: boolean,
  clientMinor: number,
  extra = '',
  body?: Buffer,
): Buffer {
  let suffix = extra;
  if (res.status === 101) {
    suffix += `Connection: upgrade\r\nUpgrade: ${res.upgrade ?? 'websocket'}\r\n`;
  } else if (res.status >= 200) {
    if (!keepAlive) suffix += 'Connection: close\r\n';
    else if (clientMinor === 0) suffix += 'Connection: keep-alive\r\n';
  }
  suffix += '\r\n';
  // The status line goes as received, but always as HTTP/1.1 ("HTTP/1.x" is 8 bytes).
  const lineAsIs = res.minor === 1;
  return assemble(res.wire, lineAsIs ? 0 : 8, lineAsIs ? '' : 'HTTP/1.1', dropFromResponse, suffix, body);
}

/** Marks every header line of `kind` as not to be forwarded (e.g. Transfer-Encoding when dechunking). */
export function dropHeaderLines(wire: WireHead, kind: HeaderKind): void {
  const { notable } = wire;
  for (let i = 0; i < notable.length; i += 3)
    if (notable[i + 2] === kind) notable[i + 2] = HeaderKind.HopByHop;
}
