// One connection from the proxy to a PostgreSQL server: connect, start up, authenticate (trust, md5,
// SCRAM-SHA-256), then hand every complete server message to whichever handler owns it right now (a
// client session, or the proxy itself for health checks and resets).
import { connect, type Socket } from 'node:net';
import { MessageFramer } from './protocol/framer.js';
import * as msg from './protocol/messages.js';
import { writeParts } from './output.js';
import { ScramClient, SCRAM_MECHANISM } from './auth/scram.js';
import { md5Response } from './auth/md5.js';
import { sharedOnread } from '../core/shared-onread.js';

export interface ServerEndpoint {
  /** "host:port", used as the target id. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly database: string;
  readonly role: 'primary' | 'replica';
}

export interface ServerHandler {
  onServerMessage(conn: ServerConnection, type: number, buf: Buffer, start: number, end: number): void;
  onServerChunkEnd(conn: ServerConnection): void;
  onServerClose(conn: ServerConnection, error?: Error): void;
}

export class ServerError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly severity = 'ERROR',
  ) {
    super(message);
  }
}

/** Reads the fields of an ErrorResponse/NoticeResponse message. */
export function parseErrorFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const out = new Map<string, string>();
  let pos = start + 5;
  while (pos < end && buf[pos] !== 0) {
    const code = String.fromCharCode(buf[pos]!);
    const nul = buf.indexOf(0, pos + 1);
    if (nul < 0 || nul >= end) break;
    out.set(code, buf.toString('utf8', pos + 1, nul));
    pos = nul + 1;
  }
  return out;
}

/** SQLSTATE of an ErrorResponse, without decoding the other fields. */
export function errorCode(buf: Buffer, start: number, end: number): string {
  return parseErrorFields(buf, start, end).get('C') ?? '';
}

let nextConnectionId = 1;

export class ServerConnection {
  readonly id = nextConnectionId++;
  readonly params = new Map<string, string>();
  pid = 0;
  secret = 0;
  /** Server-side names of the prepared statements this connection holds (see session.ts). */
  readonly prepared = new Set<string>();
  /** Last ReadyForQuery status. */
  status: 'I' | 'T' | 'E' = 'I';
  handler: ServerHandler | undefined;
  closed = false;
  /** Set when the proxy destroyed it on purpose (not a failure of the server). */
  discarded = false;
  readonly createdAt = Date.now();
  private readonly framer: MessageFramer;
  private readonly sink = (type: number, buf: Buffer, start: number, end: number): void => {
    this.handler?.onServerMessage(this, type, buf, start, end);
  };

