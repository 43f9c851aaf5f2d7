// The dashboard page in Debian's headless Chromium (playwright-core), over `scaleout dashboard` and a
// real `scaleout lb` with real targets: targets shown, a chart that grows under load, a drain from the
// page that the LB carries out, and a page that stays usable at 100 targets. Screenshots go to
// test-artifacts/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { RunningCli } from '../../helpers/cli.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import {
  call,
  pacedLoad,
  startLbProcess,
  startWeightedDns,
  TOKEN,
  type DnsProcess,
  type LbProcess,
  startScaleout,
} from './harness.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

async function startDashboardCli(args: string[]): Promise<{ cli: RunningCli; url: string }> {
  const cli = startScaleout(['dashboard', '--listen', '127.0.0.1:0', ...args], {
    SCALEOUT_LOG_LEVEL: 'warn',
  });
  const m = await cli.waitFor(/scaleout dashboard on (http:\/\/[\d.]+:\d+\/)/, 15_000);
  return { cli, url: m[1]! };
}

/** What the page's script exposes for tests. */
interface PageHandle {
  state: { lb: { groups: Array<{ targets: unknown[] }> } } | null;
  chartData: { times: number[]; series: Record<string, { rps: Array<number | null> }> };
  selected: string[];
}

const pageValue = <T>(page: Page, fn: (d: PageHandle) => T) =>
  page.evaluate(fn as never, undefined) as Promise<T>;

