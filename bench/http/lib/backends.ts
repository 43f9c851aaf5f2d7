/** The four nginx targets, and the per-backend request and connection counts from their access logs. */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, statSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BACKEND_PORTS, backendLog, backendNginxConf } from './configs.js';
import { waitFor200 } from './http-probe.js';
import { isRunning, startPinned } from './proc.js';

export class Backends {
  private constructor(
    readonly dir: string,
    readonly process: ChildProcess,
  ) {}

  static async start(work: string, cpus: string): Promise<Backends> {
    const dir = `${work}/backends`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/nginx.conf`, backendNginxConf(dir));
    const child = startPinned('nginx', ['-p', `${dir}/`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], {
      cpus,
      logFile: `${dir}/stdout.log`,
    });
    const backends = new Backends(dir, child);
    for (const port of BACKEND_PORTS) {
      if (!(await waitFor200(`http://127.0.0.1:${port}/`, 10_000, () => isRunning(child)))) {
        throw new Error(`backend nginx did not answer on :${port}; see ${dir}/stdout.log and error.log`);
      }
    }
    return backends;
  }

  /** SIGUSR1 makes nginx reopen its logs, and its worker writes out the buffered lines first. */
  async flushLogs(): Promise<void> {
    this.process.kill('SIGUSR1');
    await sleep(400);
  }

  /** Empty the logs between blocks so each stays small (nginx appends, so truncating is safe). */
  truncateLogs(): void {
    for (const port of BACKEND_PORTS) truncateSync(backendLog(this.dir, port), 0);
  }

  logSizes(): Map<number, number> {
    return new Map(BACKEND_PORTS.map((port) => [port, statSync(backendLog(this.dir, port)).size]));
  }

  /** Requests and distinct connections each backend logged since `from` (byte offsets). */
  countSince(from: Map<number, number>): BackendCount[] {
    return BACKEND_PORTS.map((port) => {
      const lines = readFrom(backendLog(this.dir, port), from.get(port) ?? 0)
        .split('\n')
        .filter(Boolean);
      return { port, requests: lines.length, connections: new Set(lines).size };
    });
  }
}

export interface BackendCount {
  port: number;
  requests: number;
  connections: number;
}

function readFrom(path: string, offset: number): string {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    let read = 0;
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return buf.subarray(0, read).toString('latin1');
  } finally {
    closeSync(fd);
  }
}
