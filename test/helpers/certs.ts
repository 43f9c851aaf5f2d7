// A throwaway certificate authority for TLS tests, made with the openssl command line tool.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  caPem: string;
  /** Issues a certificate for `names` (first = CN) into dir/<file>.crt/.key and returns the paths. */
  issue(file: string, names: string[]): { cert: string; key: string };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'scaleout-ca-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=scaleout test CA',
    ],
    dir,
  );
  let serial = 1;
  return {
    dir,
    caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    issue(file, names) {
      const ext = join(dir, `${file}.ext`);
      writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
      openssl(
        [
          'req',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          `${file}.key.tmp`,
          '-out',
          `${file}.csr`,
          '-subj',
          `/CN=${names[0]}`,
        ],
        dir,
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${file}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-set_serial',
          String(serial++),
          '-days',
          '2',
          '-extfile',
          ext,
          '-out',
          `${file}.crt.tmp`,
        ],
        dir,
      );
      // Replace both files at once-ish, as a deploy would.
      const cert = join(dir, `${file}.crt`);
      const key = join(dir, `${file}.key`);
      writeFileSync(key, readFileSync(join(dir, `${file}.key.tmp`)));
      writeFileSync(cert, readFileSync(join(dir, `${file}.crt.tmp`)));
      return { cert, key };
    },
  };
}
