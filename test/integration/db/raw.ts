// Raw-socket PostgreSQL client for bad-input tests: sends exact bytes, collects what comes back.
import { connect } from 'node:net';
import { startupMessage } from '../../../src/db/protocol/messages.js';

export interface BackendMessage {
  type: string;
  body: Buffer;
}

export function parseMessages(buf: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  let pos = 0;
  while (pos + 5 <= buf.length) {
    const len = buf.readInt32BE(pos + 1);
    if (pos + 1 + len > buf.length) break;
    out.push({ type: String.fromCharCode(buf[pos]!), body: buf.subarray(pos + 5, pos + 1 + len) });
    pos += 1 + len;
  }
  return out;
}

/** SQLSTATE of an ErrorResponse body. */
export function sqlstate(m: BackendMessage | undefined): string | undefined {
  if (!m || m.type !== 'E') return undefined;
  const fields = m.body.toString('utf8').split('\0');
  return fields.find((f) => f.startsWith('C'))?.slice(1);
}

export interface Exchange {
  messages: BackendMessage[];
  /** The proxy closed the connection. */
  closed: boolean;
}

/**
 * Connects, optionally does a trust startup (waits for ReadyForQuery), then writes `payload`
 * (optionally half-closing) and collects everything until the proxy closes or `waitMs` passes.
 */
export function exchange(
  port: number,
  payload: Buffer,
  opts: { startup?: { user: string; database: string }; end?: boolean; waitMs?: number } = {},
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    let ready = !opts.startup;
    let sent = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      const all = parseMessages(data);
      // Drop the startup conversation: return only what answered the payload.
      const z = opts.startup ? all.findIndex((m) => m.type === 'Z') : -1;
      resolve({ messages: all.slice(z + 1), closed });
    };
    const send = (): void => {
      if (sent) return;
      sent = true;
      if (payload.length) sock.write(payload);
      if (opts.end) sock.end();
      timer = setTimeout(() => finish(false), opts.waitMs ?? 1500);
    };
    sock.on('connect', () => {
      if (opts.startup) sock.write(startupMessage(opts.startup));
      else send();
    });
    sock.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (!ready && parseMessages(data).some((m) => m.type === 'Z')) {
        ready = true;
        send();
      }
    });
    sock.on('close', () => finish(true));
    sock.on('error', (err) => {
      if (!sent) reject(err);
    });
  });
}
