import type http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Selection } from '../../balancing/types.js';
import type { Target } from '../../registry/target.js';
import type { GroupRuntime } from '../group-runtime.js';
import { redirectLocation } from '../router.js';
import { ChunkedScanner } from './chunked.js';
import { buildUpstreamRequestHead } from './forward-head.js';
import { HOP_BY_HOP, type RequestHead, type ResponseHead } from './head-parser.js';
import { IDEMPOTENT, pickWeighted, type SessionContext } from './session.js';
import type { UpstreamConnection, UpstreamOwner } from './upstream.js';

// HTTP/2 from clients on https listeners, HTTP/1.1 to targets (as ALB does by default). Each h2 stream
// becomes one request through the same rules, target groups, pools, health and retries as HTTP/1.1;
// only the framing differs, so this file translates heads and streams bodies.

/** Response headers that HTTP/2 forbids (connection-specific), besides the hop-by-hop ones. */
const H2_FORBIDDEN = new Set([...HOP_BY_HOP, 'transfer-encoding', 'host']);

function requestHeadFromH2(headers: http2.IncomingHttpHeaders, hasBody: boolean): RequestHead {
  const flat: string[] = [];
  let contentLength = -1;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    if (H2_FORBIDDEN.has(name)) continue;
    for (const v of Array.isArray(value) ? value : [value]) flat.push(name, v);
    if (name === 'content-length') contentLength = Number(value);
  }
  const authority = headers[':authority'] ?? (headers.host as string | undefined);
  if (authority) flat.unshift('host', authority);
  // A body without a length goes to the target chunked.
  const chunked = hasBody && contentLength < 0;
  if (chunked) flat.push('transfer-encoding', 'chunked');
  return {
    method: String(headers[':method'] ?? 'GET'),
    target: String(headers[':path'] ?? '/'),
    minor: 1,
    headers: flat,
    contentLength,
    chunked,
    connectionClose: false,
    connectionKeepAlive: true,
    upgrade: undefined,
    connectionTokens: undefined,
    headLength: 0,
    wire: undefined,
    host: authority,
    expectContinue: false,
  };
}

