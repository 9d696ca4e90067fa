// Mutual TLS on the shared port: a grpc-js server interceptor that refuses every peers-only call
// (RaftService) whose connection did not present a certificate chaining to the cluster CA. The TLS
// layer has already verified a presented certificate against the CA (the server requests one without
// requiring it, credentials.ts); grpc-js reports a connection as authenticated only when that
// verification passed. The refusal is sent when the call's metadata arrives, so the handler never
// starts and not one byte of the call's body is read or decoded. The cluster secret is checked after
// this, by the secret gate (`inner`), so a peer with the right secret and the wrong CA is still refused.
import * as grpc from '@grpc/grpc-js';

export interface PeerCertificateGateOptions {
  /** Whether the method at this path (`/pkg.Service/Method`) is for peers only. */
  peersOnly: (path: string) => boolean;
  /** Told about each refusal, with the caller's address and why (for the log). */
  onRefused?: (path: string, peer: string, reason: string) => void;
  /**
   * The interceptor for calls that pass (the secret gate). It is handed grpc-js's base call, as the
   * first interceptor of a server is: the secret gate caps anonymous reads on it.
   */
  inner: grpc.ServerInterceptor;
}

/** Why the TLS layer did not accept the connection's certificate, in the words of Node's verifier. */
function whyUnverified(call: unknown): string {
  // grpc-js keeps the HTTP/2 stream on its base call; the TLS socket says why it did not verify
  // (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE for another CA's certificate). Best effort: only for the log.
  const socket = (
    call as {
      stream?: { session?: { socket?: { authorizationError?: unknown; getPeerCertificate?: () => object } } };
    }
  ).stream?.session?.socket;
  const error = socket?.authorizationError;
  const presented = socket?.getPeerCertificate
    ? Object.keys(socket.getPeerCertificate()).length > 0
    : undefined;
  if (presented === false) return 'no client certificate was presented';
  if (error) return `the client certificate does not chain to the cluster CA (${String(error)})`;
  return 'no client certificate chaining to the cluster CA';
}

export function peerCertificateGate(opts: PeerCertificateGateOptions): grpc.ServerInterceptor {
  return (method, call) => {
    if (!opts.peersOnly(method.path) || call.getAuthContext().sslPeerCertificate) {
      return opts.inner(method, call);
    }
    const reason = whyUnverified(call);
    const refused: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: () => {
            opts.onRefused?.(method.path, call.getPeer(), reason);
            refused.sendStatus({
              code: grpc.status.UNAUTHENTICATED,
              details: `Peers-only call refused: ${reason}.`,
              metadata: new grpc.Metadata(),
            });
          },
        }),
    });
    return refused;
  };
}
