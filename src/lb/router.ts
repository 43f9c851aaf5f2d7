import { addressMatcher } from '../core/net.js';
import { headerValues, type RequestHead } from './http/head-parser.js';
import type { MatchSettings, RuleSettings } from '../config/lb-schema.js';

// Listener rules compiled into plain predicates once per config, so a request is routed without
// re-reading the config. Rules are tried in order; the first match wins, else the default action.

export type RouteAction =
  | { kind: 'forward'; groups: Array<{ name: string; weight: number }> }
  | {
      kind: 'redirect';
      status: number;
      protocol: string;
      host: string;
      port: string;
      path: string;
      query: string;
    }
  | { kind: 'fixed'; status: number; body: string; contentType: string };

export interface CompiledRule {
  name: string;
  matches(head: RequestHead, clientIp: string): boolean;
  action: RouteAction;
}

/** "*" = any run of characters, "?" = one character; everything else literal. */
function wildcard(pattern: string, flags = ''): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, flags);
}

/** The path part of the request target (origin-form), or of an absolute URI. */
export function pathOf(target: string): string {
  let path = target;
  if (!path.startsWith('/')) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(path);
    path = m?.[1] ?? '/';
  }
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

export function hostOf(head: RequestHead): string {
  const host = (head.host ?? '').toLowerCase();
  // Strip a port, keeping IPv6 literals intact.
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function compileMatch(match: MatchSettings): (head: RequestHead, clientIp: string) => boolean {
  const tests: Array<(head: RequestHead, clientIp: string) => boolean> = [];
  if (match.host) {
    const hosts = match.host.map((h) => wildcard(h.toLowerCase()));
    tests.push((head) => {
      const host = hostOf(head);
      return hosts.some((re) => re.test(host));
    });
  }
  if (match.path || match.pathPrefix) {
    const paths = (match.path ?? []).map((p) => wildcard(p));
    const prefixes = match.pathPrefix ?? [];
    tests.push((head) => {
      const path = pathOf(head.target);
      return paths.some((re) => re.test(path)) || prefixes.some((p) => path.startsWith(p));
    });
  }
  if (match.methods) {
    const methods = new Set(match.methods);
    tests.push((head) => methods.has(head.method));
  }
  if (match.headers) {
    for (const [name, values] of Object.entries(match.headers)) {
      const lower = name.toLowerCase();
      const res = values.map((v) => wildcard(v, 'i'));
      tests.push((head) => headerValues(head, lower).some((v) => res.some((re) => re.test(v))));
    }
  }
  if (match.sourceCidrs) {
    const fromSource = addressMatcher(match.sourceCidrs);
    tests.push((_head, ip) => fromSource(ip));
  }
  return (head, ip) => tests.every((t) => t(head, ip));
}

export function compileAction(
  settings: Pick<RuleSettings, 'forward' | 'redirect' | 'fixedResponse'>,
): RouteAction {
  if (settings.forward) return { kind: 'forward', groups: settings.forward };
  if (settings.redirect) return { kind: 'redirect', ...settings.redirect };
  const fixed = settings.fixedResponse!;
  return { kind: 'fixed', status: fixed.status, body: fixed.body, contentType: fixed.contentType };
}

export class Router {
  readonly rules: CompiledRule[];

  constructor(
    rules: RuleSettings[],
    readonly defaultAction: RouteAction,
  ) {
    this.rules = rules.map((r, i) => ({
      name: r.name ?? `rule-${i + 1}`,
      matches: compileMatch(r.match),
      action: compileAction(r),
    }));
  }

  /** The first matching rule's action and name, or the default action. */
  route(head: RequestHead, clientIp: string): { action: RouteAction; rule: string } {
    for (const rule of this.rules)
      if (rule.matches(head, clientIp)) return { action: rule.action, rule: rule.name };
    return { action: this.defaultAction, rule: 'default' };
  }
}

/** ALB-style redirect: "#{host}" etc. keep the request's own parts. */
export function redirectLocation(
  action: Extract<RouteAction, { kind: 'redirect' }>,
  head: RequestHead,
  listener: { proto: 'http' | 'https'; port: number },
): string {
  const target = head.target;
  const q = target.indexOf('?');
  const parts: Record<string, string> = {
    protocol: listener.proto,
    host: hostOf(head),
    port: String(listener.port),
    path: pathOf(target).slice(1),
    query: q === -1 ? '' : target.slice(q + 1),
  };
  const fill = (s: string) =>
    s.replace(/#\{(protocol|host|port|path|query)\}/g, (_m, k: string) => parts[k]!);
  const protocol = fill(action.protocol);
  const port = fill(action.port);
  const defaultPort = (protocol === 'http' && port === '80') || (protocol === 'https' && port === '443');
  const query = fill(action.query);
  return `${protocol}://${fill(action.host)}${defaultPort ? '' : `:${port}`}${fill(action.path)}${query ? `?${query}` : ''}`;
}
