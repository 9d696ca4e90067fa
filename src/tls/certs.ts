// `quorum-chat certs --out DIR --hosts NAME[,NAME...]`: a development CA and one certificate per
// replica, for trying TLS and mutual TLS (docs/API.md, TLS). Made with Debian's openssl, run as a
// child process: it is on every machine the project runs on (and in .ci/run's packages), so nothing
// is downloaded at run time, and no X.509 code of our own signs anything. Node's crypto can verify
// certificates but cannot make them; the npm libraries that can would be a new dependency.
//
// A CA already in DIR (ca.crt + ca.key) is reused, so more replicas can be added later with the same
// CA. Private keys are 0600 from the start (an owner-only umask while openssl runs); certificates 0644.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { type CommandSpec, parseFlags, required } from '../cli-flags.js';
import { mkdirPrivate } from '../private-files.js';
import { UserError } from '../user-error.js';

export const certsCommand: CommandSpec = {
  name: 'certs',
  synopsis: ['certs --out DIR --hosts NAME[,NAME...] [--days 825]'],
  about:
    'Makes a development CA (DIR/ca.crt, DIR/ca.key; reused when DIR already has one) and, for each ' +
    'NAME, a certificate and key (DIR/NAME.crt, DIR/NAME.key) valid for that host name or IP address, ' +
    'localhost and 127.0.0.1, for both serving and mutual TLS between peers. Prints the flags to use. ' +
    'Needs openssl. For development and trials: a production cluster should use certificates from the ' +
    "organisation's own CA.",
  flags: {
    out: { value: 'DIR', help: 'directory for the CA and the certificates (required)' },
    hosts: {
      value: 'NAME,...',
      help: "one per replica: its host name or IP address, as the other replicas' --peers name it (required)",
    },
    days: { value: 'N', default: '825', help: 'validity of the certificates' },
  },
  notes: 'example: quorum-chat certs --out certs --hosts node1.example.org,node2.example.org,10.0.0.3',
};

export interface CertsResult {
  dir: string;
  caCert: string;
  caKey: string;
  /** Whether the CA was made now (false: DIR had one). */
  newCa: boolean;
  hosts: { name: string; cert: string; key: string; sans: string[] }[];
}

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The subjectAltName of a replica's certificate: its own name or IP, plus localhost and 127.0.0.1. */
export function subjectAltNames(name: string): string[] {
  const sans = [isIP(name) ? `IP:${name}` : `DNS:${name}`, 'DNS:localhost', 'IP:127.0.0.1'];
  return [...new Set(sans)];
}

/** openssl req's arguments for a new P-256 key, unencrypted (a replica starts unattended), in `file`. */
function newKey(file: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc', '-keyout', file];
}

function openssl(args: string[], input?: string): void {
  try {
    execFileSync('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'], input });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') {
      throw new UserError('certs: openssl was not found on PATH; install it (apt-get install openssl)');
    }
    const first = (e.stderr?.toString() ?? e.message).trim().split('\n')[0];
    throw new UserError(`certs: openssl ${args[0]} failed: ${first}`);
  }
}

