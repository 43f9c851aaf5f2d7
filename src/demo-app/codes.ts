// Short link codes: random, so that every app instance and every shard can mint them without asking
// anyone. A serial/sequence id would be unique only within one database: two shards would both hand
// out 1, 2, 3 … The code is also the shard key, so two equal codes always land on the same shard,
// where the primary key catches the (very rare) collision and the app simply tries another code.
import { randomInt } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 8 base-62 characters: 62^8 ≈ 2.2e14 codes. */
export const CODE_LENGTH = 8;

export function newCode(length = CODE_LENGTH): string {
  let code = '';
  for (let i = 0; i < length; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

/** A string that can be a code; anything else is answered 404 without asking the database. */
export function isCode(value: string): boolean {
  return /^[0-9A-Za-z]{4,32}$/.test(value);
}
