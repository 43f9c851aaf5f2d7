// Memory for socket reads through net's `onread`: each read gets the unused tail of a slab, and the
// next read starts after it. Bytes are never overwritten, so views handed on (and perhaps still queued
// on another socket's write buffer) stay valid; a used-up slab is freed by the GC once no view points
// into it. This spares Node's per-read allocation and its stream 'data' machinery. One slab per socket:
// a slab shared by sockets would hand the same tail to two reads.

export class ReadSlab {
  private slab: Buffer;
  private used = 0;

  constructor(
    private readonly size = 128 * 1024,
    private readonly minFree = 16 * 1024,
  ) {
    this.slab = Buffer.allocUnsafe(size);
  }

  /** The buffer for the next read. */
  next(): Buffer {
    if (this.slab.length - this.used < this.minFree) {
      this.slab = Buffer.allocUnsafe(this.size);
      this.used = 0;
    }
    return this.slab.subarray(this.used);
  }

  /** Marks `nread` bytes of `buf` (the last buffer from next()) as used and returns them. */
  took(buf: Buffer, nread: number): Buffer {
    this.used += nread;
    return buf.subarray(0, nread);
  }
}
