import type { Socket } from 'node:net';

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
    if (parts.length === 1) {
      socket.write(parts[0]!);
      return;
    }
    socket.cork();
    for (const p of parts) socket.write(p);
    socket.uncork();
  }
}
