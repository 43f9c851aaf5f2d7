import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../core/log.js';
import { formatHostPort } from '../../core/types.js';
import type { Selection } from '../../balancing/types.js';
import type { Target } from '../../registry/target.js';
import type { GroupRuntime } from '../group-runtime.js';
import type { RetryBudget } from '../retry-budget.js';
import { redirectLocation, type RouteAction, type Router } from '../router.js';
import { ChunkedScanner } from './chunked.js';
import type { DeadlineSweeper, Expirable } from './deadlines.js';
import {
  buildClientResponseHead,
  buildUpstreamRequestHead,
  dropHeaderLines,
  type ForwardContext,
} from './forward-head.js';
import {
  findHeadEnd,
  HeaderKind,
  HttpParseError,
  parseRequestHead,
  type HeadLimits,
  type RequestHead,
  type ResponseHead,
} from './head-parser.js';
import { errorResponse, reasonPhrase } from './responses.js';
import type { UpstreamConnection, UpstreamOwner, UpstreamPool } from './upstream.js';

export interface ClientTimeouts {
  /** A started request head must be complete within this time (slow-loris defence): 408. */
  headerMs: number;
  /** An idle keep-alive client connection is closed after this time. */
  idleMs: number;
}

/** Counters a listener exposes (metrics are built from these). */
export interface ProxyStats {
  requests: number;
  responses: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  retries: number;
  rejected: number;
  upstreamErrors: number;
}

export function newProxyStats(): ProxyStats {
  return {
    requests: 0,
    responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    retries: 0,
    rejected: 0,
    upstreamErrors: 0,
  };
}

/** One finished request, for metrics and the access log. */
export interface RequestRecord {
  method: string;
  target: string;
  host: string | undefined;
  clientIp: string;
  rule: string;
  targetGroup: string | undefined;
  upstream: string | undefined;
  status: number;
  attempts: number;
  /** From the complete request head to the end of the response, in ms. */
  durationMs: number;
  /** From sending to the target to its response head, in ms (-1 if none). */
  upstreamMs: number;
  /** Why this answer: "forward", "redirect", "fixed-response", or the LB's own error. */
  reason: string;
}

/** Everything a client session needs from its listener. Shared by all sessions of a listener. */
export interface SessionContext {
  /** The listener's rules; replaced as a whole on reload, so a request sees one consistent set. */
  router: Router;
  groups: ReadonlyMap<string, GroupRuntime>;
  poolFor(target: Target): UpstreamPool;
  sweeper: DeadlineSweeper;
  retryBudget: RetryBudget;
  limits: HeadLimits;
  timeouts: ClientTimeouts;
  /** Attempts per request, the first included. */
  maxAttempts: number;
  proto: 'http' | 'https';
  listenerPort: number;
  isTrustedPeer(ip: string): boolean;
  stats: ProxyStats;
  /** Called once per finished request when metrics or an access log want it. */
  onRequest: ((record: RequestRecord) => void) | undefined;
  log: Logger;
  /** Set on graceful shutdown: finish the current request, then close. */
  closing: boolean;
  sessions: Set<ClientSession>;
}

/** Picks one of several weighted target groups (ALB's weighted forward, used for canaries). */
export function pickWeighted(groups: Array<{ name: string; weight: number }>): string | undefined {
  if (groups.length === 1) return groups[0]!.name;
  let total = 0;
  for (const g of groups) total += g.weight;
  let r = Math.random() * total;
  for (const g of groups) {
    r -= g.weight;
    if (r < 0) return g.name;
  }
  return undefined;
}

function setsCookie(headers: string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === 'set-cookie' && headers[i + 1]!.trimStart().startsWith(`${name}=`))
      return true;
  }
  return false;
}

/** Methods safe to send twice (RFC 9110 §9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const enum Phase {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** A target is being picked or connected; the client socket is paused. */
  Connecting,
  /** Streaming the request body to the target. */
  Body,
  /** The request is sent; waiting for the response to end. */
  Awaiting,
  Tunnel,
  Closed,
}

/**
 * One downstream (client) connection and the request it is currently proxying. Requests on a
 * connection are handled one at a time; pipelined ones wait in `pending`.
 */
