// The cluster secret at the gRPC boundary (issue 13, finding 1): nothing a caller without the secret
// sends reaches a protobuf decoder, and on a server built with the gate it is not even read.
//
// Two layers, each enough on its own for "authenticate before decoding":
// - secretGate(): a grpc-js server interceptor. grpc-js reads a request's body only when the handler
//   asks for it, and the handler starts only after the call's metadata has passed every interceptor.
//   The gate refuses a guarded call in onReceiveMetadata, so its body is never read, buffered or
//   decoded. Without it, grpc-js reads a unary request whole (up to the server's 16 MiB) before the
//   handler can look at the metadata.
// - guardService(): a service whose deserializers pass the bytes through untouched, and whose handlers
//   check the secret first and decode afterwards. It is the one place where a service's requests are
//   decoded, for every method of the service, so a method added later is covered with no extra code.
//   Malformed bytes become INVALID_ARGUMENT (never grpc-js's INTERNAL), and an open method (one anyone
//   may call) decodes at most `maxOpenRequestBytes`.

import * as grpc from '@grpc/grpc-js';
import { checkBearer, secretRefusal, secretRefusalMessage } from './cluster-secret.js';

/** True when `md` carries exactly one `authorization: Bearer <secret>` (compared in constant time). */
export function hasClusterSecret(md: grpc.Metadata, secret: string): boolean {
  const auth = md.get('authorization');
  return auth.length === 1 && checkBearer(auth[0], secret);
}

/** The last segment of a method path: `/pkg.Service/Method` → `Method`. */
function methodName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The refusal of a call without the right secret, saying whether it was missing or wrong. */
function unauthenticated(
  method: string,
  md: grpc.Metadata,
  secret: string,
): { code: grpc.status; details: string } {
  const auth = md.get('authorization');
  const why = auth.length > 1 ? 'wrong' : (secretRefusal(auth[0], secret) ?? 'wrong');
  return { code: grpc.status.UNAUTHENTICATED, details: secretRefusalMessage(why, method) };
}

export interface SecretGateOptions {
  secret: string;
  /** Whether the method at this path (`/pkg.Service/Method`) needs the secret. */
  needsSecret: (path: string) => boolean;
  /** Metadata to send with a refusal (topology hints), if any. */
  refusalMetadata?: (path: string) => grpc.Metadata | undefined;
  /** Told about each refused call (for logs). */
  onRefused?: (path: string) => void;
  /**
   * The most bytes one message of a call that needs no secret may have; longer ones are refused with
   * RESOURCE_EXHAUSTED while they are read, before the rest is buffered. The server-wide limit is
   * larger, for authenticated peers' batches.
   */
  maxOpenMessageBytes?: number;
}

/**
 * grpc-js has one receive limit per server; a call's own limit lives on its stream decoder, which the
 * first interceptor can reach (the call it is handed is grpc-js's base call). Lowering it there caps
 * what an anonymous caller can make the server buffer. If a grpc-js release moves the decoder, this
 * returns false and the secret-guard tests fail (they check the decoder's own refusal).
 */
function capReceive(call: unknown, bytes: number): boolean {
  const decoder = (call as { decoder?: { maxReadMessageLength?: unknown } }).decoder;
  if (!decoder || typeof decoder.maxReadMessageLength !== 'number') return false;
  decoder.maxReadMessageLength = bytes;
  return true;
}

/**
 * A server interceptor (for `new grpc.Server({ interceptors: [...] })`) that ends a call needing the
 * secret with UNAUTHENTICATED as soon as its metadata arrives without it, before any byte of its
 * body is read.
 */
export function secretGate(opts: SecretGateOptions): grpc.ServerInterceptor {
  return (method, call) => {
    if (!opts.needsSecret(method.path)) {
      if (opts.maxOpenMessageBytes !== undefined) capReceive(call, opts.maxOpenMessageBytes);
      return new grpc.ServerInterceptingCall(call);
    }
    const gated: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (md, pass) => {
            if (hasClusterSecret(md, opts.secret)) {
              pass(md);
              return;
            }
            // Not passing the metadata on means the handler never starts, so it never asks grpc-js
            // to read the body; sending the status ends the HTTP/2 stream from this side at once.
            opts.onRefused?.(method.path);
            gated.sendStatus({
              ...unauthenticated(methodName(method.path), md, opts.secret),
              metadata: opts.refusalMetadata?.(method.path) ?? new grpc.Metadata(),
            });
          },
        }),
    });
    return gated;
  };
}