describe('dashboard in a browser', () => {
  let browser: Browser;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  });
  after(async () => browser?.close());

  describe('three targets under load', () => {
    let targets: TestTarget[] = [];
    let lb: LbProcess;
    let dash: { cli: RunningCli; url: string };
    let dns: DnsProcess;

    before(async () => {
      targets = await startTargets(3);
      lb = await startLbProcess(targets);
      // A DNS server beside the LB, for the DNS panel.
      dns = await startWeightedDns();
      dash = await startDashboardCli([
        ...['--lb', lb.adminUrl, '--dns', dns.admin],
        ...['--token', TOKEN, '--name', 'browser test'],
      ]);
    });
    after(async () => {
      await dash?.cli.stop();
      await dns?.cli.stop();
      await lb?.stop();
      await stopTargets(targets);
    });

    it('shows the targets, a chart that grows while load runs, and drains a target from the page', async () => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      // The token travels in the fragment, which the browser never sends to a server.
      await page.goto(`${dash.url}#token=${TOKEN}`);
      await page.waitForSelector('#targets tbody tr >> nth=2', { timeout: 10_000 });
      assert.equal(await page.locator('#targets tbody tr').count(), 3);
      for (const t of targets) {
        const row = page.locator(`#targets tbody tr[data-key="default/${t.id}"]`);
        await row.locator('.badge.s-healthy').waitFor({ timeout: 5000 });
      }
      // The picture: the LB, and each target as an app instance, coloured by state.
      assert.equal(
        await page.locator('#topology g.node[data-id^="target:"][data-state="healthy"]').count(),
        3,
      );
      assert.equal(
        await page.locator('#topology g.node[data-id="component:lb"]').getAttribute('data-state'),
        'running',
      );
      assert.match((await page.locator('#title').textContent()) ?? '', /browser test/);
      // The DNS panel: both addresses with their weights and the share the weights ask for.
      await page.locator('#dns table tbody tr >> nth=1').waitFor({ timeout: 5000 });
      const dnsRows = await page.locator('#dns table tbody tr').allTextContents();
      assert.equal(dnsRows.length, 2, dnsRows.join(' | '));
      assert.match(dnsRows.find((r) => r.includes('127.0.0.3')) ?? '', /healthy\s*3/);
      assert.equal(
        await page.locator('#dns .bars >> nth=1').getAttribute('title'),
        'got 0.0%, weights ask for 75.0%',
      );

      // Bounded load in the background while the chart is watched.
      const traffic = pacedLoad(lb.url, 60, 9000);
      await page.waitForFunction(
        () => {
          const d = (globalThis as unknown as { scaleoutDashboard: PageHandle }).scaleoutDashboard;
          return (d.chartData.series['group:default']?.rps ?? []).some((v) => v !== null && v > 0);
        },
        undefined,
        { timeout: 10_000 },
      );
      const before = await pageValue(
        page,
        () =>
          (globalThis as unknown as { scaleoutDashboard: PageHandle }).scaleoutDashboard.chartData.times
            .length,
      );
      await page.waitForTimeout(2500);
      const afterLength = await pageValue(
        page,
        () =>
          (globalThis as unknown as { scaleoutDashboard: PageHandle }).scaleoutDashboard.chartData.times
            .length,
      );
      assert.ok(afterLength >= before + 2, `the chart got new points: ${before} → ${afterLength}`);
      assert.equal((await page.locator('#chart canvas').count()) >= 1, true, 'uPlot drew the chart');
      const rate = await page
        .locator(`#targets tbody tr[data-key="default/${targets[0]!.id}"] .rps`)
        .textContent();
      assert.ok(Number(rate) > 0, `the table shows a request rate: ${rate}`);

      // Drain the slow target with requests in flight, so the LB keeps it draining for a while.
      const victim = targets[2]!;
      victim.delayMs = 3000;
      const adminTarget = async () =>
        (
          await call(
            'GET',
            `${lb.adminUrl}/api/v1/target-groups/default/targets/${encodeURIComponent(victim.id)}`,
          )
        ).body.target;
      for (let i = 0; i < 100 && !((await adminTarget())?.inFlight > 0); i++) await page.waitForTimeout(20);
      assert.ok((await adminTarget())?.inFlight > 0, 'requests are in flight on the target to drain');
      await page
        .locator(`#targets tbody tr[data-key="default/${victim.id}"] button[data-action="drain"]`)
        .click();
      let t = await adminTarget();
      for (let i = 0; i < 50 && t && !t.draining; i++) {
        await page.waitForTimeout(50);
        t = await adminTarget();
      }
      assert.equal(t?.state, 'draining', 'the LB reports the target draining');
      await page
        .locator(`#targets tbody tr[data-key="default/${victim.id}"] .badge.s-draining`)
        .waitFor({ timeout: 5000 });
      await page
        .locator('#timeline li', { hasText: `default/${victim.id}` })
        .filter({ hasText: 'draining' })
        .first()
        .waitFor({ timeout: 5000 });
      await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
      victim.delayMs = 0;
      const statuses = await traffic;
      assert.ok((statuses.get(200) ?? 0) > 0, 'the load got answers');
      assert.deepEqual(errors, [], 'no script errors on the page');
      await page.close();
    });

    it('without the token the page asks for it and shows no data', async () => {
      const page = await browser.newPage();
      await page.goto(dash.url);
      await page.locator('#token-form').waitFor({ state: 'visible', timeout: 5000 });
      assert.equal(await page.locator('#targets tbody tr').count(), 0);
      await page.fill('#token-input', TOKEN);
      await page.click('#token-form button');
      await page.waitForSelector('#targets tbody tr', { timeout: 5000 });
      await page.close();
    });
  });

  describe('100 targets', () => {
    let targets: TestTarget[] = [];
    let lb: LbProcess;
    let dash: { cli: RunningCli; url: string };

    before(async () => {
      targets = await startTargets(100);
      lb = await startLbProcess(targets, ['--health-interval', '1s']);
      dash = await startDashboardCli(['--lb', lb.adminUrl]);
    });
    after(async () => {
      await dash?.cli.stop();
      await lb?.stop();
      await stopTargets(targets);
    });

    it('renders every target in one table, the app tier as a compact grid, and stays usable', async () => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(dash.url);
      await page.waitForSelector('#targets tbody tr >> nth=99', { timeout: 15_000 });
      await pacedLoad(lb.url, 100, 2000);
      await page.waitForTimeout(1500); // a tick or two with the traffic
      assert.equal(await page.locator('#targets tbody tr').count(), 100);
      assert.equal(await page.locator('#topology g.node[data-id^="target:"]').count(), 100);
      // Squares without labels beyond a dozen instances.
      assert.equal(await page.locator('#topology g.node[data-id^="target:"] text').count(), 0);
      assert.match((await page.locator('#target-counts').textContent()) ?? '', /^100 targets/);
      // Filter down to one target and put it on the chart next to the group.
      const one = targets[42]!;
      await page.fill('#target-filter', one.id);
      await page.waitForFunction("document.querySelectorAll('#targets tbody tr').length === 1");
      await page.locator(`#targets tbody tr[data-key="default/${one.id}"] input[type=checkbox]`).check();
      await page.waitForFunction(
        (key) =>
          (globalThis as unknown as { scaleoutDashboard: PageHandle }).scaleoutDashboard.selected.includes(
            key,
          ),
        `target:default/${one.id}`,
      );
      // The chips are drawn once the series' history has loaded, a moment after the selection.
      await page.waitForFunction("document.querySelectorAll('#series-list span').length === 2");
      await page.fill('#target-filter', '');
      await page.waitForFunction("document.querySelectorAll('#targets tbody tr').length === 100");
      await page.screenshot({ path: `${ARTIFACTS}dashboard-100-targets.png`, fullPage: true });
      assert.deepEqual(errors, []);
      await page.close();
    });
  });
});
