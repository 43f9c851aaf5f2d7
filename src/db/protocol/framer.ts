// Splits a byte stream into whole PostgreSQL messages (type byte + int32 length + body) without
// copying: a message that lies entirely inside one chunk is handed out as a view of that chunk; only a
// message split across chunks is reassembled. Hand-written because the proxy forwards raw bytes and
// only peeks at a few message types: pg-protocol's parser would decode every message into objects.

export type MessageSink = (type: number, buf: Buffer, start: number, end: number) => void;

export class FramingError extends Error {
  constructor(
    message: string,
    readonly code = '08P01',
  ) {
    super(message);
  }
}

export class MessageFramer {
  private carry: Buffer | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes of an incomplete message held back, waiting for the rest. */
  get pendingBytes(): number {
    return this.carry?.length ?? 0;
  }

  /** Calls `sink` for every complete message; keeps a trailing partial one. Throws FramingError on a bad length. */
  push(chunk: Buffer, sink: MessageSink): void {
    let buf = chunk;
    let pos = 0;
    if (this.carry) {
      const carry = this.carry;
      if (carry.length < 5) {
        buf = Buffer.concat([carry, chunk]);
        this.carry = undefined;
      } else {
        const total = 1 + carry.readInt32BE(1);
        const need = total - carry.length;
        if (chunk.length < need) {
          this.carry = Buffer.concat([carry, chunk]);
          return;
        }
        const whole = Buffer.concat([carry, chunk.subarray(0, need)]);
        this.carry = undefined;
        sink(whole[0]!, whole, 0, whole.length);
        pos = need;
      }
    }
    const len = buf.length;
    while (pos < len) {
      if (len - pos < 5) {
        this.carry = Buffer.from(buf.subarray(pos));
        return;
      }
      const msgLen = buf.readInt32BE(pos + 1);
      if (msgLen < 4) throw new FramingError(`invalid message length ${msgLen}`);
      if (msgLen > this.maxMessageBytes) {
        throw new FramingError(
          `message length ${msgLen} exceeds the limit of ${this.maxMessageBytes} bytes`,
          '54000',
        );
      }
      const end = pos + 1 + msgLen;
      if (end > len) {
        this.carry = Buffer.from(buf.subarray(pos));
        return;
      }
      sink(buf[pos]!, buf, pos, end);
      pos = end;
    }
  }
}
