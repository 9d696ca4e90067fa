// ChatService over gRPC: turns each call into a ChatRequest for the router (unary) or into a local
// subscription (Subscribe), and every outcome into a response or a status, with topology metadata.
//
// Request size: API.md caps requests at 64 KiB with RESOURCE_EXHAUSTED. The limit is enforced here, per
// service, by wrapping the request deserializer, rather than with the server-wide
// grpc.max_receive_message_length: RaftService shares the port and needs larger batches, and a
// server-wide rejection happens before any handler could attach x-leader/x-members.
import * as grpc from '@grpc/grpc-js';
import { ChatError } from '../chat/errors.js';
import type { EventSink } from '../chat/events.js';
import { CHAT_METHODS, type CallContext, type ChatMethod } from '../chat/service.js';
import type { ChatEvent } from '../chat/types.js';
import type { Logger } from '../logger.js';
import { services } from '../proto.js';
import type { ChatRequest, ChatRouter } from './chat-router.js';
import { wasForwarded } from './forwarder.js';
import {
  type Topology,
  bearerToken,
  deadlineOf,
  idempotencyKey,
  toStatus,
  topologyMetadata,
} from './metadata.js';

export const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * Serves Subscribe from this replica's own applied state. ChatService implements it; it may take a
 * moment (a read barrier for a token this replica has not applied yet) before the stream is open.
 */
export interface SubscribeSource {
  subscribe(
    req: Record<string, unknown>,
    ctx: CallContext,
    sink: EventSink,
  ): (() => void) | Promise<() => void>;
}

export interface ChatHandlersOptions {
  router: ChatRouter;
  subscriptions: SubscribeSource;
  topology: Topology;
  logger?: Logger;
  /** A stream whose unsent backlog exceeds this many bytes is ended (the client resumes). */
  maxStreamBacklogBytes?: number;
  /**
   * Why this replica serves no chat call right now (it is not in the cluster's configuration:
   * removed, or not yet added), or undefined. Such calls get UNAVAILABLE at once, with the members.
   */
  notServing?: () => string | undefined;
}

/** A request that never reached a handler in one piece. */
const REJECTED = Symbol('rejected');
type Rejected = { [REJECTED]: ChatError };

function rejectedOf(req: unknown): ChatError | undefined {
  return typeof req === 'object' && req !== null && REJECTED in req ? (req as Rejected)[REJECTED] : undefined;
}

/** ChatService's definition with a size-checking, never-throwing request deserializer. */
export function chatServiceDefinition(): grpc.ServiceDefinition {
  const base = services().ChatService.service;
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(base)) {
    const decode = method.requestDeserialize;
    def[name] = {
      ...method,
      requestDeserialize: (buf: Buffer) => {
        if (buf.length > MAX_REQUEST_BYTES) {
          return {
            [REJECTED]: new ChatError(
              grpc.status.RESOURCE_EXHAUSTED,
              `The request is ${buf.length} bytes; the limit is ${MAX_REQUEST_BYTES} bytes.`,
            ),
          };
        }
        try {
          return decode(buf);
        } catch {
          return {
            [REJECTED]: new ChatError(
              grpc.status.INVALID_ARGUMENT,
              `The request is not a valid ${name} message.`,
            ),
          };
        }
      },
    };
  }
  return def as grpc.ServiceDefinition;
}

export class ChatHandlers {
  private readonly streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  private readonly ended = new WeakSet<grpc.ServerWritableStream<unknown, unknown>>();

  constructor(private readonly opts: ChatHandlersOptions) {}

  /** The implementation object for grpc.Server.addService. */
  implementation(): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const method of CHAT_METHODS) impl[method] = this.unary(method);
    impl.Subscribe = (call: grpc.ServerWritableStream<unknown, unknown>) => this.subscribe(call);
    return impl;
  }

  /** Ends every open Subscribe stream with UNAVAILABLE (shutdown: clients resume on another replica). */
  closeStreams(message = 'the server is shutting down; resubscribe.'): void {
    for (const call of [...this.streams]) this.fail(call, new ChatError(grpc.status.UNAVAILABLE, message));
  }

  private unary(method: ChatMethod): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      const md = topologyMetadata(this.opts.topology);
      call.sendMetadata(md);
      const reply = (err: unknown, value?: unknown) => {
        const trailers = topologyMetadata(this.opts.topology);
        if (err === null) callback(null, value, trailers);
        else {
          if (!(err instanceof ChatError)) this.opts.logger?.error({ err, method }, 'chat call failed');
          callback(toStatus(err, trailers));
        }
      };
      let served: Promise<unknown>;
      try {
        served = this.serve({
          method,
          request: call.request,
          token: bearerToken(call.metadata),
          idempotencyKey: idempotencyKey(call.metadata),
          deadline: deadlineOf(call),
          forwarded: wasForwarded(call.metadata),
        });
      } catch (err) {
        served = Promise.reject(err);
      }
      served.then(
        (value) => reply(null, value),
        (err: unknown) => reply(err),
      );
    };
  }

  /**
   * Serve one unary call: a direct one (above), or one a follower forwarded over ForwardService
   * (forward-stream.ts), which arrives with `forwarded` set so that it is never forwarded again.
   * `request` is what chatServiceDefinition's deserializer made of the bytes.
   */
  serve(req: ChatRequest): Promise<unknown> {
    try {
      const rejected = rejectedOf(req.request);
      if (rejected) throw rejected;
      this.refuseIfNotServing();
      return this.opts.router.handle(req);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private subscribe(call: grpc.ServerWritableStream<unknown, unknown>): void {
    call.sendMetadata(topologyMetadata(this.opts.topology));
    const limit = this.opts.maxStreamBacklogBytes ?? 4 << 20;
    let stop: (() => void) | undefined;
    let gone = false;
    const sink: EventSink = {
      event: (event: ChatEvent) => {
        if (call.writableLength > limit) {
          this.fail(
            call,
            new ChatError(grpc.status.RESOURCE_EXHAUSTED, 'The subscriber fell too far behind; resubscribe.'),
          );
          return;
        }
        call.write(event);
      },
      revoked: () => this.fail(call, new ChatError(grpc.status.UNAUTHENTICATED, 'The session was revoked.')),
    };
    const cleanup = () => {
      gone = true;
      this.streams.delete(call);
      stop?.();
      stop = undefined;
    };
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
    try {
      const rejected = rejectedOf(call.request);
      if (rejected) throw rejected;
      this.refuseIfNotServing();
      this.streams.add(call);
      Promise.resolve(
        this.opts.subscriptions.subscribe(
          call.request as Record<string, unknown>,
          { token: bearerToken(call.metadata), deadline: deadlineOf(call) },
          sink,
        ),
      ).then(
        (end) => {
          // The client may have gone while the token check waited.
          if (gone || call.cancelled) end();
          else stop = end;
        },
        (err: unknown) => this.fail(call, err),
      );
    } catch (err) {
      this.fail(call, err);
    }
  }

  private refuseIfNotServing(): void {
    const why = this.opts.notServing?.();
    if (why !== undefined) throw new ChatError(grpc.status.UNAVAILABLE, why);
  }

  private fail(call: grpc.ServerWritableStream<unknown, unknown>, err: unknown): void {
    this.streams.delete(call);
    if (this.ended.has(call) || call.cancelled) return;
    this.ended.add(call);
    call.emit('error', toStatus(err, topologyMetadata(this.opts.topology)));
  }
}
