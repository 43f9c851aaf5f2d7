// Shared pieces of the demo-app tests: the built CLI stopped at file end, and a demo-app instance on a
// free loopback port.
import { startCli, type RunningCli } from '../../helpers/cli.js';
import { atFileEnd } from '../../helpers/postgres.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `node dist/cli.js ARGS`, stopped when the test file ends. */
export function cli(args: string[], env: Record<string, string> = {}): RunningCli {
  const running = startCli(args, env);
  atFileEnd(() => running.stop());
  return running;
}

export interface App {
  cli: RunningCli;
  url: string;
}

/** A demo-app instance on 127.0.0.1 (free port); resolves once it listens, not once it is ready. */
export async function startApp(
  database: string,
  instance: string,
  env: Record<string, string> = {},
): Promise<App> {
  const app = cli(
    ['demo-app', '--listen', '127.0.0.1:0', '--database', database, '--instance', instance],
    env,
  );
  const m = await app.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { cli: app, url: m[1]! };
}
