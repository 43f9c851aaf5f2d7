// PostgreSQL WAL positions ("16/B374D848") as bigints, so they compare and subtract exactly.

export function parseLsn(text: string | null | undefined): bigint | undefined {
  if (!text) return undefined;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) return undefined;
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/**
 * pg_current_wal_insert_lsn() points past the header of a fresh WAL page (24 bytes, 40 at a segment
 * start) when the last record ended exactly at the page boundary, while a replica that replayed that
 * record reports the boundary itself. Stepping back over the header makes the two comparable.
 */
export function insertLsnToRecordEnd(lsn: bigint): bigint {
  const offset = lsn % 8192n;
  return offset === 24n || offset === 40n ? lsn - offset : lsn;
}
