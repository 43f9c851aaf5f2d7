import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { runCli, startCli } from '../../helpers/cli.js';

describe('scaleout lb (the command)', () => {
  let targets: TestTarget[];
  before(async () => {
    targets = await startTargets(2);
  });
  after(async () => {
    await stopTargets(targets);
  });

  it("prints what listens where and each target's health, then proxies", async () => {
    const cli = startCli(
      [
        'lb',
        '--listen',
        '127.0.0.1:0',
        ...targets.flatMap((t) => ['--target', t.id]),
        '--target',
        '127.0.0.1:1',
        '--health-path',
        '/healthz',
        '--drain-timeout',
        '2s',
      ],
      { SCALEOUT_LOG_LEVEL: 'warn' },
    );
    try {
      const [, port] = await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
      await cli.waitFor(/target 127\.0\.0\.1:1 .*unhealthy \(Target\.ConnectionRefused\)/);
      assert.match(cli.output(), new RegExp(`target ${targets[0]!.id} .*healthy`));
      const res = await request(`http://127.0.0.1:${port}/hello`);
      assert.equal(res.statusCode, 200);
      assert.match(await res.body.text(), /GET \/hello/);
    } finally {
      assert.equal(await cli.stop('SIGTERM'), 0);
    }
  });

  it('on SIGTERM finishes in-flight requests, then exits', async () => {
    targets[0]!.delayMs = 800;
    targets[1]!.delayMs = 800;
    const cli = startCli(
      [
        'lb',
        '--listen',
        '127.0.0.1:0',
        ...targets.flatMap((t) => ['--target', t.id]),
        '--health-path',
        '/healthz',
      ],
      {
        SCALEOUT_LOG_LEVEL: 'warn',
      },
    );
    try {
      const [, port] = await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
      await cli.waitFor(/target .*healthy/);
      const inFlight = request(`http://127.0.0.1:${port}/slow-during-stop`).then(async (r) => ({
        status: r.statusCode,
        body: await r.body.text(),
      }));
      await new Promise((r) => setTimeout(r, 200));
      const exit = cli.stop('SIGTERM');
      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.match(res.body, /slow-during-stop/);
      assert.equal(await exit, 0);
    } finally {
      targets[0]!.delayMs = 0;
      targets[1]!.delayMs = 0;
      await cli.stop('SIGKILL');
    }
  });

  it('refuses bad arguments with a clear message', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['lb'], /at least one --target is required/],
      [['lb', '--target', 'nonsense'], /not host:port/],
      [['lb', '--target', '127.0.0.1:99999'], /port out of range/],
      [['lb', '--target', '127.0.0.1:80', '--algorithm', 'fastest'], /Allowed choices are/],
      [['lb', '--target', '127.0.0.1:80', '--health-interval', 'soon'], /duration/],
      [['lb', '--target', '127.0.0.1:80', '--success-codes', '2xx'], /invalid success codes/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
      assert.match(r.output, message, args.join(' '));
    }
  });
});
