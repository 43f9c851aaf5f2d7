/**
 * The box-wide benchmark lock (`flock /tmp/scaleout-bench.lock`), so two benchmarks never measure at once.
 *
 * flock(1) is run on a file descriptor this process owns: a flock belongs to the open file description,
 * which the child shares, so the lock stays held after flock(1) exits and is released when we close the
 * descriptor, or automatically if this process dies.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

function openLockFile(path: string): number {
  try {
    return openSync(path, 'a');
  } catch {
    return openSync(path, 'r'); // someone else's file we may not write to: a read handle locks as well
  }
}

/** Run `fn` holding the lock exclusively; also returns how long we waited for it. */
export async function withBenchLock<T>(
  path: string,
  fn: () => Promise<T>,
): Promise<{ value: T; waitedMs: number }> {
  const asked = Date.now();
  const fd = openLockFile(path);
  try {
    await new Promise<void>((done, fail) => {
      const flock = spawn('flock', ['-x', '3'], { stdio: ['ignore', 'inherit', 'inherit', fd] });
      flock.on('error', fail);
      flock.on('exit', (code, sig) =>
        code === 0 ? done() : fail(new Error(`flock ${path} failed (${code ?? sig})`)),
      );
    });
    const waitedMs = Date.now() - asked;
    return { value: await fn(), waitedMs };
  } finally {
    closeSync(fd);
  }
}
