// One load balancer for bench/admin/observe.sh, built from dist/: argv[2] picks what observes requests
// (none | metrics | log-file | both-file | both-stdout). Prints "ready" once listening.
import { LbAdmin } from '../../dist/admin/index.js';
import { configSchema } from '../../dist/config/schema.js';
import { silentLogger } from '../../dist/core/log.js';
import { LbRuntime } from '../../dist/lb/runtime.js';

const [variant, port, backends, dir] = process.argv.slice(2);
const config = configSchema.parse({
  listeners: {
    web: { listen: `127.0.0.1:${port}`, defaultAction: { forward: { targetGroup: 'app' } } },
  },
  targetGroups: {
    app: { targets: backends.split(','), healthCheck: { enabled: false } },
  },
  ...(variant === 'none' || variant === 'log-file' ? {} : { admin: { listen: '127.0.0.1:0' } }),
});
const accessLog =
  variant === 'log-file' || variant === 'both-file'
    ? `${dir}/access.log`
    : variant === 'both-stdout'
      ? true
      : false;
const admin = new LbAdmin(config, { log: silentLogger, accessLog });
const runtime = new LbRuntime({ log: silentLogger, drainTimeoutMs: 1000, onRequest: admin.onRequest });
await runtime.apply(config);
await admin.start(runtime);
process.stderr.write('ready\n');
process.on('SIGTERM', async () => {
  await admin.close();
  await runtime.stop();
  process.exit(0);
});