  private constructor(
    readonly endpoint: ServerEndpoint,
    readonly socket: Socket,
  ) {
    this.framer = new MessageFramer(1 << 30);
    socket.setNoDelay(true);
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** Called with each chunk read from the server (net `onread`, see shared-onread.ts). */
  private onRead(chunk: Buffer): void {
    try {
      this.framer.push(chunk, this.sink);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.handler?.onServerChunkEnd(this);
  }

  write(data: Buffer): void {
    if (!this.closed) this.socket.write(data);
  }

  writeAll(parts: Buffer[]): void {
    if (!this.closed) writeParts(this.socket, parts);
  }

  destroy(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.socket.destroyed) {
      if (!error && this.socket.writable) this.socket.end(msg.terminate());
      this.socket.destroy();
    }
    this.handler?.onServerClose(this, error);
  }

  /** Discards this connection on purpose (it will not count as a server failure). */
  discard(): void {
    this.discarded = true;
    this.destroy();
  }

  static connect(
    endpoint: ServerEndpoint,
    options: { timeoutMs: number; applicationName: string },
  ): Promise<ServerConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: endpoint.host,
        port: endpoint.port,
        onread: sharedOnread((chunk) => conn.onRead(chunk)),
      });
      const conn = new ServerConnection(endpoint, socket);
      let done = false;
      const timer = setTimeout(
        () => fail(new ServerError(`timeout connecting to ${endpoint.id}`, '08001')),
        options.timeoutMs,
      );
      const fail = (err: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        conn.handler = undefined;
        conn.destroy();
        reject(err);
      };
      let scram: ScramClient | undefined;
      conn.handler = {
        onServerMessage: (c, type, buf, start, end) => {
          try {
            switch (type) {
              case 0x52: // R
                handleAuth(buf.readInt32BE(start + 5), buf.subarray(start + 9, end));
                break;
              case 0x53: {
                // S ParameterStatus
                const nul = buf.indexOf(0, start + 5);
                c.params.set(buf.toString('utf8', start + 5, nul), buf.toString('utf8', nul + 1, end - 1));
                break;
              }
              case 0x4b: // K
                c.pid = buf.readInt32BE(start + 5);
                c.secret = buf.readInt32BE(start + 9);
                break;
              case 0x45: {
                const f = parseErrorFields(buf, start, end);
                fail(
                  new ServerError(
                    `${endpoint.id}: ${f.get('M') ?? 'error'}`,
                    f.get('C') ?? '08006',
                    f.get('S'),
                  ),
                );
                break;
              }
              case 0x5a: // Z: ready
                if (done) return;
                done = true;
                clearTimeout(timer);
                conn.handler = undefined;
                resolve(conn);
                break;
            }
          } catch (err) {
            fail(err as Error);
          }
        },
        onServerChunkEnd: () => {},
        onServerClose: (_c, err) =>
          fail(
            new ServerError(`${endpoint.id}: ${err?.message ?? 'connection closed during startup'}`, '08006'),
          ),
      };
      const handleAuth = (code: number, data: Buffer): void => {
        const password = endpoint.password;
        switch (code) {
          case 0:
            return;
          case 3:
            if (password === undefined)
              throw new ServerError(`${endpoint.id} asks for a password; none configured`, '28P01');
            conn.write(msg.passwordMessage(password));
            return;
          case 5:
            if (password === undefined)
              throw new ServerError(`${endpoint.id} asks for a password; none configured`, '28P01');
            conn.write(msg.passwordMessage(md5Response(endpoint.user, password, data.subarray(0, 4))));
            return;
          case 10: {
            if (password === undefined)
              throw new ServerError(`${endpoint.id} asks for a password; none configured`, '28P01');
            const mechanisms = data.toString('utf8').split('\0');
            if (!mechanisms.includes(SCRAM_MECHANISM))
              throw new ServerError(`${endpoint.id} offers no supported SASL mechanism`, '28000');
            scram = new ScramClient(password);
            conn.write(msg.saslInitialResponse(SCRAM_MECHANISM, scram.first()));
            return;
          }
          case 11:
            if (!scram) throw new ServerError('unexpected SASL continue', '08P01');
            conn.write(msg.saslResponse(scram.final(data.toString('utf8'))));
            return;
          case 12:
            if (!scram?.verify(data.toString('utf8')))
              throw new ServerError(`${endpoint.id}: SCRAM server signature mismatch`, '28000');
            return;
          default:
            throw new ServerError(
              `${endpoint.id} asks for unsupported authentication method ${code}`,
              '28000',
            );
        }
      };
      socket.once('connect', () => {
        conn.write(
          msg.startupMessage({
            user: endpoint.user,
            database: endpoint.database,
            application_name: options.applicationName,
            client_encoding: 'UTF8',
          }),
        );
      });
    });
  }

  /**
   * Runs one simple query on a connection nobody else owns (health checks, LSN reads, resets) and
   * returns its rows as text. Rejects with ServerError on an ErrorResponse.
   */
  query(sql: string, timeoutMs = 5000): Promise<(string | null)[][]> {
    return new Promise((resolve, reject) => {
      const rows: (string | null)[][] = [];
      let error: ServerError | undefined;
      const timer = setTimeout(() => {
        this.handler = undefined;
        this.destroy(new Error(`query timed out after ${timeoutMs} ms`));
        reject(new ServerError(`${this.endpoint.id}: query timed out after ${timeoutMs} ms`, '57014'));
      }, timeoutMs);
      this.handler = {
        onServerMessage: (_c, type, buf, start, end) => {
          if (type === 0x44) {
            const n = buf.readInt16BE(start + 5);
            let pos = start + 7;
            const row: (string | null)[] = [];
            for (let i = 0; i < n; i++) {
              const len = buf.readInt32BE(pos);
              pos += 4;
              if (len < 0) row.push(null);
              else {
                row.push(buf.toString('utf8', pos, pos + len));
                pos += len;
              }
            }
            rows.push(row);
          } else if (type === 0x45) {
            const f = parseErrorFields(buf, start, end);
            error = new ServerError(
              `${this.endpoint.id}: ${f.get('M') ?? 'error'}`,
              f.get('C') ?? 'XX000',
              f.get('S'),
            );
          } else if (type === 0x5a) {
            this.status = String.fromCharCode(buf[start + 5]!) as 'I' | 'T' | 'E';
            clearTimeout(timer);
            this.handler = undefined;
            if (error) reject(error);
            else resolve(rows);
          }
        },
        onServerChunkEnd: () => {},
        onServerClose: (_c, err) => {
          clearTimeout(timer);
          this.handler = undefined;
          reject(new ServerError(`${this.endpoint.id}: ${err?.message ?? 'connection closed'}`, '08006'));
        },
      };
      this.write(msg.query(sql));
    });
  }
}
