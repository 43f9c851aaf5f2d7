/**
 * Copies src[start, end) into dst at `at`; returns the byte count. Short runs are copied by a loop:
 * Buffer#copy makes a view per call, which costs more than the loop for the few dozen bytes of a
 * header line or a small read.
 */
export function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  const n = end - start;
  if (n > 64) src.copy(dst, at, start, end);
  else for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  return n;
}