/** One HTTP/2 stream proxied to an HTTP/1.1 target. */
export class H2Exchange implements UpstreamOwner {
  private readonly head: RequestHead;
  private readonly clientIp: string;
  private groupRt: GroupRuntime | undefined;
  private selection: Selection<Target> | undefined;
  private target: Target | undefined;
  private conn: UpstreamConnection | undefined;
  private attempts = 0;
  private upstreamHead: Buffer | string = '';
  private sentAt = 0;
  private responded = false;
  private bodyDone: boolean;
  private dechunker: ChunkedScanner | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    private readonly ctx: SessionContext,
  ) {
    this.clientIp = stream.session?.socket?.remoteAddress ?? '';
    const hasBody = !stream.readableEnded && !stream.endAfterHeaders;
    this.bodyDone = !hasBody;
    this.head = requestHeadFromH2(headers, hasBody);
    stream.on('error', () => this.abort());
    stream.on('close', () => this.abort());
    stream.pause();
    this.start();
  }

  private start(): void {
    this.ctx.stats.requests++;
    const { action } = this.ctx.router.route(this.head, this.clientIp);
    if (action.kind === 'fixed')
      return this.respond(action.status, action.body, { 'content-type': action.contentType });
    if (action.kind === 'redirect') {
      const location = redirectLocation(action, this.head, { proto: 'https', port: this.ctx.listenerPort });
      return this.respond(action.status, '', { location });
    }
    const name = pickWeighted(action.groups);
    const groupRt = name === undefined ? undefined : this.ctx.groups.get(name);
    if (!groupRt) return this.respond(503, 'no target group can take the request\n');
    this.groupRt = groupRt;
    this.upstreamHead = buildUpstreamRequestHead(this.head, {
      clientIp: this.clientIp,
      proto: 'https',
      listenerPort: this.ctx.listenerPort,
      trustedPeer: this.ctx.isTrustedPeer(this.clientIp),
      defaultHost: this.head.host ?? 'localhost',
    });
    this.selection = groupRt.select(this.head, this.clientIp);
    this.tryNext(503, 'no target is available');
  }

  private tryNext(status: number, detail: string): void {
    const target = this.attempts < this.ctx.maxAttempts ? this.selection?.next() : undefined;
    if (!target) {
      const failOpen = this.groupRt?.group.failOpen && status === 502;
      return this.respond(failOpen ? 503 : status, `${detail}\n`);
    }
    this.attempts++;
    this.target = target;
    target.outstanding++;
    const { conn, ready } = this.ctx.poolFor(target).acquire(this);
    this.conn = conn;
    if (ready) this.send(conn);
  }

  private endAttempt(): void {
    const t = this.target;
    if (!t) return;
    t.outstanding--;
    this.target = undefined;
    if (t.draining) this.groupRt?.checkDrained(t);
  }

  onUpstreamConnect(conn: UpstreamConnection): void {
    if (conn !== this.conn) return this.ctx.poolFor(conn.target).release(conn);
    this.send(conn);
  }

  onUpstreamConnectError(conn: UpstreamConnection, _err: Error, timedOut: boolean): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    this.groupRt?.passive.recordFailure(conn.target, this.ctx.sweeper.now, 'connect');
    this.endAttempt();
    this.tryNext(
      timedOut ? 504 : 502,
      timedOut ? 'timed out connecting to the target' : 'could not connect to the target',
    );
  }

  private send(conn: UpstreamConnection): void {
    conn.beginRequest(this, this.head.method === 'HEAD');
    this.sentAt = performance.now();
    conn.write(this.upstreamHead);
    if (this.bodyDone) return;
    const chunked = this.head.chunked;
    this.stream.on('data', (chunk: Buffer) => {
      conn.touch();
      const ok = chunked
        ? conn.write(`${chunk.length.toString(16)}\r\n`) && conn.write(chunk) && conn.write('\r\n')
        : conn.write(chunk);
      if (!ok) {
        this.stream.pause();
        conn.socket.once('drain', () => this.stream.resume());
      }
    });
    this.stream.on('end', () => {
      if (chunked) conn.write('0\r\n\r\n');
      this.bodyDone = true;
    });
    this.stream.resume();
  }

  onResponseHead(conn: UpstreamConnection, res: ResponseHead): void {
    if (res.status < 200) return; // interim responses are not forwarded over h2
    const passive = this.groupRt?.passive;
    if (res.status >= 500) passive?.recordFailure(conn.target, this.ctx.sweeper.now);
    else passive?.recordSuccess(conn.target, performance.now() - this.sentAt, this.ctx.sweeper.now);
    const headers: http2.OutgoingHttpHeaders = { ':status': res.status };
    const tokens = res.connectionTokens;
    for (let i = 0; i < res.headers.length; i += 2) {
      const name = res.headers[i]!.toLowerCase();
      if (H2_FORBIDDEN.has(name) || tokens?.includes(name)) continue;
      const prev = headers[name];
      headers[name] =
        prev === undefined
          ? res.headers[i + 1]!
          : ([] as string[]).concat(prev as string, res.headers[i + 1]!);
    }
    const cookie = this.groupRt?.stickyCookie(conn.target, (n) =>
      res.headers.some(
        (h, i) => i % 2 === 0 && h.toLowerCase() === 'set-cookie' && res.headers[i + 1]!.startsWith(`${n}=`),
      ),
    );
    if (cookie)
      headers['set-cookie'] = ([] as string[]).concat(
        (headers['set-cookie'] as string[] | string | undefined) ?? [],
        cookie,
      );
    this.responded = true;
    this.countStatus(res.status);
    // HTTP/2 has its own framing: a chunked body goes out without the chunk framing.
    this.dechunker = res.chunked ? new ChunkedScanner(502) : undefined;
    if (!this.stream.destroyed) this.stream.respond(headers);
  }

  onResponseData(conn: UpstreamConnection, chunk: Buffer): void {
    if (this.dechunker) this.dechunker.scan(chunk, 0, (payload) => this.writeBody(conn, payload));
    else this.writeBody(conn, chunk);
  }

  private writeBody(conn: UpstreamConnection, chunk: Buffer): void {
    if (this.stream.destroyed) return;
    if (!this.stream.write(chunk)) {
      conn.socket.pause();
      this.stream.once('drain', () => conn.socket.resume());
    }
  }

  onResponseEnd(conn: UpstreamConnection): void {
    this.conn = undefined;
    this.endAttempt();
    if (this.bodyDone) this.ctx.poolFor(conn.target).release(conn);
    else conn.destroy();
    if (!this.stream.destroyed) this.stream.end();
  }

  onUpstreamError(conn: UpstreamConnection, _err: Error, timedOut: boolean): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    this.endAttempt();
    if (!(conn.reused && !conn.responseStarted && !timedOut))
      this.groupRt?.passive.recordFailure(conn.target, this.ctx.sweeper.now);
    if (this.responded) {
      this.stream.close(2 /* INTERNAL_ERROR */);
      return;
    }
    const idempotent = IDEMPOTENT.has(this.head.method);
    if (!timedOut && !conn.responseStarted && idempotent && this.bodyDone && this.head.contentLength <= 0) {
      if (this.ctx.retryBudget.tryRetry(this.ctx.sweeper.now))
        return this.tryNext(502, 'the target closed the connection');
    }
    this.respond(
      timedOut ? 504 : 502,
      timedOut
        ? 'the target did not answer in time\n'
        : 'the target closed the connection or answered malformed\n',
    );
  }

  onDataProcessed(): void {}

  private respond(status: number, body: string, extra: http2.OutgoingHttpHeaders = {}): void {
    this.endAttempt();
    if (this.stream.destroyed || this.responded) return;
    this.responded = true;
    this.countStatus(status);
    this.stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', ...extra });
    this.stream.end(body);
  }

  private countStatus(status: number): void {
    const cls = status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx';
    this.ctx.stats.responses[cls]++;
  }

  /** The client reset the stream: give up the target connection (its response has no reader). */
  private abort(): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.destroy();
    this.endAttempt();
  }
}
