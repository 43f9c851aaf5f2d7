/** Tiny HTTP GETs for readiness and for checking which backend answered (X-Backend). */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProbeAnswer {
  status: number;
  backend: string | undefined;
}

export function get(url: string, timeoutMs = 1000): Promise<ProbeAnswer> {
  return new Promise((done, fail) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => {
        const backend = res.headers['x-backend'];
        done({ status: res.statusCode ?? 0, backend: Array.isArray(backend) ? backend[0] : backend });
      });
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end();
  });
}

/** Wait until `url` answers 200, giving up after `timeoutMs` or as soon as `alive()` says the server died. */
export async function waitFor200(
  url: string,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) return false;
    try {
      if ((await get(url)).status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}
