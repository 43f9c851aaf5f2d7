import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { request } from 'undici';
import { lbDrain, registerLbAdmin } from '../../../src/cli/lb-admin.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { waitFor } from '../../helpers/lb.js';
import { startHarness, TOKEN, type Harness } from './harness.js';

/** Runs `scaleout lb <args>` through commander in-process; returns what it printed. */
async function lbCommand(args: string[]): Promise<string[]> {
  const out: string[] = [];
  const lb = new Command('lb').exitOverride();
  registerLbAdmin(lb, (line) => out.push(line));
  await lb.parseAsync(args, { from: 'user' });
  return out;
}

describe('scaleout lb status / lb drain', () => {
  let targets: TestTarget[] = [];
  let h: Harness | undefined;

  before(async () => {
    targets = await startTargets(2);
  });
  after(async () => stopTargets(targets));
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('status prints every target with its state and reason', async () => {
    h = await startHarness(targets, { token: TOKEN });
    const out = (await lbCommand(['status', '--admin', h.api, '--token', TOKEN])).join('\n');
    assert.match(out, /listener web \(http\)/);
    assert.match(out, /target group app \(weighted-round-robin\)/);
    for (const t of targets)
      assert.match(out, new RegExp(`${t.id.replace(/\./g, '\\.')}\\s+healthy\\s+Target\\.Healthy`));
    // Without the token: a clear error.
    await assert.rejects(lbCommand(['status', '--admin', h.api]), /admin API: .*Bearer/);
  });

  it('drain --wait returns once the target is drained; the target then gets no traffic', async () => {
    h = await startHarness(targets);
    const victim = targets[0]!;
    victim.delayMs = 400;
    const inFlight = Promise.all(
      Array.from({ length: 4 }, () => request(`${h!.url}/slow`).then((r) => r.body.text())),
    );
    const rt = h.runtime.groups.get('app')!;
    assert.ok(await waitFor(() => rt.group.get(victim.id)!.outstanding > 0, 1000));
    const started = Date.now();
    const out = await lbCommand(['drain', victim.id, '--admin', h.api, '--wait']);
    assert.ok(Date.now() - started >= 200, 'it waited for the in-flight requests');
    assert.match(
      out[0]!,
      new RegExp(`draining ${victim.id.replace(/\./g, '\\.')} in target group app: [1-9]`),
    );
    assert.match(out.at(-1)!, /is drained/);
    assert.equal(rt.group.get(victim.id), undefined);
    await inFlight;
    victim.delayMs = 0;
    const before = victim.traffic().length;
    for (let i = 0; i < 5; i++) await request(`${h.url}/`).then((r) => r.body.text());
    assert.equal(victim.traffic().length, before);
    // Again: already drained, exit 0.
    const again = await lbCommand(['drain', victim.id, '--group', 'app', '--admin', h.api]);
    assert.match(again.join('\n'), /is drained/);
  });

  it('drain --wait times out with a clear error while requests stay in flight', async () => {
    h = await startHarness(targets, { group: { deregistrationDelay: 10_000 } });
    const victim = targets[1]!;
    victim.delayMs = 1500;
    const inFlight = Promise.all(
      Array.from({ length: 2 }, () => request(`${h!.url}/slow`).then((r) => r.body.text())),
    );
    const rt = h.runtime.groups.get('app')!;
    assert.ok(await waitFor(() => rt.group.get(victim.id)!.outstanding > 0, 1000));
    await assert.rejects(
      lbDrain(victim.id, { admin: h.api, wait: true, timeoutMs: 300, pollMs: 50 }, () => {}),
      /timed out after \d+ s: .* still has [1-9] request\(s\) in flight/,
    );
    await inFlight;
    victim.delayMs = 0;
  });

  it('drain of an unknown target or with an unreachable admin API fails clearly', async () => {
    h = await startHarness(targets);
    await assert.rejects(
      lbCommand(['drain', '10.9.9.9:1', '--admin', h.api]),
      /no target group has a target 10\.9\.9\.9:1/,
    );
    await assert.rejects(
      lbCommand(['drain', 'nope', '--group', 'app', '--admin', h.api]),
      /admin API: target group "app" has no target "nope"/,
    );
    await assert.rejects(
      lbCommand(['drain', 'x', '--group', 'ghost', '--admin', h.api]),
      /no target group named "ghost"/,
    );
    await assert.rejects(
      lbCommand(['status', '--admin', '127.0.0.1:1']),
      /cannot reach the admin API at http:\/\/127\.0\.0\.1:1/,
    );
  });
});
