// Issue 11: TLS files are checked before anything binds, and each problem is one line naming the file;
// `quorum-chat certs` makes a CA and per-replica certificates that chain to it with the right SANs.
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/server/local-cluster.js';
import { main as serverMain } from '../../src/server/main.js';
import { describeCerts, makeCerts } from '../../src/tls/certs.js';
import { clientChannelCredentials } from '../../src/tls/credentials.js';
import { silenceIpServerNameWarning } from '../../src/tls/quiet-warnings.js';
import { loadReplicaTls } from '../../src/tls/tls-files.js';
import { UserError } from '../../src/user-error.js';

let dir = '';
let other = '';
beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'qc-tls-'));
  other = join(dir, 'other');
  makeCerts(join(dir, 'certs'), ['server1', 'node2.example.org', '10.1.2.3']);
  makeCerts(other, ['server1']);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const certs = () => join(dir, 'certs');

/** The UserError a call throws (fails the test if it throws anything else or nothing). */
function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

function expectOneLineNaming(message: string, file: string): void {
  expect(message).toContain(file);
  expect(message).not.toContain('\n');
}

describe('TLS file errors', () => {
  it('accepts a matching certificate, key and CA', () => {
    const tls = loadReplicaTls({
      certFile: join(certs(), 'server1.crt'),
      keyFile: join(certs(), 'server1.key'),
      caFile: join(certs(), 'ca.crt'),
    });
    expect(tls?.ca).toBeDefined();
    expect(loadReplicaTls({})).toBeUndefined();
  });

  it('names a missing file', () => {
    const missing = join(dir, 'nope.crt');
    const m = userError(() => loadReplicaTls({ certFile: missing, keyFile: join(certs(), 'server1.key') }));
    expectOneLineNaming(m, missing);
    expect(m).toMatch(/--tls-cert-file .* does not exist/);
    const ca = userError(() => clientChannelCredentials(missing));
    expectOneLineNaming(ca, missing);
  });

  it('names an unreadable file (a directory)', () => {
    const m = userError(() =>
      loadReplicaTls({ certFile: join(certs(), 'server1.crt'), keyFile: certs(), caFile: undefined }),
    );
    expectOneLineNaming(m, certs());
    expect(m).toMatch(/--tls-key-file .* is a directory/);
  });

  it('names a key that does not match its certificate', () => {
    const key = join(certs(), '10.1.2.3.key');
    const m = userError(() => loadReplicaTls({ certFile: join(certs(), 'server1.crt'), keyFile: key }));
    expectOneLineNaming(m, key);
    expect(m).toMatch(/does not match the certificate/);
  });

  it('names a file that is not PEM', () => {
    const junk = join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a certificate\n');
    const cert = userError(() => loadReplicaTls({ certFile: junk, keyFile: join(certs(), 'server1.key') }));
    expectOneLineNaming(cert, junk);
    expect(cert).toMatch(/holds no PEM certificate/);
    const key = userError(() => loadReplicaTls({ certFile: join(certs(), 'server1.crt'), keyFile: junk }));
    expectOneLineNaming(key, junk);
    expect(key).toMatch(/holds no PEM private key/);
    const ca = userError(() => clientChannelCredentials(junk));
    expectOneLineNaming(ca, junk);
  });

  it('names a certificate that the CA did not sign, and cert and key given alone', () => {
    const cert = join(other, 'server1.crt');
    const m = userError(() =>
      loadReplicaTls({
        certFile: cert,
        keyFile: join(other, 'server1.key'),
        caFile: join(certs(), 'ca.crt'),
      }),
    );
    expectOneLineNaming(m, cert);
    expect(m).toMatch(/is not signed by the CA/);
    expect(userError(() => loadReplicaTls({ caFile: join(certs(), 'ca.crt') }))).toMatch(/go together/);
  });

  it('the server refuses to start on a bad TLS file, before it creates anything', async () => {
    const data = join(dir, 'never-created');
    const missing = join(dir, 'missing.key');
    await expect(
      serverMain([
        '--id',
        's1',
        '--port',
        '1',
        '--data-dir',
        data,
        '--tls-cert-file',
        join(certs(), 'server1.crt'),
        '--tls-key-file',
        missing,
      ]),
    ).rejects.toThrow(new UserError(`--tls-key-file ${missing} does not exist`));
    expect(fs.existsSync(data)).toBe(false);
  });
});

