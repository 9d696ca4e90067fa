// Forwarding to the leader: a follower hands a whole ChatService (or ClusterService) call to the leader
// over gRPC, keeping the caller's deadline, `authorization` and `idempotency-key`, and hands back the
// leader's answer (or its status). One channel per leader address, reused; a forwarded call carries
// `x-forwarded` so that the receiver never forwards it a second time (no loops between stale views).
import * as grpc from '@grpc/grpc-js';
import { ChatError, status } from '../chat/errors.js';
import { services } from '../proto.js';
import { retryAfterOf } from './metadata.js';

export const FORWARDED_HEADER = 'x-forwarded';

/** Without a caller deadline, a forwarded call still ends (ms). */
const DEFAULT_FORWARD_MS = 10_000;
/** Channels kept; a cluster has few leaders over time, this only bounds a pathological churn. */
const MAX_CHANNELS = 16;

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

export interface ForwardCall {
  service: 'chat' | 'cluster';
  method: string;
  request: unknown;
  /** The full `authorization` value to send (e.g. `Bearer <token>`). */
  authorization?: string;
  idempotencyKey?: string;
  /** Absolute deadline, Unix ms. */
  deadline?: number;
}

/** Was this call forwarded by another replica already? */
export function wasForwarded(md: grpc.Metadata): boolean {
  return md.get(FORWARDED_HEADER).length > 0;
}

export class LeaderForwarder {
  private readonly channels = new Map<string, { chat: grpc.Client; cluster: grpc.Client }>();
  private closed = false;

  /** `credentials`: how the leader is dialled (plaintext by default; the replica's mutual TLS). */
  constructor(
    private readonly selfAddress: () => string,
    private readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {}

  call(address: string, c: ForwardCall): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(new ChatError(status.UNAVAILABLE, 'This replica is shutting down; retry.'));
    }
    const stub = this.stubs(address)[c.service];
    const fn = (stub as unknown as Record<string, Unary>)[c.method];
    if (typeof fn !== 'function') {
      return Promise.reject(new ChatError(status.UNIMPLEMENTED, `There is no method '${c.method}'.`));
    }
    const md = new grpc.Metadata();
    if (c.authorization) md.set('authorization', c.authorization);
    if (c.idempotencyKey) md.set('idempotency-key', c.idempotencyKey);
    md.set(FORWARDED_HEADER, this.selfAddress());
    const deadline = c.deadline ?? Date.now() + DEFAULT_FORWARD_MS;
    return new Promise((resolve, reject) => {
      try {
        fn.call(stub, c.request, md, { deadline }, (err, res) => {
          if (err) reject(forwardError(err, address));
          else resolve(res);
        });
      } catch (err) {
        // A request grpc-js cannot serialize: a bug on our side, not the caller's.
        reject(err);
      }
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.channels.values()) {
      s.chat.close();
      s.cluster.close();
    }
    this.channels.clear();
  }

  private stubs(address: string): { chat: grpc.Client; cluster: grpc.Client } {
    let s = this.channels.get(address);
    if (s) return s;
    if (this.channels.size >= MAX_CHANNELS) {
      const oldest = this.channels.keys().next().value as string;
      const old = this.channels.get(oldest);
      this.channels.delete(oldest);
      old?.chat.close();
      old?.cluster.close();
    }
    const { ChatService, ClusterService } = services();
    const options: grpc.ChannelOptions = {
      // A leader that restarts must be reachable again quickly, not after grpc-js's 120 s back-off.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    };
    s = {
      chat: new ChatService(address, this.credentials, options),
      cluster: new ClusterService(address, this.credentials, options),
    };
    this.channels.set(address, s);
    return s;
  }
}

const LOST = /RST_STREAM|ECONNRESET|EPIPE|connection (dropped|closed|reset)|socket hang up|GOAWAY/i;

/** The leader's own answers keep their code and sentence; transport trouble becomes UNAVAILABLE. */
function forwardError(err: grpc.ServiceError, address: string): ChatError {
  const transport =
    (err.code === status.UNAVAILABLE && !err.metadata?.get('x-members').length) ||
    err.code === status.CANCELLED ||
    ((err.code === status.INTERNAL || err.code === status.UNKNOWN) && LOST.test(err.message));
  if (transport) {
    return new ChatError(status.UNAVAILABLE, `The leader at ${address} could not be reached; retry.`);
  }
  // A rate limit's wait travels back to the caller with the leader's answer.
  return new ChatError(err.code, err.details || err.message, retryAfterOf(err.metadata));
}
