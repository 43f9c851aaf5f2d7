import type { Socket } from 'node:net';

/** Up to this many bytes, separate parts are copied into one buffer rather than written as a writev. */
const JOIN_LIMIT = 16 * 1024;

/**
 * Writes parts with one socket write: a stream write costs far more than copying a few hundred bytes,
 * and a corked writev goes through more of Node's stream machinery than a single buffer. Parts that
 * are adjacent views of one received chunk (an extended-protocol batch passed through unchanged)
 * become one view without a copy. Returns what socket.write returned (false: the socket is full).
 */
export function writeParts(socket: Socket, parts: Buffer[]): boolean {
  if (parts.length === 1) return socket.write(parts[0]!);
  if (parts.length === 0) return true;
  const first = parts[0]!;
  let contiguous = true;
  let total = first.length;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.buffer !== first.buffer || p.byteOffset !== end) contiguous = false;
    end = p.byteOffset + p.length;
    total += p.length;
  }
  if (contiguous) return socket.write(Buffer.from(first.buffer, first.byteOffset, total));
  if (total <= JOIN_LIMIT) return socket.write(Buffer.concat(parts, total));
  let ok = true;
  socket.cork();
  for (const p of parts) ok = socket.write(p);
  socket.uncork();
  return ok;
}

/**
 * Collects bytes bound for one socket during the handling of one input chunk, merging adjacent views
 * of the same buffer, so forwarding a chunk of whole messages costs one write and no copy.
 */
export class Output {
  private parts: Buffer[] = [];
  private runBuf: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  add(buf: Buffer, start = 0, end = buf.length): void {
    if (this.runBuf === buf && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.closeRun();
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  }

  get empty(): boolean {
    return this.parts.length === 0 && this.runBuf === undefined;
  }

  private closeRun(): void {
    if (this.runBuf) {
      this.parts.push(
        this.runStart === 0 && this.runEnd === this.runBuf.length
          ? this.runBuf
          : this.runBuf.subarray(this.runStart, this.runEnd),
      );
      this.runBuf = undefined;
    }
  }

  /** Takes everything collected so far (and forgets it). */
  take(): Buffer[] {
    this.closeRun();
    const parts = this.parts;
    this.parts = [];
    return parts;
  }

  flushTo(socket: Socket): void {
    const parts = this.take();
    if (parts.length === 0 || socket.destroyed) return;
    writeParts(socket, parts);
  }
}
