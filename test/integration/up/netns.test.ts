// Beyond one machine, tested on one: the topology split over network namespaces, each a "host" with
// its own address on a private bridge, every component started by hand as it would be on its own
// host (`scaleout db-proxy`, `demo-app`, `lb`, `dns`; no `up`), against real PostgreSQL servers.
//
//   client (root ns, .1) ──DNS──▶ dns host (.5) ──followLb──▶ lb host (.4) admin API
//          └──HTTP──▶ lb host (.4:80) ──▶ app host (.3): app-1, app-2 ──▶ its local db-proxy ──▶ db host (.2): primary :5432, replica :5433
//
// Needs root and `ip netns` (the test says why it is skipped otherwise). Traffic stays on a bridge
// with no route off the machine; every process runs under `setpriv --pdeathsig`, and the namespaces
// (with anything left in them) are deleted at the end.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { findPostgres } from '../../../src/topology/pg-binaries.js';
import {
  ownDir,
  preparePrimary,
  prepareReplica,
  type PgServerSpec,
} from '../../../src/topology/pg-server.js';
import { pgOsUser } from '../../../src/topology/preflight.js';
import { runLoad } from '../../../src/loadgen/index.js';
import { CLI } from '../../e2e/helpers.js';

const id = Math.random().toString(36).slice(2, 7);
const subnet = `10.213.${1 + Math.floor(Math.random() * 250)}`;
const bridge = `sob${id}`;
const hosts = { db: `${subnet}.2`, app: `${subnet}.3`, lb: `${subnet}.4`, dns: `${subnet}.5` };
const ns = (host: keyof typeof hosts) => `so-${id}-${host}`;
const TOKEN = 'netns-example-admin-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function netnsUsable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  const probe = spawnSync('ip', ['netns', 'add', `so-${id}-probe`], { encoding: 'utf8' });
  if (probe.status !== 0)
    return `ip netns is not available here: ${probe.stderr.trim() || probe.error?.message}`;
  spawnSync('ip', ['netns', 'del', `so-${id}-probe`]);
  return undefined;
}

/** A private bridge in the root namespace (the client's side) and one namespace per host. */
function buildNetwork(): void {
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  for (const [i, [name, address]] of (
    Object.entries(hosts) as Array<[keyof typeof hosts, string]>
  ).entries()) {
    const outside = `sv${id}${i}`;
    const inside = `sp${id}${i}`;
    ip('netns', 'add', ns(name));
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', outside, 'master', bridge, 'up');
    ip('link', 'set', inside, 'netns', ns(name));
    ip('-n', ns(name), 'addr', 'add', `${address}/24`, 'dev', inside);
    ip('-n', ns(name), 'link', 'set', inside, 'up');
    ip('-n', ns(name), 'link', 'set', 'lo', 'up');
  }
}