export interface GuardOptions {
  secret: string;
  /** Methods anyone may call, by name; every other method of the service needs the secret. */
  open?: ReadonlySet<string>;
  /** Largest request an open method decodes; a larger one gets RESOURCE_EXHAUSTED (default 64 KiB). */
  maxOpenRequestBytes?: number;
  /** Metadata to send with a refusal (topology hints), if any. */
  refusalMetadata?: () => grpc.Metadata | undefined;
  /** Told about each refused call: no secret, malformed or oversized (for logs). */
  onRefused?: (method: string, status: grpc.StatusObject) => void;
}

export interface GuardedService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

type Decoded = { ok: true; value: unknown } | { ok: false; code: grpc.status; details: string };

/**
 * `base` with pass-through deserializers, and `impl` with every handler wrapped so that it checks the
 * secret (unless its method is open), then decodes, then runs. Handlers see decoded requests exactly
 * as with `base`: `call.request`, or 'data' events of objects on a request stream.
 */
export function guardService(
  base: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  opts: GuardOptions,
): GuardedService {
  const open = opts.open ?? new Set<string>();
  const maxOpen = opts.maxOpenRequestBytes ?? 64 * 1024;
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(base) as [string, grpc.MethodDefinition<unknown, unknown>][]) {
    definition[name] = { ...method, requestDeserialize: (bytes: Buffer) => bytes };
    const handler = impl[name];
    if (handler === undefined) continue; // grpc-js answers UNIMPLEMENTED
    const needsSecret = !open.has(name);

    const status = (code: grpc.status, details: string): grpc.StatusObject => {
      const s = { code, details, metadata: opts.refusalMetadata?.() ?? new grpc.Metadata() };
      opts.onRefused?.(name, s);
      return s;
    };
    const refusal = (md: grpc.Metadata): grpc.StatusObject | undefined => {
      if (!needsSecret || hasClusterSecret(md, opts.secret)) return undefined;
      const { code, details } = unauthenticated(name, md, opts.secret);
      return status(code, details);
    };
    const decode = (bytes: Buffer): Decoded => {
      if (!needsSecret && bytes.length > maxOpen) {
        return {
          ok: false,
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: `The request is ${bytes.length} bytes; the limit is ${maxOpen} bytes.`,
        };
      }
      try {
        return { ok: true, value: method.requestDeserialize(bytes) };
      } catch {
        return {
          ok: false,
          code: grpc.status.INVALID_ARGUMENT,
          details: `The request is not a valid ${name} message.`,
        };
      }
    };

    if (!method.requestStream) {
      // Unary and server-streaming: grpc-js has the whole request before the handler runs.
      implementation[name] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback?: grpc.sendUnaryData<unknown>,
      ) => {
        const fail = (s: grpc.StatusObject) => {
          if (callback) callback(s);
          else (call as unknown as grpc.ServerWritableStream<unknown, unknown>).emit('error', s);
        };
        const refused = refusal(call.metadata);
        if (refused) return fail(refused);
        const decoded = decode(call.request as Buffer);
        if (!decoded.ok) return fail(status(decoded.code, decoded.details));
        (call as { request: unknown }).request = decoded.value;
        (handler as (c: unknown, cb?: unknown) => void)(call, callback);
      };
      continue;
    }

    // Client-streaming and bidi: the handler starts on the metadata, before any message is read.
    const streaming = (
      call: grpc.ServerReadableStream<unknown, unknown>,
      callback?: grpc.sendUnaryData<unknown>,
    ) => {
      let ended = false;
      const once: grpc.sendUnaryData<unknown> = (...args) => {
        if (ended) return;
        ended = true;
        callback?.(...args);
      };
      const fail = (s: grpc.StatusObject) => {
        // Closing the call at once: the status goes out now, and grpc-js then emits 'cancelled' to
        // the handler (if it started) and discards whatever the peer still sends.
        if (callback) once(s);
        else call.emit('error', s);
        ended = true;
      };
      const refused = refusal(call.metadata);
      if (refused) return fail(refused);
      // grpc-js hands each message to the stream with push(); decoding there means the handler's
      // 'data' listeners only ever see decoded messages, and nothing after a malformed one.
      const push = call.push.bind(call);
      call.push = (chunk: unknown, encoding?: BufferEncoding) => {
        if (ended) return false;
        if (chunk === null) return push(null, encoding);
        const decoded = decode(chunk as Buffer);
        if (decoded.ok) return push(decoded.value, encoding);
        fail(status(decoded.code, decoded.details));
        return false;
      };
      (handler as (c: unknown, cb?: unknown) => void)(call, callback ? once : undefined);
    };
    implementation[name] = streaming as grpc.handleClientStreamingCall<unknown, unknown>;
  }
  return { definition: definition as grpc.ServiceDefinition, implementation };
}
