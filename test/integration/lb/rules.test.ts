import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { configSchema } from '../../../src/config/schema.js';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { startLb, type TestLb } from '../../helpers/lb.js';

describe('listener rules', () => {
  let web: TestTarget[];
  let api: TestTarget[];
  let canary: TestTarget[];
  let lb: TestLb;

  const health = { path: '/healthz', interval: 200, timeout: 150 };

  before(async () => {
    [web, api, canary] = await Promise.all([startTargets(2), startTargets(1), startTargets(1)]);
    const config = configSchema.parse({
      listeners: {
        main: {
          listen: '127.0.0.1:0',
          rules: [
            {
              name: 'internal',
              match: { pathPrefix: '/internal/', sourceCidrs: ['127.0.0.2/32'] },
              fixedResponse: { status: 403, body: 'no' },
            },
            {
              name: 'api-get',
              match: { host: ['api.example.com'], methods: ['GET'] },
              forward: { targetGroup: 'api' },
            },
            { name: 'canary', match: { headers: { 'x-canary': 'yes' } }, forward: { targetGroup: 'canary' } },
            {
              name: 'split',
              match: { path: '/split/*' },
              forward: {
                targetGroups: [
                  { name: 'web', weight: 3 },
                  { name: 'canary', weight: 1 },
                ],
              },
            },
            { name: 'wildcard', match: { host: '*.shop.example' }, forward: { targetGroup: 'api' } },
            {
              name: 'old',
              match: { pathPrefix: '/old/' },
              redirect: { status: 301, host: 'new.example', path: '/moved/#{path}' },
            },
            {
              name: 'teapot',
              match: { path: '/tea' },
              fixedResponse: { status: 418, body: 'short and stout', contentType: 'text/plain' },
            },
          ],
          defaultAction: { forward: { targetGroup: 'web' } },
        },
      },
      targetGroups: {
        web: { targets: web.map((t) => t.id), healthCheck: health },
        api: { targets: api.map((t) => t.id), healthCheck: health },
        canary: { targets: canary.map((t) => t.id), healthCheck: health },
      },
    });
    lb = await startLb([], { config });
  });
  after(async () => {
    await lb.stop();
    await stopTargets([...web, ...api, ...canary]);
  });

  async function call(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await request(`${lb.url}${path}`, { headers, method });
    return {
      status: res.statusCode,
      headers: res.headers,
      text: await res.body.text(),
      target: res.headers['x-target'] as string,
    };
  }

  const port = (t: TestTarget[]) => t.map((x) => String(x.port));

  it('routes by host and method, falling back to the default action', async () => {
    assert.ok(port(api).includes((await call('/x', { host: 'api.example.com' })).target));
    assert.ok(
      port(web).includes((await call('/x', { host: 'api.example.com' }, 'POST')).target),
      'POST is not matched by api-get',
    );
    assert.ok(port(web).includes((await call('/x', { host: 'www.example.com' })).target));
    assert.ok(
      port(api).includes((await call('/x', { host: 'eu.shop.example:8080' })).target),
      'wildcard host, port ignored',
    );
  });

  it('routes by header', async () => {
    assert.ok(port(canary).includes((await call('/x', { 'x-canary': 'YES' })).target));
  });

  it('splits traffic over weighted target groups', async () => {
    let toCanary = 0;
    for (let i = 0; i < 200; i++) if (port(canary).includes((await call(`/split/${i}`)).target)) toCanary++;
    assert.ok(toCanary > 25 && toCanary < 80, `canary got ${toCanary}/200 (expected about 50)`);
  });

  it('redirects with the request parts kept', async () => {
    const r = await call('/old/page?id=7', { host: 'shop.example' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `http://new.example:${lb.port}/moved/old/page?id=7`);
  });

  it('answers fixed responses itself', async () => {
    const r = await call('/tea');
    assert.equal(r.status, 418);
    assert.equal(r.text, 'short and stout');
    assert.equal(r.target, undefined);
  });

  it('matches source CIDRs', async () => {
    const fromOther = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: lb.port, path: '/internal/x', localAddress: '127.0.0.2' }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject);
    });
    assert.equal(fromOther, 403, 'a client from 127.0.0.2 matches the rule');
    assert.equal((await call('/internal/x')).status, 200, 'a client from 127.0.0.1 does not');
  });
});