function tearDown(): void {
  for (const name of Object.keys(hosts) as Array<keyof typeof hosts>) {
    const pids = spawnSync('ip', ['netns', 'pids', ns(name)], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('ip', ['netns', 'del', ns(name)]);
  }
  spawnSync('ip', ['link', 'del', bridge]);
}

const children: ChildProcess[] = [];
let dir = '';

/** Runs a command on a "host": inside its namespace, killed if this test process dies. */
function onHost(host: keyof typeof hosts, name: string, command: string[], user?: string): ChildProcess {
  const log = openSync(join(dir, `${name}.log`), 'a');
  const userArgs = user ? [`--reuid=${user}`, `--regid=${user}`, '--init-groups'] : [];
  const child = spawn(
    'ip',
    ['netns', 'exec', ns(host), 'setpriv', '--pdeathsig', 'SIGKILL', ...userArgs, '--', ...command],
    { stdio: ['ignore', log, log] },
  );
  children.push(child);
  return child;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    await sleep(200);
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms`);
}

after(() => {
  for (const c of children) c.kill('SIGKILL');
  tearDown();
  if (dir && process.env.SCALEOUT_KEEP_TEST_DIRS !== '1') rmSync(dir, { recursive: true, force: true });
});

const skip = netnsUsable();

test(
  'the topology across network namespaces: DNS → LB → apps → db-proxy → primary + replica',
  { skip },
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'scaleout-netns-'));
    chmodSync(dir, 0o755);
    buildNetwork();

    // db host: a primary and a streaming replica, reachable from the subnet.
    const { binDir } = await findPostgres();
    const env = { binDir, osUser: pgOsUser() };
    ownDir(env, join(dir, 'pg'));
    const primary: PgServerSpec = {
      name: 'primary',
      role: 'primary',
      shard: 0,
      host: hosts.db,
      port: 5432,
      dataDir: join(dir, 'pg', 'primary'),
      user: 'postgres',
      database: 'app',
      settings: { fsync: 'off' },
      allowFrom: [`${subnet}.0/24`],
    };
    const replica: PgServerSpec = {
      ...primary,
      name: 'replica',
      role: 'replica',
      port: 5433,
      dataDir: join(dir, 'pg', 'replica'),
      primary: { host: hosts.db, port: 5432, dataDir: primary.dataDir },
    };
    preparePrimary(env, primary);
    prepareReplica(env, replica);
    for (const s of [primary, replica]) {
      const args = ['-D', s.dataDir, '-p', String(s.port), '-c', `listen_addresses=${hosts.db}`];
      args.push('-c', 'unix_socket_directories=');
      if (s.primary) args.push('-c', `primary_conninfo=host=${hosts.db} port=5432 user=postgres`);
      onHost('db', s.name, [join(binDir, 'postgres'), ...args], pgOsUser());
    }

    // app host: its own db-proxy on loopback, and two app instances on the host's address.
    const db = (port: number) => `postgres://postgres@${hosts.db}:${port}/app`;
    onHost('app', 'db-proxy', [
      process.execPath,
      CLI,
      'db-proxy',
      '--listen',
      '127.0.0.1:6432',
      '--primary',
      db(5432),
      '--replica',
      db(5433),
      '--admin',
      `${hosts.app}:9187`,
    ]);
    for (const i of [1, 2]) {
      onHost('app', `app-${i}`, [
        process.execPath,
        CLI,
        'demo-app',
        '--listen',
        `${hosts.app}:300${i}`,
        '--database',
        'postgres://postgres@127.0.0.1:6432/app',
        '--instance',
        `app-${i}`,
      ]);
    }

    // lb host: the load balancer, its admin API on the subnet behind a token.
    const lbConfig = join(dir, 'lb.yaml');
    writeFileSync(
      lbConfig,
      stringify({
        listeners: { web: { listen: `${hosts.lb}:80`, defaultAction: { forward: { targetGroup: 'app' } } } },
        targetGroups: {
          app: {
            targets: [`${hosts.app}:3001`, `${hosts.app}:3002`],
            healthCheck: { path: '/healthz', interval: '500ms' },
          },
        },
        admin: { listen: `${hosts.lb}:9900`, token: TOKEN },
      }),
    );
    onHost('lb', 'lb', [process.execPath, CLI, 'lb', '--config', lbConfig, '--workers', '1']);

    // dns host: www.scaleout.test → the LB, while its target group has a healthy app.
    const dnsConfig = join(dir, 'dns.yaml');
    writeFileSync(
      dnsConfig,
      stringify({
        dns: {
          listen: `${hosts.dns}:53`,
          zones: [
            {
              name: 'scaleout.test',
              recordSets: [
                {
                  name: 'www',
                  ttl: 5,
                  addresses: [{ address: hosts.lb, lbAdmin: `http://${hosts.lb}:9900` }],
                  followLb: { targetGroup: 'app', token: TOKEN },
                },
              ],
            },
          ],
        },
      }),
    );
    onHost('dns', 'dns', [process.execPath, CLI, 'dns', '--config', dnsConfig]);

    // The client, from the root namespace: find the LB through DNS, then use the app through it.
    const web = `http://${hosts.lb}`;
    await waitFor(
      'both apps healthy at the LB',
      async () => {
        const res = await fetch(`http://${hosts.lb}:9900/api/v1/target-groups/app`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const group = (await res.json()) as { targets: Array<{ state: string }> };
        return group.targets.length === 2 && group.targets.every((t) => t.state === 'healthy');
      },
      60_000,
    );
    const dig = () =>
      execFileSync('dig', [`@${hosts.dns}`, 'www.scaleout.test', '+short', '+time=1', '+tries=1'], {
        encoding: 'utf8',
      }).trim();
    await waitFor('DNS', () => dig() === hosts.lb);

    const created = await fetch(`${web}/api/links`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/netns' }),
    });
    assert.equal(created.status, 201, await created.text());
    const result = await runLoad({
      url: `${web}/`,
      rate: 50,
      durationMs: 3000,
      mix: { read: 80, write: 20 },
    });
    assert.equal(result.failed, 0, JSON.stringify(result.statusCodes));
    assert.deepEqual(Object.keys(result.instances).sort(), ['app-1', 'app-2']);

    // Reads go to the replica on the db host, through the app host's own proxy.
    const route = execFileSync(
      'ip',
      [
        'netns',
        'exec',
        ns('app'),
        'psql',
        '-X',
        '-h',
        '127.0.0.1',
        '-p',
        '6432',
        '-U',
        'postgres',
        '-d',
        'app',
      ],
      { encoding: 'utf8', input: 'EXPLAIN ROUTE SELECT * FROM links;\n' },
    );
    assert.match(route, new RegExp(`replica\\s*\\|\\s*${hosts.db.replace(/\./g, '\\.')}:5433`));
  },
);