export class ClientSession implements UpstreamOwner, Expirable {
  deadline = 0;
  private phase = Phase.Head;
  private pending: Buffer | undefined;
  private readonly clientIp: string;
  /** host:port the client connected to: the Host for HTTP/1.0 requests that send none. */
  private readonly localHost: string;
  private forward: ForwardContext | undefined;
  private forwardMatcher: ((ip: string) => boolean) | undefined;

  // The request in progress.
  private req: RequestHead | undefined;
  private upstreamHead: Buffer | string = '';
  private bodyRemaining = 0;
  private bodyScanner: ChunkedScanner | undefined;
  private requestBodyDone = true;
  private selection: Selection<Target> | undefined;
  private groupRt: GroupRuntime | undefined;
  private rule = 'default';
  private lastUpstream: string | undefined;
  private startedAt = 0;
  private upstreamMs = -1;
  private finalStatus = 0;
  private reason = '';
  private target: Target | undefined;
  private conn: UpstreamConnection | undefined;
  private attempts = 0;
  private lastFailure: { status: 502 | 504; detail: string; connect: boolean } = {
    status: 502,
    detail: '',
    connect: false,
  };
  private sentAt = 0;
  private responseStarted = false;
  private keepAlive = true;
  /** A response head not yet written: it goes out with the first body bytes in one write. */
  private pendingHead: ResponseHead | undefined;
  /** The LB's own header lines for pendingHead (a stickiness cookie). */
  private pendingHeadExtra = '';
  /** Set while a chunked response goes to an HTTP/1.0 client without its chunk framing. */
  private dechunker: ChunkedScanner | undefined;
  private clientEnded = false;
  /** After a 101 answer: the target socket that the client's bytes go to (a WebSocket tunnel). */
  private tunnel: net.Socket | undefined;

