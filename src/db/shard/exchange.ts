// Running a few messages on a server connection the caller owns and collecting the whole answer (up to
// the given number of ReadyForQuery messages): how scatter queries, all-shard writes and two-phase
// commit talk to several shards at once, outside the session's pipelined forwarding path.
import * as msg from '../protocol/messages.js';
import { parseErrorFields, type ServerConnection } from '../server-connection.js';

export interface ServerMessage {
  type: number;
  /** The whole message (type byte, length, body), copied out of the receive buffer. */
  raw: Buffer;
}

export class ExchangeError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export function exchange(conn: ServerConnection, parts: Buffer[], syncs: number): Promise<ServerMessage[]> {
  return new Promise((resolve, reject) => {
    const out: ServerMessage[] = [];
    let left = syncs;
    conn.handler = {
      onServerMessage: (_c, type, buf, start, end) => {
        out.push({ type, raw: Buffer.from(buf.subarray(start, end)) });
        if (type === 0x5a) {
          conn.status = String.fromCharCode(buf[start + 5]!) as 'I' | 'T' | 'E';
          if (--left === 0) {
            conn.handler = undefined;
            resolve(out);
          }
        }
      },
      onServerChunkEnd: () => {},
      onServerClose: (_c, err) => {
        conn.handler = undefined;
        reject(new ExchangeError(`${conn.endpoint.id}: ${err?.message ?? 'connection closed'}`, '08006'));
      },
    };
    conn.writeAll(parts);
  });
}

/** Runs one simple-protocol statement; rejects with the server's error. */
export async function simple(conn: ServerConnection, sql: string): Promise<ServerMessage[]> {
  const answer = await exchange(conn, [msg.query(sql)], 1);
  const err = firstError(answer);
  if (err)
    throw new ExchangeError(`${conn.endpoint.id}: ${err.get('M') ?? 'error'}`, err.get('C') ?? 'XX000');
  return answer;
}

export function firstError(answer: ServerMessage[]): Map<string, string> | undefined {
  const e = answer.find((m) => m.type === 0x45);
  return e ? parseErrorFields(e.raw, 0, e.raw.length) : undefined;
}

/** Builds Parse('' , sql, parameter types as the client gave them). */
export function parseMessage(sql: string, rest: Buffer): Buffer {
  const head = Buffer.from('\0' + sql + '\0', 'utf8');
  const out = Buffer.allocUnsafe(5 + head.length + rest.length);
  out.write('P', 0, 'latin1');
  out.writeInt32BE(4 + head.length + rest.length, 1);
  head.copy(out, 5);
  rest.copy(out, 5 + head.length);
  return out;
}

/** The client's Bind, re-aimed at the unnamed portal and statement. */
export function unnamedBind(raw: Buffer): Buffer {
  const portalEnd = raw.indexOf(0, 5);
  const stmtEnd = raw.indexOf(0, portalEnd + 1);
  const tail = raw.subarray(stmtEnd + 1);
  const out = Buffer.allocUnsafe(7 + tail.length);
  out.write('B', 0, 'latin1');
  out.writeInt32BE(6 + tail.length, 1);
  out[5] = 0;
  out[6] = 0;
  tail.copy(out, 7);
  return out;
}

const simpleMessage = (type: string, body: Buffer): Buffer => {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
};
export const describeStatement = (): Buffer => simpleMessage('D', Buffer.from('S\0', 'latin1'));
export const describePortal = (): Buffer => simpleMessage('D', Buffer.from('P\0', 'latin1'));
export const execute = (): Buffer => simpleMessage('E', Buffer.from([0, 0, 0, 0, 0]));
export const sync = (): Buffer => simpleMessage('S', Buffer.alloc(0));
export const parseComplete = (): Buffer => simpleMessage('1', Buffer.alloc(0));
export const bindComplete = (): Buffer => simpleMessage('2', Buffer.alloc(0));
export const closeComplete = (): Buffer => simpleMessage('3', Buffer.alloc(0));
export const noData = (): Buffer => simpleMessage('n', Buffer.alloc(0));
