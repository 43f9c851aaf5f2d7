import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The LB's stickiness cookie: which target a client is pinned to, until when, signed with HMAC so a
 * client cannot pick (or forge) a target. Format: base64url(targetId).expirySeconds.signature.
 */
export class StickyCookieCodec {
  constructor(private readonly secret: Buffer) {}

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url').slice(0, 22);
  }

  encode(targetId: string, expiresAtMs: number): string {
    const payload = `${Buffer.from(targetId).toString('base64url')}.${Math.floor(expiresAtMs / 1000)}`;
    return `${payload}.${this.sign(payload)}`;
  }

  /** The target id if the value is authentic and not expired, else undefined. */
  decode(value: string, nowMs: number): string | undefined {
    const last = value.lastIndexOf('.');
    if (last <= 0) return undefined;
    const payload = value.slice(0, last);
    const given = Buffer.from(value.slice(last + 1));
    const expected = Buffer.from(this.sign(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const [id, expiry] = payload.split('.');
    if (!id || !expiry || Number(expiry) * 1000 < nowMs) return undefined;
    return Buffer.from(id, 'base64url').toString();
  }
}

/** Finds a cookie's value in a request's Cookie headers. */
export function findCookie(cookieHeaders: string[], name: string): string | undefined {
  for (const header of cookieHeaders) {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}
