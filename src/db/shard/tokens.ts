// The read-your-writes token of a sharded session: one WAL position per shard, as
// "0:0/16B3748,1:0/3000060" (shard index, colon, LSN). Positions of different servers cannot be
// compared, so each is kept apart; clients treat the string as opaque and hand it back with
// SET scaleout.last_lsn = '…'.
import { formatLsn, parseLsn } from '../lsn.js';

export function formatShardLsns(lsns: bigint[], shards: number): string {
  const parts: string[] = [];
  for (let i = 0; i < shards; i++) parts.push(`${i}:${formatLsn(lsns[i] ?? 0n)}`);
  return parts.join(',');
}

/** The positions in a token, or undefined when it is not one (a wrong shard index included). */
export function parseShardLsns(text: string, shards: number): bigint[] | undefined {
  const out: bigint[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+):(.+?)\s*$/.exec(part);
    if (!m) return undefined;
    const shard = Number(m[1]);
    const lsn = parseLsn(m[2]!);
    if (shard >= shards || lsn === undefined) return undefined;
    out[shard] = lsn;
  }
  return out;
}