describe('quorum-chat certs', () => {
  it('makes certificates that chain to the CA, with SANs for the name or IP, localhost and 127.0.0.1', () => {
    const ca = new X509Certificate(fs.readFileSync(join(certs(), 'ca.crt')));
    expect(ca.ca).toBe(true);
    const want: Record<string, string[]> = {
      server1: ['DNS:server1', 'DNS:localhost', 'IP Address:127.0.0.1'],
      'node2.example.org': ['DNS:node2.example.org', 'DNS:localhost', 'IP Address:127.0.0.1'],
      '10.1.2.3': ['IP Address:10.1.2.3', 'DNS:localhost', 'IP Address:127.0.0.1'],
    };
    for (const [name, sans] of Object.entries(want)) {
      const cert = new X509Certificate(fs.readFileSync(join(certs(), `${name}.crt`)));
      expect(cert.checkIssued(ca), name).toBe(true);
      expect(cert.verify(ca.publicKey), name).toBe(true);
      expect(cert.ca).toBe(false);
      expect(cert.subjectAltName?.split(', ').sort()).toEqual([...sans].sort());
      expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
      expect(fs.statSync(join(certs(), `${name}.key`)).mode & 0o777).toBe(0o600);
    }
    expect(fs.statSync(join(certs(), 'ca.key')).mode & 0o777).toBe(0o600);
    // Not from the other CA.
    const foreign = new X509Certificate(fs.readFileSync(join(other, 'server1.crt')));
    expect(foreign.verify(ca.publicKey)).toBe(false);
  });

  it('reuses the CA in the directory for more replicas, and never overwrites a certificate', () => {
    const before = fs.readFileSync(join(certs(), 'ca.crt'));
    const r = makeCerts(certs(), ['server6']);
    expect(r.newCa).toBe(false);
    expect(fs.readFileSync(join(certs(), 'ca.crt')).equals(before)).toBe(true);
    const ca = new X509Certificate(before);
    expect(new X509Certificate(fs.readFileSync(join(certs(), 'server6.crt'))).verify(ca.publicKey)).toBe(
      true,
    );
    expect(describeCerts(r)).toContain(
      `--tls-cert-file ${join(certs(), 'server6.crt')} --tls-key-file ${join(certs(), 'server6.key')} --tls-ca-file ${join(certs(), 'ca.crt')}`,
    );
    const again = userError(() => makeCerts(certs(), ['server6']));
    expectOneLineNaming(again, join(certs(), 'server6.crt'));
    expect(userError(() => makeCerts(certs(), ['bad name']))).toMatch(/not a host name/);
  });

  it('says in one line when openssl is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'empty-path');
    try {
      const m = userError(() => makeCerts(join(dir, 'no-openssl'), ['a']));
      expect(m).toBe('certs: openssl was not found on PATH; install it (apt-get install openssl)');
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('the IP server-name warning', () => {
  it('is silenced (DEP0123 only): every other warning still reaches the process', async () => {
    const original = process.emitWarning;
    const seen: string[] = [];
    const onWarning = (w: Error & { code?: string }) => seen.push(w.code ?? w.message);
    process.on('warning', onWarning);
    try {
      silenceIpServerNameWarning();
      process.emitWarning('ip as servername', { type: 'DeprecationWarning', code: 'DEP0123' });
      process.emitWarning('ip as servername', 'DeprecationWarning', 'DEP0123');
      process.emitWarning('something else', { type: 'DeprecationWarning', code: 'DEP9999' });
      await waitFor(() => seen.length > 0, { timeoutMs: 2000, what: 'the other warning' });
      await new Promise((r) => setImmediate(r));
      expect(seen).toEqual(['DEP9999']);
    } finally {
      process.emitWarning = original;
      process.off('warning', onWarning);
    }
  });
});
