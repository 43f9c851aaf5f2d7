/**
 * ELB's success-code matcher: "200", "200,202", "200-299" or a mix ("200-299,301").
 * Returns a predicate; throws a readable error for a bad spec.
 */
export function parseSuccessCodes(spec: string): (status: number) => boolean {
  const ranges: Array<[number, number]> = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d{3})(?:\s*-\s*(\d{3}))?\s*$/.exec(part);
    if (!m) throw new Error(`invalid success codes "${spec}": expected e.g. "200", "200,202" or "200-399"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 100 || hi > 599 || lo > hi) throw new Error(`invalid success code range "${part.trim()}"`);
    ranges.push([lo, hi]);
  }
  return (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi);
}