  /**
   * `dataEvents`: the socket's reads come as 'data' events; otherwise the owner passes them to
   * receive() (a socket read through net's `onread`).
   */
  constructor(
    readonly socket: net.Socket,
    private readonly ctx: SessionContext,
    dataEvents = true,
  ) {
    this.clientIp = socket.remoteAddress ?? '';
    this.localHost = formatHostPort(socket.localAddress ?? '127.0.0.1', socket.localPort ?? 80);
    ctx.sessions.add(this);
    ctx.sweeper.add(this);
    this.deadline = ctx.sweeper.after(ctx.timeouts.idleMs);
    socket.setNoDelay(true);
    if (dataEvents) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.onClientEnd());
    socket.on('error', () => this.close());
    socket.on('close', () => this.onClientClose());
    socket.on('drain', () => this.conn?.socket.resume());
  }

  /** Graceful shutdown: an idle connection closes now, a busy one after its response. */
  shutdown(): void {
    if (this.phase === Phase.Head && !this.pending) this.close();
    else if (!this.responseStarted) this.keepAlive = false;
  }

  onDeadline(): void {
    if (this.phase === Phase.Head) {
      if (this.pending && this.pending.length > 0) this.reject(408, 'request head not received in time');
      else this.close();
    } else if (this.phase === Phase.Body) {
      this.abortUpstream();
      this.reject(408, 'request body not received in time');
    }
  }

  // ---- client side ---------------------------------------------------------------------------------

  /** Bytes from the client. */
  receive(chunk: Buffer): void {
    try {
      this.handleClientData(chunk);
    } catch (err) {
      // A bug must cost one connection, never the process and everyone else's requests.
      this.ctx.log.error(
        { err, client: this.clientIp },
        'internal error while handling a request; connection closed',
      );
      if (!this.responseStarted && !this.socket.destroyed)
        this.socket.end(errorResponse(500, 'internal error', false));
      this.close();
    }
  }

  private handleClientData(chunk: Buffer): void {
    switch (this.phase) {
      case Phase.Head:
        if (!this.pending) {
          this.pending = chunk;
          this.deadline = this.ctx.sweeper.after(this.ctx.timeouts.headerMs);
        } else {
          this.pending = Buffer.concat([this.pending, chunk]);
        }
        this.tryStartRequest();
        return;
      case Phase.Body:
        this.deadline = this.ctx.sweeper.after(this.ctx.timeouts.idleMs);
        this.forwardBody(chunk);
        return;
      case Phase.Connecting:
      case Phase.Awaiting:
        // Body bytes before the target is ready, or the next pipelined request: hold them.
        this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
        this.socket.pause();
        return;
      case Phase.Tunnel:
        if (!this.tunnel!.write(chunk)) this.socket.pause(); // resumed on the target's 'drain'
        return;
      default:
        return;
    }
  }

  private onClientEnd(): void {
    this.clientEnded = true;
    if (this.phase === Phase.Tunnel) this.tunnel!.end();
    if (this.phase === Phase.Head && !this.pending) this.close();
  }

  private onClientClose(): void {
    this.phase = Phase.Closed;
    this.ctx.sessions.delete(this);
    this.ctx.sweeper.delete(this);
    if (this.conn) this.abortUpstream();
    this.endAttempt();
  }

  private tryStartRequest(): void {
    const buf = this.pending!;
    let head: RequestHead;
    try {
      const end = findHeadEnd(buf, this.ctx.limits, true);
      if (end === 0) return;
      head = parseRequestHead(buf, end, this.ctx.limits);
    } catch (err) {
      if (err instanceof HttpParseError) return this.reject(err.status, err.message);
      throw err;
    }
    this.pending = buf.length > head.headLength ? buf.subarray(head.headLength) : undefined;
    this.deadline = 0;
    this.ctx.stats.requests++;
    if (head.method === 'CONNECT') return this.reject(405, 'CONNECT is not supported by a reverse proxy');
    this.req = head;
    this.responseStarted = false;
    this.attempts = 0;
    this.lastFailure = { status: 502, detail: 'no target answered', connect: false };
    this.keepAlive =
      !this.ctx.closing && !head.connectionClose && (head.minor === 1 || head.connectionKeepAlive);
    this.bodyScanner = head.chunked ? new ChunkedScanner(400) : undefined;
    this.bodyRemaining = head.chunked ? 0 : Math.max(head.contentLength, 0);
    this.requestBodyDone = !head.chunked && this.bodyRemaining === 0;
    this.upstreamHead = buildUpstreamRequestHead(head, this.forwardContext());
    this.startedAt = performance.now();
    this.upstreamMs = -1;
    this.groupRt = undefined;
    const { action, rule } = this.ctx.router.route(head, this.clientIp);
    this.rule = rule;
    if (action.kind !== 'forward') return this.respondDirectly(action, head);
    const groupName = pickWeighted(action.groups);
    const groupRt = groupName === undefined ? undefined : this.ctx.groups.get(groupName);
    if (!groupRt) return this.respondError(503, 'no target group can take the request');
    this.groupRt = groupRt;
    this.reason = 'forward';
    this.ctx.retryBudget.recordRequest(this.ctx.sweeper.now);
    this.selection = groupRt.select(head, this.clientIp);
    const first = this.selection.next();
    if (!first) return this.respondError(503, 'no target is available');
    this.startAttempt(first);
  }

  /**
   * What the upstream head needs to know about this connection: made once, and again only when a
   * reload replaced the trusted-proxies matcher.
   */
  private forwardContext(): ForwardContext {
    const matcher = this.ctx.isTrustedPeer;
    if (this.forward === undefined || this.forwardMatcher !== matcher) {
      this.forwardMatcher = matcher;
      this.forward = {
        clientIp: this.clientIp,
        proto: this.ctx.proto,
        listenerPort: this.ctx.listenerPort,
        trustedPeer: matcher(this.clientIp),
        defaultHost: this.localHost,
      };
    }
    return this.forward;
  }

  /** Redirects and fixed responses, answered by the LB itself. */
  private respondDirectly(action: Exclude<RouteAction, { kind: 'forward' }>, head: RequestHead): void {
    // The body (if any) is not read: close after answering so it cannot be taken for a request.
    if (!this.requestBodyDone) this.keepAlive = false;
    let status: number;
    let extra = '';
    let body: string;
    let contentType = 'text/plain; charset=utf-8';
    if (action.kind === 'redirect') {
      status = action.status;
      const location = redirectLocation(action, head, { proto: this.ctx.proto, port: this.ctx.listenerPort });
      extra = `Location: ${location}\r\n`;
      body = '';
      this.reason = 'redirect';
    } else {
      status = action.status;
      body = action.body;
      contentType = action.contentType;
      this.reason = 'fixed-response';
    }
    this.countStatus(status);
    this.finalStatus = status;
    this.responseStarted = true;
    this.socket.write(
      `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n${extra}Content-Type: ${contentType}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n${this.keepAlive ? '' : 'Connection: close\r\n'}\r\n${body}`,
    );
    this.finishRequest();
  }

  // ---- attempts and retries --------------------------------------------------------------------------

  private startAttempt(target: Target): void {
    this.attempts++;
    this.target = target;
    this.lastUpstream = target.id;
    target.outstanding++;
    this.phase = Phase.Connecting;
    const { conn, ready } = this.ctx.poolFor(target).acquire(this);
    this.conn = conn;
    if (ready) this.sendRequest(conn);
    else this.socket.pause();
  }

  private endAttempt(): void {
    const target = this.target;
    if (target) {
      target.outstanding--;
      this.target = undefined;
      if (target.draining) this.groupRt?.checkDrained(target);
    }
  }

  /** Takes the next candidate if a retry is allowed; otherwise answers with the last failure. */
  private retryOrFail(): void {
    const now = this.ctx.sweeper.now;
    if (this.attempts < this.ctx.maxAttempts && this.ctx.retryBudget.tryRetry(now)) {
      const next = this.selection?.next();
      if (next) {
        this.ctx.stats.retries++;
        this.startAttempt(next);
        return;
      }
    }
    const { status, detail, connect } = this.lastFailure;
    // Failing open and still unable to connect: no target can take the request (ALB's 503).
    if (connect && status === 502 && this.groupRt?.group.failOpen)
      this.respondError(503, 'no healthy target is available');
    else this.respondError(status, detail);
  }

  onUpstreamConnect(conn: UpstreamConnection): void {
    if (this.conn !== conn || this.phase !== Phase.Connecting) {
      this.ctx.poolFor(conn.target).release(conn);
      return;
    }
    this.sendRequest(conn);
  }

  onUpstreamConnectError(conn: UpstreamConnection, err: Error, timedOut: boolean): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.ctx.stats.upstreamErrors++;
    this.groupRt?.passive.recordFailure(conn.target, this.ctx.sweeper.now, 'connect');
    this.lastFailure = timedOut
      ? { status: 504, detail: 'timed out connecting to the target', connect: true }
      : {
          status: 502,
          detail: `could not connect to the target (${(err as NodeJS.ErrnoException).code ?? err.message})`,
          connect: true,
        };
    this.endAttempt();
    this.retryOrFail();
  }

  private sendRequest(conn: UpstreamConnection): void {
    const req = this.req!;
    conn.beginRequest(this, req.method === 'HEAD');
    this.sentAt = performance.now();
    const rest = this.pending;
    this.pending = undefined;
    if (this.requestBodyDone) {
      conn.write(this.upstreamHead);
      this.phase = Phase.Awaiting;
      if (rest) this.pending = rest; // pipelined request
    } else {
      conn.socket.cork();
      conn.write(this.upstreamHead);
      this.phase = Phase.Body;
      this.deadline = this.ctx.sweeper.after(this.ctx.timeouts.idleMs);
      if (rest) this.forwardBody(rest);
      conn.socket.uncork();
    }
    if (this.phase === Phase.Body || !this.pending) this.socket.resume();
  }

  /** Streams request body bytes to the target; bytes past the body's end are the next request. */
  private forwardBody(chunk: Buffer): void {
    const conn = this.conn!;
    let body = chunk;
    let rest: Buffer | undefined;
    if (this.bodyScanner) {
      let end: number;
      try {
        end = this.bodyScanner.scan(chunk);
      } catch (err) {
        this.abortUpstream();
        return this.reject(400, (err as Error).message);
      }
      if (end !== -1) {
        this.requestBodyDone = true;
        if (end < chunk.length) {
          body = chunk.subarray(0, end);
          rest = chunk.subarray(end);
        }
      }
    } else if (chunk.length >= this.bodyRemaining) {
      if (chunk.length > this.bodyRemaining) {
        body = chunk.subarray(0, this.bodyRemaining);
        rest = chunk.subarray(this.bodyRemaining);
      }
      this.bodyRemaining = 0;
      this.requestBodyDone = true;
    } else {
      this.bodyRemaining -= chunk.length;
    }
    conn.touch();
    if (!conn.write(body)) {
      // Backpressure: stop reading the client until the target has taken what we sent.
      this.socket.pause();
      conn.socket.once('drain', () => {
        if (this.phase === Phase.Body) this.socket.resume();
      });
    }
    if (this.requestBodyDone) {
      this.phase = Phase.Awaiting;
      this.deadline = 0;
      if (rest) {
        this.pending = rest;
        this.socket.pause();
      }
    }
  }

  // ---- response side ---------------------------------------------------------------------------------

  onResponseHead(conn: UpstreamConnection, head: ResponseHead): void {
    if (head.status < 200) {
      if (head.status === 101) return this.startTunnel(conn, head);
      // Interim responses (100 Continue, 103 Early Hints) pass through.
      this.socket.write(buildClientResponseHead(head, true, this.req!.minor));
      return;
    }
    const latencyMs = performance.now() - this.sentAt;
    this.upstreamMs = latencyMs;
    const passive = this.groupRt?.passive;
    if (head.status >= 500) passive?.recordFailure(conn.target, this.ctx.sweeper.now);
    else passive?.recordSuccess(conn.target, latencyMs, this.ctx.sweeper.now);
    const untilClose =
      !head.chunked &&
      head.contentLength < 0 &&
      head.status !== 204 &&
      head.status !== 304 &&
      this.req!.method !== 'HEAD';
    if (untilClose || this.clientEnded) this.keepAlive = false;
    this.responseStarted = true;
    this.countStatus(head.status);
    if (head.chunked && this.req!.minor === 0) {
      // An HTTP/1.0 client cannot read chunked: send the bare body and mark its end by closing.
      this.keepAlive = false;
      this.dechunker = new ChunkedScanner(502);
      dropHeaderLines(head.wire, HeaderKind.TransferEncoding);
    }
    this.finalStatus = head.status;
    const cookie = this.groupRt?.stickyCookie(conn.target, (name) => setsCookie(head.headers, name));
    this.pendingHead = head;
    this.pendingHeadExtra = cookie === undefined ? '' : `Set-Cookie: ${cookie}\r\n`;
  }

  onResponseData(conn: UpstreamConnection, chunk: Buffer): void {
    if (this.dechunker) {
      // Framing was validated by the upstream side already; this pass only strips it.
      this.dechunker.scan(chunk, 0, (payload) => this.writeResponse(conn, payload));
      return;
    }
    this.writeResponse(conn, chunk);
  }

  private writeResponse(conn: UpstreamConnection, chunk: Buffer): void {
    let data = chunk;
    const head = this.pendingHead;
    if (head !== undefined) {
      // One write (one syscall) for head and body: most responses fit in a single chunk.
      this.pendingHead = undefined;
      data = buildClientResponseHead(head, this.keepAlive, this.req!.minor, this.pendingHeadExtra, chunk);
    }
    if (!this.socket.write(data)) conn.socket.pause(); // resumed on the client's 'drain'
  }

  onResponseEnd(conn: UpstreamConnection): void {
    this.flushHead();
    this.conn = undefined;
    this.endAttempt();
    const pool = this.ctx.poolFor(conn.target);
    if (this.requestBodyDone) pool.release(conn);
    else {
      // The target answered before the whole body arrived: neither connection is in a known state.
      conn.destroy();
      this.keepAlive = false;
    }
    this.finishRequest();
  }

  onUpstreamError(conn: UpstreamConnection, err: Error, timedOut: boolean): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.ctx.stats.upstreamErrors++;
    this.endAttempt();
    this.flushHead();
    // A reset on a reused keep-alive socket before any byte is the target closing an idle connection,
    // not a sign of ill health.
    if (!(conn.reused && !conn.responseStarted && !timedOut)) {
      this.groupRt?.passive.recordFailure(conn.target, this.ctx.sweeper.now);
    }
    if (this.responseStarted) {
      // Mid-response: the client cannot be told in-band; close so it sees a truncated message.
      this.ctx.log.warn({ target: conn.target.id, err: err.message }, 'target failed mid-response');
      this.close();
      return;
    }
    this.lastFailure = timedOut
      ? { status: 504, detail: 'the target did not answer in time', connect: false }
      : { status: 502, detail: 'the target closed the connection or answered malformed', connect: false };
    const req = this.req!;
    const bodyless = !req.chunked && req.contentLength <= 0;
    // Safe to resend: nothing came back, the method is idempotent and there is no body to replay.
    if (
      !timedOut &&
      !conn.responseStarted &&
      IDEMPOTENT.has(req.method) &&
      bodyless &&
      this.phase === Phase.Awaiting
    ) {
      this.retryOrFail();
      return;
    }
    this.respondError(this.lastFailure.status, this.lastFailure.detail);
  }

  onDataProcessed(): void {
    this.flushHead();
  }

  private flushHead(): void {
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      this.socket.write(
        buildClientResponseHead(head, this.keepAlive, this.req!.minor, this.pendingHeadExtra),
      );
    }
  }

  private startTunnel(conn: UpstreamConnection, head: ResponseHead): void {
    this.phase = Phase.Tunnel;
    this.conn = undefined;
    this.endAttempt();
    this.countStatus(101);
    this.deadline = 0;
    this.ctx.sweeper.delete(this);
    const client = this.socket;
    client.removeAllListeners('drain');
    const upstream = conn.detachTo(client);
    this.tunnel = upstream;
    client.write(buildClientResponseHead(head, true, this.req!.minor));
    if (this.pending) upstream.write(this.pending);
    this.pending = undefined;
    // From here on receive() passes the client's bytes to the target.
    upstream.on('drain', () => client.resume());
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.resume();
  }

  private countStatus(status: number): void {
    const cls =
      status < 200 ? '1xx' : status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx';
    this.ctx.stats.responses[cls]++;
  }

  /** The response is complete: next request on this connection, or close. */
  private finishRequest(): void {
    const req = this.req;
    if (req && this.ctx.onRequest) {
      this.ctx.onRequest({
        method: req.method,
        target: req.target,
        host: req.host,
        clientIp: this.clientIp,
        rule: this.rule,
        targetGroup: this.groupRt?.name,
        upstream: this.lastUpstream,
        status: this.finalStatus,
        attempts: this.attempts,
        durationMs: performance.now() - this.startedAt,
        upstreamMs: this.upstreamMs,
        reason: this.reason,
      });
    }
    this.req = undefined;
    this.dechunker = undefined;
    this.selection = undefined;
    if (!this.keepAlive || this.ctx.closing || this.phase === Phase.Closed) {
      this.phase = Phase.Closed;
      this.socket.end();
      return;
    }
    this.phase = Phase.Head;
    this.deadline = this.ctx.sweeper.after(this.ctx.timeouts.idleMs);
    if (this.pending) {
      this.deadline = this.ctx.sweeper.after(this.ctx.timeouts.headerMs);
      this.tryStartRequest();
    } else if (this.clientEnded) {
      this.close();
      return;
    }
    if (this.phase === Phase.Head) this.socket.resume();
  }

  // ---- errors ------------------------------------------------------------------------------------------

  /** The LB's own answer after the request head was read (502/503/504). */
  private respondError(status: number, detail: string): void {
    this.endAttempt();
    if (this.responseStarted) return this.close();
    if (!this.requestBodyDone) this.keepAlive = false;
    this.countStatus(status);
    this.finalStatus = status;
    this.reason = detail;
    this.responseStarted = true;
    this.socket.write(errorResponse(status, detail, this.keepAlive));
    this.finishRequest();
  }

  /** Refuses a client's request (400/405/408/413/431/501); the connection is closed after it. */
  private reject(status: number, detail: string): void {
    this.ctx.stats.rejected++;
    this.countStatus(status);
    this.ctx.log.info({ client: this.clientIp, status, detail }, 'request refused');
    this.phase = Phase.Closed;
    this.pending = undefined;
    this.deadline = 0;
    this.socket.end(errorResponse(status, detail, false));
    // Don't wait for a client that keeps sending: give the response a moment, then drop the socket.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private abortUpstream(): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.destroy();
  }

  close(): void {
    if (this.phase === Phase.Closed && this.socket.destroyed) return;
    this.phase = Phase.Closed;
    this.abortUpstream();
    this.socket.destroy();
  }
}
