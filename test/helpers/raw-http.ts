// Sends raw bytes over a TCP socket and returns everything the server sent back, for tests of
// malformed input that no well-behaved HTTP client would produce.
import net from 'node:net';

export interface RawResult {
  text: string;
  /** The server closed the connection (FIN or reset) before our timeout. */
  closed: boolean;
}

export function rawExchange(port: number, payload: string | Buffer, waitMs = 1500): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(finish, waitMs);
    function finish() {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    }
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(payload);
  });
}

/** The status code of the first response in `text`, or 0. */
export function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}