/** Makes (or reuses) the CA in `dir` and one certificate per host name; throws UserError on trouble. */
export function makeCerts(dir: string, names: string[], days = 825): CertsResult {
  if (names.length === 0) throw new UserError('certs: --hosts names no host');
  for (const n of names) {
    if (!isIP(n) && !HOST_NAME.test(n)) throw new UserError(`certs: '${n}' is not a host name or IP address`);
  }
  if (new Set(names).size !== names.length) throw new UserError('certs: --hosts names a host twice');
  try {
    mkdirPrivate(dir);
  } catch (err) {
    throw new UserError(`certs: cannot create ${dir} (${(err as NodeJS.ErrnoException).code})`);
  }
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const hosts = names.map((name) => ({
    name,
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
    sans: subjectAltNames(name),
  }));
  for (const h of hosts) {
    if (fs.existsSync(h.cert) || fs.existsSync(h.key)) {
      throw new UserError(`certs: ${h.cert} already exists; remove it (and its key) to make a new one`);
    }
  }
  const hasCa = fs.existsSync(caCert) && fs.existsSync(caKey);
  if (!hasCa && (fs.existsSync(caCert) || fs.existsSync(caKey))) {
    throw new UserError(`certs: ${dir} has only one of ca.crt and ca.key; remove it to make a new CA`);
  }
  // Keys are written private from their first byte; certificates are opened up afterwards.
  const umask = process.umask(0o077);
  try {
    if (!hasCa) {
      openssl([
        'req',
        '-x509',
        ...newKey(caKey),
        '-out',
        caCert,
        '-days',
        String(days + 1),
        '-subj',
        '/CN=Quorum Chat development CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
    }
    for (const h of hosts) {
      const csr = `${h.cert}.csr`;
      const ext = `${h.cert}.ext`;
      try {
        openssl(['req', '-new', ...newKey(h.key), '-out', csr, '-subj', `/CN=${h.name}`]);
        fs.writeFileSync(
          ext,
          [
            'basicConstraints=critical,CA:FALSE',
            'keyUsage=critical,digitalSignature,keyEncipherment',
            // Both: a replica serves, and presents the same certificate when it dials its peers.
            'extendedKeyUsage=serverAuth,clientAuth',
            `subjectAltName=${h.sans.join(',')}`,
            '',
          ].join('\n'),
        );
        openssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          caCert,
          '-CAkey',
          caKey,
          '-set_serial',
          `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffffff).toString(16)}`,
          '-days',
          String(days),
          '-extfile',
          ext,
          '-out',
          h.cert,
        ]);
      } finally {
        fs.rmSync(csr, { force: true });
        fs.rmSync(ext, { force: true });
      }
      fs.chmodSync(h.cert, 0o644);
    }
    if (!hasCa) fs.chmodSync(caCert, 0o644);
  } finally {
    process.umask(umask);
  }
  // A CA file that is not a CA, or a host certificate it did not sign, would fail much later.
  const ca = new X509Certificate(fs.readFileSync(caCert));
  for (const h of hosts) {
    const c = new X509Certificate(fs.readFileSync(h.cert));
    if (!c.checkIssued(ca) || !c.verify(ca.publicKey)) {
      throw new UserError(`certs: ${h.cert} does not verify against ${caCert}`);
    }
  }
  return { dir, caCert, caKey, newCa: !hasCa, hosts };
}

export function describeCerts(r: CertsResult): string {
  const lines = [
    r.newCa ? `made a development CA in ${r.caCert}` : `used the CA in ${r.caCert}`,
    `  ${r.caKey} signs more certificates: keep it private, and off the replicas`,
  ];
  for (const h of r.hosts) lines.push(`made ${h.cert} and ${h.key} for ${h.sans.join(', ')}`);
  lines.push('', 'flags for each replica (copy its two files and ca.crt to its machine):');
  for (const h of r.hosts) {
    lines.push(
      `  ${h.name}: quorum-chat server ... --tls-cert-file ${h.cert} --tls-key-file ${h.key} --tls-ca-file ${r.caCert}`,
    );
  }
  lines.push(
    '',
    'flags for clients and tools (client, status, member, transfer, backup, bench):',
    `  --tls-ca-file ${r.caCert}`,
  );
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const v = parseFlags(certsCommand, argv) as Record<string, string | undefined>;
  const out = required(certsCommand, v, 'out');
  const names = required(certsCommand, v, 'hosts')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const days = v.days ?? '825';
  if (!/^\d{1,5}$/.test(days) || Number(days) < 1) {
    throw new UserError(`certs: --days must be a whole number of days, not '${days}'`);
  }
  console.log(describeCerts(makeCerts(out, names, Number(days))));
  return 0;
}
