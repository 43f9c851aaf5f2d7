// Helpers for the DNS integration tests: start the real `scaleout dns` binary, ask it with `dig`,
// and send raw packets over UDP/TCP.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';

const execFileAsync = promisify(execFile);
export const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

export interface RunningDns {
  port: number;
  adminPort: number | undefined;
  proc: ChildProcess;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Starts `node dist/cli.js dns ARGS` and waits for its "dns listening" startup line. */
export async function startDns(args: string[], timeoutMs = 10_000): Promise<RunningDns> {
  const proc = spawn(process.execPath, ['dist/cli.js', 'dns', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SCALEOUT_LOG_LEVEL: 'info' },
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pattern: RegExp; resolve: (l: Record<string, unknown>) => void }> = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      entry = { msg: line };
    }
    logs.push(entry);
    for (const w of [...waiters]) {
      if (w.pattern.test(String(entry.msg))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    }
  });
  const waitForLog = (pattern: RegExp, ms = timeoutMs) => {
    const found = logs.find((l) => pattern.test(String(l.msg)));
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no log line matching ${pattern} within ${ms} ms; stderr: ${stderr}`)),
        ms,
      );
      waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };
  const exited = once(proc, 'exit').then(([code]) => {
    throw new Error(`scaleout dns exited with ${code}: ${stderr}`);
  });
  const listening = await Promise.race([waitForLog(/^dns listening/), exited]);
  return {
    port: Number(listening.port),
    adminPort: typeof listening.admin === 'string' ? Number(listening.admin.split(':').at(-1)) : undefined,
    proc,
    logs,
    waitForLog,
    async stop() {
      exited.catch(() => {});
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await once(proc, 'exit');
      clearTimeout(timer);
    },
  };
}

/** Runs `dig @127.0.0.1 -p PORT ARGS` and returns its output. */
export async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('dig', [
    '@127.0.0.1',
    '-p',
    String(port),
    '+time=2',
    '+tries=1',
    ...args,
  ]);
  return stdout;
}

/** Status and answer lines of a dig answer. */
export function parseDig(out: string): {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
} {
  const status = /status: (\w+)/.exec(out)?.[1] ?? '';
  const flags = (/;; flags: ([^;]*);/.exec(out)?.[1] ?? '').trim().split(/\s+/);
  const section = (name: string) => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
    return m ? m[1]!.split('\n').filter((l) => l && !l.startsWith(';')) : [];
  };
  return { status, flags, answer: section('ANSWER'), authority: section('AUTHORITY') };
}

/** Sends one raw UDP packet and resolves with the reply, or undefined after `timeoutMs`. */
export async function udpExchange(
  port: number,
  packet: Buffer,
  timeoutMs = 1000,
): Promise<Buffer | undefined> {
  const socket = dgram.createSocket('udp4');
  try {
    const reply = new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.once('message', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
    socket.send(packet, port, '127.0.0.1');
    return await reply;
  } finally {
    socket.close();
  }
}

export function query(name: string, type: string, extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: Math.floor(Math.random() * 65535),
    flags: 0,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    ...extra,
  });
}

/** A TCP connection that collects length-framed replies. */
export async function tcpConnect(port: number): Promise<{
  socket: net.Socket;
  replies: Buffer[];
  nextReply(timeoutMs?: number): Promise<Buffer | undefined>;
  closed: Promise<void>;
}> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const replies: Buffer[] = [];
  let pending = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
      pending = pending.subarray(2 + pending.readUInt16BE(0));
    }
    wake?.();
  });
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => undefined);
  let taken = 0;
  return {
    socket,
    replies,
    closed,
    async nextReply(timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      while (replies.length <= taken && Date.now() < deadline && !socket.destroyed) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
      return replies[taken++];
    },
  };
}

export function frame(packet: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(packet.length);
  return Buffer.concat([len, packet]);
}

/** Fetches JSON or text from the admin endpoint. */
export async function admin(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
