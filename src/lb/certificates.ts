import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from '../core/log.js';

export interface CertificateFiles {
  cert: string;
  key: string;
}

interface LoadedCertificate {
  files: CertificateFiles;
  pem: { cert: string; key: string };
  context: tls.SecureContext;
  /** DNS names from the certificate (subjectAltName, else the subject CN), lower case; may hold "*.x". */
  names: string[];
  notAfter: string;
}

function namesOf(pem: string): { names: string[]; notAfter: string } {
  const cert = new X509Certificate(pem);
  const names = (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (names.length === 0) {
    const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1];
    if (cn) names.push(cn.toLowerCase());
  }
  return { names, notAfter: cert.validTo };
}

/**
 * The certificates of one TLS listener, chosen by SNI. Files are watched and reloaded without a
 * restart; a reload that fails (a half-written file, a key that does not match) keeps the old one.
 */
export class CertificateStore {
  private certs: LoadedCertificate[] = [];
  private watchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  /** Called after the certificates were reloaded (the server refreshes its default context). */
  onReload: () => void = () => {};

  constructor(
    private files: CertificateFiles[],
    private readonly log: Logger,
  ) {
    this.certs = files.map((f) => this.load(f));
    this.watch();
  }

  private load(files: CertificateFiles): LoadedCertificate {
    const cert = readFileSync(files.cert, 'utf8');
    const key = readFileSync(files.key, 'utf8');
    const context = tls.createSecureContext({ cert, key }); // throws if the key does not match
    return { files, pem: { cert, key }, context, ...namesOf(cert) };
  }

  /** Replaces the certificate list (config reload). Throws, keeping the old list, if one cannot load. */
  update(files: CertificateFiles[]): void {
    this.certs = files.map((f) => this.load(f));
    this.files = files;
    this.watch();
  }

  /** For `tls.createServer({ SNICallback })`: exact name, then wildcard, then the first certificate. */
  readonly sniCallback = (
    servername: string,
    cb: (err: Error | null, ctx?: tls.SecureContext) => void,
  ): void => {
    cb(null, this.contextFor(servername));
  };

  contextFor(servername: string | undefined): tls.SecureContext | undefined {
    const name = (servername ?? '').toLowerCase();
    const wildcard = name.includes('.') ? `*${name.slice(name.indexOf('.'))}` : '';
    const exact = this.certs.find((c) => c.names.includes(name));
    const wild = exact ?? this.certs.find((c) => wildcard !== '' && c.names.includes(wildcard));
    return (wild ?? this.certs[0])?.context;
  }

  /** The first certificate as PEM, the default for clients that send no SNI. */
  defaultPem(): { cert: string; key: string } {
    return this.certs[0]!.pem;
  }

  summary(): Array<{ cert: string; names: string[]; notAfter: string }> {
    return this.certs.map((c) => ({ cert: c.files.cert, names: c.names, notAfter: c.notAfter }));
  }

  private watch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    for (const f of this.files) {
      for (const path of [f.cert, f.key]) {
        try {
          this.watchers.push(watch(path, { persistent: false }, () => this.scheduleReload()));
        } catch (err) {
          this.log.warn({ file: path, err: (err as Error).message }, 'cannot watch a certificate file');
        }
      }
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.reloadTimer);
    // Certificate and key are usually replaced together: wait for both before reloading.
    this.reloadTimer = setTimeout(() => {
      try {
        this.update(this.files);
        this.onReload();
        this.log.info({ certificates: this.summary() }, 'TLS certificates reloaded');
      } catch (err) {
        this.log.error(
          { err: (err as Error).message },
          'TLS certificate reload failed; the previous certificates stay in use',
        );
      }
    }, 300);
    this.reloadTimer.unref();
  }

  close(): void {
    clearTimeout(this.reloadTimer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
