// One attempt of a unary call on one address, reading the topology hints from headers and trailers.
import * as grpc from '@grpc/grpc-js';
import { ChatClientError, toClientError } from './errors.js';
import type { Members } from './members.js';

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

/** Calls `method` on `stub` with a deadline `timeoutMs` from now; rejects with a ChatClientError. */
export function unaryAttempt<Res>(
  members: Members,
  address: string,
  stub: grpc.Client,
  method: string,
  request: unknown,
  metadata: grpc.Metadata,
  timeoutMs: number,
): Promise<Res> {
  const fn = (stub as unknown as Record<string, UnaryMethod>)[method];
  if (typeof fn !== 'function') return Promise.reject(new Error(`no such rpc: ${method}`));
  return new Promise<Res>((resolve, reject) => {
    // grpc deadlines are wall-clock; the operation's budget (with the injected clock) caps timeoutMs.
    const deadline = new Date(Date.now() + Math.max(1, timeoutMs));
    const call = fn.call(stub, request, metadata, { deadline }, (err, response) => {
      if (err) {
        members.absorb(err.metadata);
        reject(transportWording(toClientError(err), address));
      } else {
        resolve(response as Res);
      }
    });
    call.on('metadata', (md: grpc.Metadata) => members.absorb(md));
    call.on('status', (s: grpc.StatusObject) => members.absorb(s.metadata));
  });
}

/**
 * grpc-js's own wording for a connection that could not be made ("No connection established. Last error:
 * Error: connect ECONNREFUSED ... Resolution note: ") is not a sentence for a user; say which replica
 * could not be reached and why, in one line. Answers from a server are left as they are.
 */
export function transportWording(err: ChatClientError, address: string): ChatClientError {
  if (
    err.code !== grpc.status.UNAVAILABLE ||
    !/No connection established|Connection dropped|ECONN|ETIMEDOUT|EHOSTUNREACH|certificate|SSL/.test(
      err.message,
    )
  ) {
    return err;
  }
  const errno = /\b(E[A-Z]{3,})\b/.exec(err.message)?.[1];
  // A TLS failure (a certificate the CA does not vouch for, a plaintext server) says so.
  const tls =
    /Last error: (?:Error: )?([^(\n]*?(?:certificate|SSL|TLS|handshake|wrong version)[^(\n]*?)\s*(?:\(|Resolution|$)/i.exec(
      err.message,
    )?.[1];
  const why = tls
    ? `TLS: ${tls.replace(/\.$/, '')}`
    : errno === 'ECONNREFUSED'
      ? 'connection refused'
      : (errno ?? 'connection lost');
  return new ChatClientError(err.code, `Could not reach ${address} (${why}).`);
}
