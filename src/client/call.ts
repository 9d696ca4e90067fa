// One attempt of a unary call on one address, reading the topology hints from headers and trailers.
import type * as grpc from '@grpc/grpc-js';
import { toClientError } from './errors.js';
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
        reject(toClientError(err));
      } else {
        resolve(response as Res);
      }
    });
    call.on('metadata', (md: grpc.Metadata) => members.absorb(md));
    call.on('status', (s: grpc.StatusObject) => members.absorb(s.metadata));
  });
}
