// Text for people: the live progress line and the end-of-run summary.
import type { LoadProgress, LoadResult } from './index.js';

const fmtMs = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** One line, rewritten in place on a terminal: [#####.....] 12s/30s  1000/s  ok 12000  failed 3  p99 4.20 ms */
export function progressLine(p: LoadProgress, width = 20): string {
  const done = Math.min(1, p.elapsedMs / p.durationMs);
  const filled = Math.round(done * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const total = `${+(p.durationMs / 1000).toFixed(1)}s`;
  // Past the duration nothing new is sent: only answers (or timeouts) of requests in flight remain.
  const secs =
    p.elapsedMs < p.durationMs ? `${Math.floor(p.elapsedMs / 1000)}s/${total}` : `${total} sent, finishing`;
  return (
    `${bar} ${secs}  ${Math.round(p.rate)}/s  ok ${p.ok}  failed ${p.failed}` +
    `  p99 ${fmtMs(p.p99)} ms  in flight ${p.inFlight}`
  );
}

function pct(n: number, total: number): string {
  return total === 0 ? '0%' : `${((n * 100) / total).toFixed(1)}%`;
}

function pairs(record: Record<string, number>, total?: number): string {
  const entries = Object.entries(record);
  if (entries.length === 0) return '(none)';
  return entries.map(([k, v]) => `${k}: ${v}${total ? ` (${pct(v, total)})` : ''}`).join('  ');
}

export function summaryText(r: LoadResult): string {
  const mix = r.mix
    ? `mix ${Object.entries(r.mix)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}`
    : 'GET';
  const l = r.latency;
  const lines = [
    `scaleout load ${r.url}: ${r.rate}/s for ${r.durationMs / 1000} s, ${mix}, ${r.connections} connections${r.aborted ? ' (stopped early)' : ''}`,
    `requests   ${r.sent} sent, ${r.ok} ok, ${r.failed} failed; ${r.achievedRate}/s achieved` +
      `; the generator was at most ${fmtMs(r.maxSendLagMs)} ms behind its schedule`,
    `latency    (ms, from each request's scheduled time; ${l.count} answers)`,
    `           min ${fmtMs(l.min)}  p50 ${fmtMs(l.p50)}  p90 ${fmtMs(l.p90)}  p99 ${fmtMs(l.p99)}` +
      `  p99.9 ${fmtMs(l.p999)}  max ${fmtMs(l.max)}  mean ${fmtMs(l.mean)}`,
  ];
  const kinds = Object.entries(r.kinds);
  if (r.mode === 'mix' || kinds.length > 1) {
    lines.push('by kind');
    for (const [kind, k] of kinds) {
      lines.push(
        `  ${kind.padEnd(6)} ${String(k.sent).padStart(8)} sent  ok ${k.ok}  failed ${k.failed}` +
          `  p50 ${fmtMs(k.latency.p50)}  p99 ${fmtMs(k.latency.p99)}  max ${fmtMs(k.latency.max)} ms`,
      );
    }
  }
  lines.push(`status     ${pairs(r.statusCodes)}`);
  lines.push(`errors     ${pairs(r.errors as Record<string, number>)}`);
  const answered = Object.values(r.instances).reduce((a, b) => a + b, 0) + r.unlabelled;
  lines.push(
    `instances  ${Object.keys(r.instances).length ? pairs(r.instances, answered) : '(no X-Scaleout-Instance header)'}` +
      (r.unlabelled && Object.keys(r.instances).length ? `  without header: ${r.unlabelled}` : ''),
  );
  const badSeconds = r.timeline.filter((s) => s.failed > 0).map((s) => s.second);
  if (badSeconds.length)
    lines.push(
      `failures   in second${badSeconds.length > 1 ? 's' : ''} ${compactRanges(badSeconds)} of the run`,
    );
  return lines.join('\n') + '\n';
}

/** [0,1,2,5,7,8] → "0-2, 5, 7-8" */
export function compactRanges(values: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < values.length;) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    out.push(i === j ? `${values[i]}` : `${values[i]}-${values[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}
