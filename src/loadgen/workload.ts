// What each request on the timeline is. Without a mix: GET the URL. With one, the demo app's API
// (src/demo-app/http.ts):
//   read  → GET  /api/links/CODE   a code this run created or found at the start
//   write → POST /api/links        {"url": "https://example.com/scaleout-load/RUN/N"}
//   list  → GET  /api/links?limit=20
// Reads only read links this run created (10 before the clock starts, then every write's), each
// with the cookie its write returned (the read-your-writes token), as the user who created it would:
// so a fresh link is never reported missing because a replica is behind.
import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { Mix, RequestKind } from './options.js';
import { kindSequence } from './schedule.js';

export interface PlannedRequest {
  kind: RequestKind;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Called with a successful answer's headers (a write learns its code and cookie here). */
  onSuccess?(headers: Record<string, string | string[] | undefined>): void;
}

export interface Workload {
  /** Before the clock starts: e.g. learn some codes to read. Throws if the target is unusable. */
  prepare(dispatcher: Dispatcher): Promise<void>;
  next(): PlannedRequest;
}

export function plainWorkload(url: URL, timeoutMs: number): Workload {
  const request: PlannedRequest = {
    kind: 'read',
    method: 'GET',
    path: url.pathname + url.search,
    headers: {},
  };
  const warmUpMs = Math.min(timeoutMs, 2000);
  return {
    // One unmeasured request before the clock starts opens a connection and warms up the HTTP
    // client's code, so the first second does not measure the generator's own cold start. Its
    // outcome does not matter: a target that is down shows in the run itself.
    async prepare(dispatcher) {
      await dispatcher
        .request({ method: 'GET', path: request.path, headersTimeout: warmUpMs, bodyTimeout: warmUpMs })
        .then((res) => res.body.dump())
        .catch(() => {});
    },
    next: () => request,
  };
}

interface KnownLink {
  code: string;
  /** "scaleout_lsn=…" from the write that created it, if this run created it. */
  cookie?: string;
}

/** Codes kept to read from; the oldest are dropped past this, so memory stays bounded. */
const MAX_KNOWN = 10_000;
const SEED_LINKS = 10;

export function demoAppWorkload(base: URL, mix: Mix): Workload {
  const prefix = base.pathname.replace(/\/+$/, '');
  const run = randomBytes(4).toString('hex');
  const nextKind = kindSequence(mix);
  const known: KnownLink[] = [];
  let written = 0;

  const remember = (link: KnownLink): void => {
    if (known.length >= MAX_KNOWN) known[Math.floor(Math.random() * known.length)] = link;
    else known.push(link);
  };

  const writeRequest = (): PlannedRequest => ({
    kind: 'write',
    method: 'POST',
    path: `${prefix}/api/links`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: `https://example.com/scaleout-load/${run}/${++written}` }),
    onSuccess(headers) {
      const code = /\/api\/links\/([^/?]+)$/.exec(String(headers.location ?? ''))?.[1];
      if (code) remember({ code, cookie: tokenCookie(headers['set-cookie']) });
    },
  });

  return {
    async prepare(dispatcher) {
      // Is this the demo app? Then create a few links to read, each with the cookie of its write.
      // (Links listed from the app would be read without a token: a link written a moment ago by
      // someone else may not be on the replica yet, and its 404 would count as a failed read.)
      const res = await dispatcher.request({ method: 'GET', path: `${prefix}/api/links?limit=1` });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('"links"'))
        throw new Error(
          `GET ${prefix}/api/links answered ${res.statusCode}: is this the demo app? ${text.slice(0, 200)}`,
        );
      if (!mix.read) return;
      for (let i = 0; i < SEED_LINKS; i++) {
        const req = writeRequest();
        const created = await dispatcher.request({
          method: 'POST',
          path: req.path,
          headers: req.headers,
          body: req.body,
        });
        await created.body.dump();
        if (created.statusCode !== 201)
          throw new Error(`POST ${req.path} answered ${created.statusCode} while creating links to read`);
        req.onSuccess?.(created.headers);
      }
    },
    next() {
      const kind = nextKind();
      if (kind === 'write') return writeRequest();
      if (kind === 'list' || known.length === 0)
        return { kind, method: 'GET', path: `${prefix}/api/links?limit=20`, headers: {} };
      const link = known[Math.floor(Math.random() * known.length)]!;
      return {
        kind,
        method: 'GET',
        path: `${prefix}/api/links/${link.code}`,
        headers: link.cookie ? { cookie: link.cookie } : {},
      };
    },
  };
}

/** The `scaleout_lsn=…` pair out of Set-Cookie, if there. */
function tokenCookie(setCookie: string | string[] | undefined): string | undefined {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  for (const c of all) {
    const pair = c.split(';')[0]!.trim();
    if (pair.startsWith('scaleout_lsn=')) return pair;
  }
  return undefined;
}
