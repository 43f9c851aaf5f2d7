import net from 'node:net';
import { copyBytes } from './copy-bytes.js';

// Socket reads without Node's stream machinery: through net's `onread`, into one shared buffer.
//
// Accepted connections need a trick, written by hand because no library does it: net.connect() takes
// an `onread` option (reads land in a buffer we own and reach one callback), but net.Server has none,
// so every accepted socket gets a fresh buffer per read and a stream 'data' event with its next-tick
// bookkeeping. On a proxy that is a large share of the CPU and of the garbage per request. Node's
// net.Socket does take an existing handle and `onread` together, so an accepted socket, while still
// paused (pauseOnConnect), is moved into a new Socket built that way. This uses the socket's
// `_handle`, which is not public API; when it is not there as expected, the accepted socket is used as
// it is and reads arrive as 'data' events (same behaviour, more CPU).

/** One buffer for every socket's reads: each read is copied out before the next read can happen. */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Copies the first `nread` bytes of the shared buffer into a buffer of their own. */
function copyOut(nread: number): Buffer {
  const chunk = Buffer.allocUnsafe(nread);
  copyBytes(SHARED_READ_BUFFER, 0, nread, chunk, 0);
  return chunk;
}

/**
 * net's `onread` option for a socket whose reads should reach `onData`, each in a fresh buffer that is
 * safe to keep. All such sockets read into one shared buffer: a read's callback runs right after the
 * read, on this thread, and copies the bytes out before returning.
 */
export function sharedOnread(onData: (chunk: Buffer) => void): net.OnReadOpts {
  return {
    buffer: SHARED_READ_BUFFER,
    callback: (nread: number): boolean => {
      onData(copyOut(nread));
      return true;
    },
  };
}

interface ServerInternals {
  _connections: number;
}

interface SocketInternals {
  _handle: { readStart?: unknown; reading?: boolean } | null;
  _server?: unknown;
  server?: unknown;
}

/**
 * For an accepted socket of a server created with `pauseOnConnect: true`: returns a socket on the same
 * connection whose reads are passed to `onData` (a fresh buffer each, safe to keep), or undefined when
 * this Node cannot do it (then use `accepted` itself, resumed, with a 'data' listener).
 */
export function rewrapWithOnread(
  accepted: net.Socket,
  server: net.Server,
  allowHalfOpen: boolean,
  onData: (chunk: Buffer) => void,
): net.Socket | undefined {
  const old = accepted as unknown as SocketInternals;
  const handle = old._handle;
  if (
    handle === null ||
    typeof handle !== 'object' ||
    typeof handle.readStart !== 'function' ||
    handle.reading === true ||
    typeof (server as unknown as ServerInternals)._connections !== 'number'
  ) {
    return undefined;
  }
  // The old Socket gives up the handle without closing it; the new one owns it from here on and, as the
  // old one would have, lowers the server's connection count when it is destroyed.
  old._handle = null;
  const socket = new net.Socket({
    handle,
    allowHalfOpen,
    readable: true,
    writable: true,
    onread: sharedOnread(onData),
  } as net.SocketConstructorOpts);
  const internals = socket as unknown as SocketInternals;
  internals.server = server;
  internals._server = server;
  return socket;
}
