/**
 * The rows of the table: what each one runs and how it is started. To add a row (e.g. `ours-workers2`
 * with `--workers 2` on two cores, or a TCP-mode pair), add one entry to ROWS; the rest of the harness
 * (rounds, lock, CPU accounting, checks, table, JSON) picks it up by name.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { BACKEND_PORTS, LISTEN, lbHaproxyConf, lbNginxConf } from './configs.js';

export interface RowContext {
  work: string;
  /** path of scaleout's dist/cli.js */
  cli: string;
  /** extra arguments for our LB rows (OURS_ARGS) */
  oursArgs: string[];
  /** Node.js flags put before the CLI for our LB rows (OURS_NODE_FLAGS) */
  oursNodeFlags: string[];
  /** which commands exist on this machine */
  has: (command: string) => boolean;
}

export interface Launch {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** CPUs to pin the proxy to; defaults to LB_CPU (one core) */
  cpus?: string;
}

export interface RowDef {
  name: string;
  /** one line for the table's notes */
  what: string;
  /** why the row cannot run here (it is then skipped with this note), or null */
  unavailable(ctx: RowContext): string | null;
  /** how to start the proxy; null means no proxy: wrk goes straight to the first backend */
  launch(ctx: RowContext): Launch | null;
}

const TARGET_ARGS = BACKEND_PORTS.flatMap((port) => ['--target', `127.0.0.1:${port}`]);

/** Our LB, started exactly as external benchmarks start it. */
function ours(name: string, what: string, extraArgs: string[] = []): RowDef {
  return {
    name,
    what,
    unavailable: (ctx) => (existsSync(ctx.cli) ? null : `${ctx.cli} not found (run npm run build)`),
    launch: (ctx) => ({
      command: process.execPath,
      args: [
        ...ctx.oursNodeFlags,
        ctx.cli,
        'lb',
        '--listen',
        `${LISTEN.host}:${LISTEN.port}`,
        ...TARGET_ARGS,
        ...extraArgs,
        ...ctx.oursArgs,
      ],
      env: { ...process.env, SCALEOUT_LOG_LEVEL: 'warn' },
    }),
  };
}

export const ROWS: RowDef[] = [
  {
    name: 'none',
    what: 'wrk straight to backend :9001, no proxy (reference)',
    unavailable: () => null,
    launch: () => null,
  },
  {
    name: 'nginx',
    what: 'nginx, 1 worker, upstream keepalive 64, HTTP/1.1 to targets',
    unavailable: (ctx) => (ctx.has('nginx') ? null : 'nginx not installed'),
    launch: (ctx) => {
      const dir = `${ctx.work}/lb-nginx`;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}.conf`, lbNginxConf(dir));
      return { command: 'nginx', args: ['-p', `${dir}/`, '-c', `${dir}.conf`, '-g', 'daemon off;'] };
    },
  },
  {
    name: 'haproxy',
    what: 'HAProxy, nbthread 1, mode http, balance roundrobin, http-reuse always',
    unavailable: (ctx) => (ctx.has('haproxy') ? null : 'haproxy not installed'),
    launch: (ctx) => {
      writeFileSync(`${ctx.work}/haproxy.cfg`, lbHaproxyConf());
      return { command: 'haproxy', args: ['-f', `${ctx.work}/haproxy.cfg`, '-db'] };
    },
  },
  ours('ours', 'scaleout lb (node dist/cli.js lb), one process'),
  {
    // All cores: a primary and two workers on both CPUs (shared with wrk and the targets on CPU 0, so
    // read its rps as what 2 workers add on this 2-core box, and its CPU per request across all three).
    ...ours('ours-workers2', 'scaleout lb --workers 2 on both CPUs', ['--workers', '2']),
    launch(ctx) {
      const base = ours('ours-workers2', '', ['--workers', '2']).launch(ctx)!;
      return { ...base, cpus: '0,1' };
    },
  },
];

export function findRow(name: string): RowDef | undefined {
  return ROWS.find((row) => row.name === name);
}
