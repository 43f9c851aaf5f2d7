import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startTargets, stopTargets, type TestTarget } from '../../helpers/http-targets.js';
import { startCli, type RunningCli } from '../../helpers/cli.js';

const SIZE = 100 * 1024 * 1024;

/** Resident memory of a process in MiB, now and at its peak (VmHWM). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)![1]);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

describe('100 MB bodies stream through without the LB buffering them', () => {
  let targets: TestTarget[];
  let cli: RunningCli;
  let port: number;

  before(async () => {
    targets = await startTargets(1);
    cli = startCli(
      // One process, so its memory is the LB's memory.
      [
        'lb',
        '--workers',
        '1',
        '--listen',
        '127.0.0.1:0',
        '--target',
        targets[0]!.id,
        '--health-path',
        '/healthz',
      ],
      {
        SCALEOUT_LOG_LEVEL: 'warn',
      },
    );
    port = Number((await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
    await cli.waitFor(/healthy/);
  });
  after(async () => {
    await cli.stop();
    await stopTargets(targets);
  });

  it('uploads 100 MB (chunked) and downloads 100 MB with flat LB memory', async () => {
    const pid = cli.child.pid!;
    const baseline = memoryOf(pid).peak;

    // Upload: the client streams 100 MB with backpressure; the target counts and echoes the byte count.
    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        path: '/upload',
        method: 'POST',
        headers: { 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024, 'u');
      let left = SIZE;
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.match(uploaded, new RegExp(`body=${SIZE}\\b`));

    // Download: the client reads slowly at first so backpressure must hold the target back.
    const downloaded = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: `/download?bytes=${SIZE}` }, (res) => {
          let n = 0;
          res.pause();
          setTimeout(() => res.resume(), 1000);
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
        })
        .on('error', reject);
    });
    assert.equal(downloaded, SIZE);

    const after = memoryOf(pid);
    // 200 MB went through; peak memory may grow by socket buffers and uncollected garbage, not by a
    // body held whole (100 MB: the target can push all of it during the client's 1 s pause).
    console.log(`LB peak memory growth: ${(after.peak - baseline).toFixed(1)} MiB`);
    assert.ok(after.peak - baseline < 60, `LB peak memory grew by ${(after.peak - baseline).toFixed(1)} MiB`);
  });
});
