// PostgreSQL's md5 password scheme: "md5" + md5(md5(password + user) + salt).
import { createHash } from 'node:crypto';

const md5hex = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** The stored form ("md5" + md5(password + user)); accepts an already-hashed value unchanged. */
export function md5Stored(user: string, password: string): string {
  return /^md5[0-9a-f]{32}$/.test(password) ? password : 'md5' + md5hex(password + user);
}

/** The response to an AuthenticationMD5Password challenge. */
export function md5Response(user: string, password: string, salt: Buffer): string {
  const inner = md5Stored(user, password).slice(3);
  return 'md5' + md5hex(Buffer.concat([Buffer.from(inner), salt]));
}
