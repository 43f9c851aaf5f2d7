// One table row of bench/loadgen/run.sh from a `scaleout load --json` result and /usr/bin/time's "user sys".
import { readFileSync } from 'node:fs';
const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const [user, sys] = readFileSync(process.argv[3], 'utf8').trim().split(/\s+/).map(Number);
const cols = [r.rate, r.achievedRate, r.maxSendLagMs, r.latency.p50, r.latency.p99, r.latency.max, r.failed];
const widths = [8, 10, 12, 9, 9, 9, 10];
console.log(
  cols.map((v, i) => String(v).padEnd(widths[i])).join(' ') + ' ' + Math.round(((user + sys) * 1e6) / r.sent),
);
