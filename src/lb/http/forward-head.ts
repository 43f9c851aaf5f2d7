import { HOP_BY_HOP, type RequestHead, type ResponseHead } from './head-parser.js';

export interface ForwardContext {
  clientIp: string;
  proto: 'http' | 'https';
  listenerPort: number;
  /** The peer is a trusted proxy: keep and extend its X-Forwarded-* headers instead of replacing them. */
  trustedPeer: boolean;
  /** Host for HTTP/1.0 requests that carry none (targets speak 1.1, which requires one). */
  defaultHost: string;
}

function isDropped(lower: string, tokens: string[] | undefined): boolean {
  return HOP_BY_HOP.has(lower) || (tokens !== undefined && tokens.includes(lower));
}

/**
 * The head sent to the target: the request line and header lines as received (Host untouched), minus
 * hop-by-hop headers, plus X-Forwarded-For/-Proto/-Port. Always HTTP/1.1 so the connection stays alive.
 */
export function buildUpstreamRequestHead(req: RequestHead, ctx: ForwardContext): string {
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
      // Only a trusted peer's X-Forwarded-* can be believed; from anyone else they are spoofable.
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
    if (isDropped(lower, tokens)) continue;
    out += `${name}: ${value}\r\n`;
  }
  out += `X-Forwarded-For: ${xff === undefined ? ctx.clientIp : `${xff}, ${ctx.clientIp}`}\r\n`;
  out += `X-Forwarded-Proto: ${xfProto ?? ctx.proto}\r\n`;
  out += `X-Forwarded-Port: ${xfPort ?? ctx.listenerPort}\r\n`;
  if (req.upgrade !== undefined) out += `Connection: upgrade\r\nUpgrade: ${req.upgrade}\r\n`;
  return out + '\r\n';
}

/** The head sent to the client: the target's status and headers minus hop-by-hop ones, plus our Connection. */
export function buildClientResponseHead(
  res: ResponseHead,
  keepAlive: boolean,
  clientMinor: number,
  /** Extra header lines from the LB itself (e.g. a stickiness cookie), each ending in CRLF. */
  extra = '',
): string {
  let out = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  const h = res.headers;
  const tokens = res.connectionTokens;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (isDropped(name.toLowerCase(), tokens)) continue;
    out += `${name}: ${h[i + 1]}\r\n`;
  }
  out += extra;
  if (res.status === 101) {
    out += `Connection: upgrade\r\nUpgrade: ${res.upgrade ?? 'websocket'}\r\n`;
  } else if (res.status >= 200) {
    if (!keepAlive) out += 'Connection: close\r\n';
    else if (clientMinor === 0) out += 'Connection: keep-alive\r\n';
  }
  return out + '\r\n';
}
