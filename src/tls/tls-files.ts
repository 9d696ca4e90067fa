// TLS files (API.md §1, TLS): read and checked once, before anything binds, so that a missing,
// unreadable or mismatched file is one line naming it (exit 1), never a failed handshake later. The
// credentials are built from the contents read here: grpc-js's file-watching certificate providers
// load only after bindAsync returns, so the first handshakes would fail.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import { UserError } from '../user-error.js';

/** A replica's TLS material: its certificate and key, and the CA its peers' certificates chain to. */
export interface ReplicaTls {
  cert: Buffer;
  key: Buffer;
  /** With it, peers talk mutual TLS and RaftService calls need a certificate chaining to it. */
  ca?: Buffer;
}

function readFile(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${code ?? (err as Error).message})`;
    throw new UserError(`${flag} ${file} ${why}`);
  }
}

/** The certificates in a PEM file; none, or one that does not parse, is a UserError naming it. */
function certificates(flag: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem
    .toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new UserError(`${flag} ${file} holds no PEM certificate`);
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new UserError(`${flag} ${file} holds a certificate that does not parse`);
    }
  });
}

/** Reads and checks a CA file (`--tls-ca-file`): it must hold at least one PEM certificate. */
export function readCaFile(file: string, flag = '--tls-ca-file'): Buffer {
  const pem = readFile(flag, file);
  certificates(flag, file, pem);
  return pem;
}

export interface TlsFiles {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
}

/**
 * The replica's TLS material, or undefined when no TLS flag is given. Cert and key go together; the CA
 * needs them (mutual TLS presents this replica's certificate). The key must match the certificate,
 * and the certificate must chain to the CA when one is given.
 */
export function loadReplicaTls(files: TlsFiles): ReplicaTls | undefined {
  const { certFile, keyFile, caFile } = files;
  if (!certFile && !keyFile && !caFile) return undefined;
  if (!certFile || !keyFile) {
    throw new UserError(
      `--tls-cert-file and --tls-key-file go together${caFile ? ' (--tls-ca-file needs both: peers present this certificate)' : ''}`,
    );
  }
  const cert = readFile('--tls-cert-file', certFile);
  const chain = certificates('--tls-cert-file', certFile, cert);
  const leaf = chain[0];
  const key = readFile('--tls-key-file', keyFile);
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new UserError(`--tls-key-file ${keyFile} holds no PEM private key that can be read`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new UserError(`--tls-key-file ${keyFile} does not match the certificate in ${certFile}`);
  }
  if (!caFile) return { cert, key };
  const ca = readCaFile(caFile);
  const cas = certificates('--tls-ca-file', caFile, ca);
  // The file may carry intermediates after the leaf: one of them must be signed by the CA.
  if (!chain.some((link) => cas.some((c) => link.checkIssued(c) && link.verify(c.publicKey)))) {
    throw new UserError(`--tls-cert-file ${certFile} is not signed by the CA in ${caFile}`);
  }
  return { cert, key, ca };
}
