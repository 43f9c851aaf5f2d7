import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, readYamlConfig, validate } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { runCli } from '../../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'scaleout-config-'));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problems(path: string): string[] {
  try {
    validate(readYamlConfig(path), configSchema);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const GOOD = `
listeners:
  web:
    listen: 127.0.0.1:8080
    rules:
      - name: api
        match: { pathPrefix: /api/, methods: [GET, POST] }
        forward: { targetGroups: [{ name: api, weight: 90 }, { name: web, weight: 10 }] }
      - match: { host: old.example.com }
        redirect: { status: 301, host: new.example.com }
      - match: { path: /health }
        fixedResponse: { status: 200, body: ok }
    defaultAction:
      forward: { targetGroup: web }
targetGroups:
  web:
    targets: [127.0.0.1:9001, "127.0.0.1:9002=3"]
    healthCheck: { path: /healthz, interval: 5s, timeout: 2s }
    stickiness: { type: lb-cookie, duration: 1h }
    slowStart: 30s
  api:
    algorithm: least-outstanding
    targets: [{ address: 127.0.0.1:9101, weight: 2 }]
admin:
  listen: 127.0.0.1:9900
`;

describe('config file', () => {
  it('accepts a full config and fills defaults', () => {
    const c = validate(readYamlConfig(file('good.yaml', GOOD)), configSchema);
    assert.equal(c.targetGroups.web!.healthCheck.interval, 5000);
    assert.equal(c.targetGroups.web!.slowStart, 30_000);
    assert.equal(c.targetGroups.web!.targets[1]!.weight, 3);
    assert.equal(c.targetGroups.api!.healthCheck.unhealthyThreshold, 2, 'nested defaults are filled');
    assert.equal(c.listeners.web!.timeouts.upstreamIdle, 4000);
    assert.deepEqual(c.listeners.web!.rules[0]!.forward, [
      { name: 'api', weight: 90 },
      { name: 'web', weight: 10 },
    ]);
  });

  it('names the file, line, key path and problem for every error', () => {
    const path = file(
      'bad.yaml',
      `targetGroups:
  web:
    algorithm: fastest
    targets: [127.0.0.1:9001, nonsense]
    healthCheck: { interval: soon }
`,
    );
    const p = problems(path);
    assert.equal(p.length, 3, p.join('\n'));
    assert.match(p[0]!, new RegExp(`^${path}:3:\\d+: targetGroups\\.web\\.algorithm: Invalid option`));
    assert.match(p[1]!, /:4:\d+: targetGroups\.web\.targets\[1\]: "nonsense" is not host:port/);
    assert.match(p[2]!, /:5:\d+: targetGroups\.web\.healthCheck\.interval: "soon" is not a duration/);
  });

  it('checks references between sections', () => {
    const p = problems(
      file(
        'refs.yaml',
        `listeners:
  web:
    listen: 127.0.0.1:8080
    defaultAction: { forward: { targetGroup: missing } }
targetGroups:
  web: { targets: [127.0.0.1:1] }
admin:
  listen: 0.0.0.0:9900
`,
      ),
    );
    assert.ok(
      p.some((l) =>
        /listeners\.web\.defaultAction\.forward\.targetGroup: unknown target group "missing" \(known: web\)/.test(
          l,
        ),
      ),
      p.join('\n'),
    );
    assert.ok(
      p.some((l) => /admin\.token: the admin API listens beyond loopback/.test(l)),
      p.join('\n'),
    );
  });

  it('refuses a rule with two actions and unknown keys', () => {
    const p = problems(
      file(
        'rule.yaml',
        `listeners:
  web:
    listen: 127.0.0.1:8080
    rules:
      - match: { pathPrefix: /a }
        forward: { targetGroup: web }
        fixedResponse: { status: 404 }
    defaultAction: { forward: { targetGroup: web } }
    colour: blue
targetGroups:
  web: { targets: [127.0.0.1:1] }
`,
      ),
    );
    assert.ok(
      p.some((l) => /listeners\.web\.rules\[0\]: a rule needs exactly one of/.test(l)),
      p.join('\n'),
    );
    assert.ok(
      p.some((l) => /listeners\.web: Unrecognized key: "colour"/i.test(l)),
      p.join('\n'),
    );
  });

  it('substitutes ${env:NAME} and reports a missing variable', () => {
    process.env.SCALEOUT_TEST_TOKEN = 'x'.repeat(24);
    const text = `admin: { listen: 0.0.0.0:9900, token: "\${env:SCALEOUT_TEST_TOKEN}" }\n`;
    const c = validate(readYamlConfig(file('env.yaml', text)), configSchema);
    assert.equal(c.admin!.token, 'x'.repeat(24));
    delete process.env.SCALEOUT_TEST_TOKEN;
    assert.throws(
      () => readYamlConfig(file('env2.yaml', text)),
      /admin\.token: environment variable SCALEOUT_TEST_TOKEN is not set/,
    );
  });

  it('the example config in examples/lb.yaml is valid', () => {
    const path = new URL('../../../examples/lb.yaml', import.meta.url).pathname;
    assert.deepEqual(problems(path), []);
  });

  it('reports YAML syntax errors with a line', () => {
    const p = problems(file('syntax.yaml', 'listeners:\n  web: [unclosed\n'));
    assert.match(p[0]!, /syntax\.yaml:\d+:\d+: YAML syntax/);
  });

  it('`scaleout config check` exits 0 for a good file and non-zero listing problems for a bad one', async () => {
    const ok = await runCli(['config', 'check', file('cli-good.yaml', GOOD)]);
    assert.equal(ok.code, 0, ok.output);
    assert.match(ok.output, /OK \(1 listeners, 2 target groups, 3 targets, admin\)/);
    const bad = await runCli(['config', 'check', join(dir, 'bad.yaml')]);
    assert.equal(bad.code, 1);
    assert.match(bad.output, /bad\.yaml:3:\d+: targetGroups\.web\.algorithm/);
    assert.match(bad.output, /3 problems/);
    const missing = await runCli(['config', 'check', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.output, /nope\.yaml: cannot read the file \(ENOENT\)/);
  });
});
