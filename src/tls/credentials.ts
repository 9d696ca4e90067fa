// gRPC credentials from TLS material, in one place for the server, the peer transport and every
// bundled client (terminal, status, member, transfer, backup, bench, the local launcher).
//
// Mutual TLS on the shared port (docs/API.md, TLS): the server requests a client certificate but does
// not require one, because users' clients carry none; Node's TLS layer verifies a presented one against
// the CA, and peerCertificateGate() refuses every RaftService call whose connection did not present a
// certificate chaining to it, before the call's first byte is read.
import * as grpc from '@grpc/grpc-js';
import { type ReplicaTls, readCaFile } from './tls-files.js';

/**
 * Server credentials that ask for a client certificate without requiring it (grpc-js's createSsl can
 * only require one, or not ask at all). The context is built from the contents at once, so the very
 * first handshake after bind already has it.
 */
class RequestCertificateCredentials extends grpc.ServerCredentials {
  constructor(tls: Required<ReplicaTls>) {
    super({ requestCert: true, rejectUnauthorized: false }, { ca: tls.ca, cert: [tls.cert], key: [tls.key] });
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** What a replica's gRPC server listens with: plaintext, TLS, or TLS asking peers for a certificate. */
export function serverCredentials(tls: ReplicaTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (tls.ca) return new RequestCertificateCredentials({ ...tls, ca: tls.ca });
  return grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false);
}

/**
 * What a replica dials other replicas with (Raft stream, snapshots, forwarding, join, its own web
 * gateway): it verifies them against the CA and presents its own certificate. Without a CA (TLS, no
 * mutual TLS) it verifies against the system's roots.
 */
export function peerChannelCredentials(tls: ReplicaTls | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key, tls.cert);
}

/** What a user's client or tool dials with: TLS verified against `--tls-ca-file`, or plaintext. */
export function clientChannelCredentials(caFile: string | undefined): grpc.ChannelCredentials {
  if (caFile === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(readCaFile(caFile));
}

/** The `--tls-ca-file` entry for a tool's flag table (cli-flags.ts). */
export const TLS_CA_FLAG = {
  'tls-ca-file': {
    value: 'FILE',
    help: 'the CA of a TLS cluster (from `quorum-chat certs`): connect over TLS and verify the servers with it',
  },
} as const;
