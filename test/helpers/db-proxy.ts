// Starts the built `scaleout db-proxy` in front of a test cluster's primary and first replica, on
// loopback, and stops it when the test file ends (see atFileEnd in postgres.ts).
import { startCli, type RunningCli } from './cli.js';
import { atFileEnd, type PgCluster } from './postgres.js';
import { freePort } from '../../src/topology/postgres.js';

export interface TestDbProxy {
  cli: RunningCli;
  port: number;
  /** A connection URL for the cluster's database through the proxy. */
  url: string;
}

export interface TestDbProxyOptions {
  /** Listen port; a free one when not given (pass one to know the URL before the proxy starts). */
  port?: number;
  /** More command-line flags, e.g. ['--admin', '127.0.0.1:PORT']. */
  args?: string[];
  env?: Record<string, string>;
}

/** The URL a client of a proxy on `port` in front of `cluster` connects to. */
export function proxyUrlFor(cluster: PgCluster, port: number): string {
  return `postgres://${cluster.user}@127.0.0.1:${port}/${cluster.database}`;
}

export async function startTestDbProxy(
  cluster: PgCluster,
  options: TestDbProxyOptions = {},
): Promise<TestDbProxy> {
  const port = options.port ?? (await freePort());
  const cli = startCli(
    [
      'db-proxy',
      '--listen',
      `127.0.0.1:${port}`,
      '--primary',
      cluster.primary.url,
      '--replica',
      cluster.replicas[0]!.url,
      ...(options.args ?? []),
    ],
    options.env,
  );
  atFileEnd(() => cli.stop());
  await cli.waitFor(/db-proxy listening/, 15_000);
  return { cli, port, url: proxyUrlFor(cluster, port) };
}
