// Forwarding over one stream per leader (proto/forward.proto). A follower used to forward each write
// as its own unary ChatService call to the leader: a new HTTP/2 stream, headers, metadata and
// trailers on both sides, per write, and the leader paid them for 4 of every 5 writes. Here every
// call forwarded to one leader address in the same event-loop turn goes out as one ForwardBatch on a
// long-lived ForwardService.Forward stream, and the leader answers in batches on the same stream.
//
// What a call keeps, as with the unary forward: the caller's token, idempotency key and remaining
// deadline; the leader serves it exactly like a direct call, marked as forwarded (never forwarded a
// second time); its answer (or its status, with the retry wait of a rate limit) comes back as is.
// What the stream changes: if it breaks, every call waiting on it fails with UNAVAILABLE (the leader
// may or may not have served them, as when a unary call's connection drops; clients retry with the
// same idempotency key). A leader that does not know ForwardService (an older version) answers
// UNIMPLEMENTED before it served anything: its calls then go by the unary path, and so does every
// later call to that address. ClusterService calls always take the unary path.
import * as grpc from '@grpc/grpc-js';
import { ChatError, status } from '../chat/errors.js';
import { CHAT_METHODS, type ChatMethod } from '../chat/service.js';
import { MAX_IDEMPOTENCY_KEY, charCount } from '../chat/validate.js';
import { services } from '../proto.js';
import { bearer } from '../raft/cluster-secret.js';
import { guardService } from '../raft/secret-guard.js';
import { chatServiceDefinition } from './chat-handlers.js';
import type { ChatRequest } from './chat-router.js';
import type { ForwardCall, LeaderForwarder } from './forwarder.js';
import { RETRY_AFTER_HEADER, toStatus } from './metadata.js';

/** Every method path of ForwardService starts with this; all of them need the cluster secret. */
export const FORWARD_SERVICE_PREFIX = '/quorumchat.v1.ForwardService/';

/** Without a caller deadline, a forwarded call still ends (ms), as with the unary forward. */
const DEFAULT_FORWARD_MS = 10_000;
/** Streams kept open (one per leader address seen); only bounds a pathological churn. */
const MAX_LINKS = 16;
/** Approximate bytes per ForwardBatch / ForwardReplies; more go out in several messages. */
const MAX_BATCH_BYTES = 1 << 20;
/** Calls in one batch the leader accepts; more is a malformed or hostile batch. */
const MAX_CALLS = 10_000;

const METHODS: ReadonlySet<string> = new Set(CHAT_METHODS);

interface WireCall {
  id: number;
  method: string;
  request: Buffer;
  token: string;
  idempotency_key: string;
  timeout_ms: number;
}

interface WireReply {
  id: number;
  code: number;
  response?: Buffer;
  message?: string;
  retry_after_ms?: number;
}

// --- the follower's side ------------------------------------------------------------------------------

interface Pending {
  call: ForwardCall;
  method: grpc.MethodDefinition<unknown, unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

interface Link {
  address: string;
  client: grpc.Client;
  stream: grpc.ClientDuplexStream<unknown, unknown> | undefined;
  queue: WireCall[];
  scheduled: boolean;
  pending: Map<number, Pending>;
  /** The leader at this address has no ForwardService: use the unary path. */
  unary: boolean;
}

export interface ForwardStreamsOptions {
  secret: string;
  /** How leaders are dialled (plaintext by default; the replica's mutual TLS). */
  credentials?: grpc.ChannelCredentials;
  /** The unary path: ClusterService calls, and leaders without ForwardService. */
  unary: Pick<LeaderForwarder, 'call'>;
  now?: () => number;
}

type ForwardFn = (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>;

/** The follower's forwarder: `call` has LeaderForwarder's signature, so the router needs no change. */
export class ForwardStreams {
  private readonly links = new Map<string, Link>();
  private readonly metadata = new grpc.Metadata();
  private readonly now: () => number;
  private nextId = 0;
  private closed = false;
  private readonly counters = { calls: 0, batches: 0 };

  constructor(private readonly opts: ForwardStreamsOptions) {
    this.metadata.set('authorization', bearer(opts.secret));
    this.now = opts.now ?? Date.now;
  }

  call(address: string, c: ForwardCall): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(new ChatError(status.UNAVAILABLE, 'This replica is shutting down; retry.'));
    }
    if (c.service !== 'chat' || !METHODS.has(c.method)) return this.opts.unary.call(address, c);
    const link = this.link(address);
    if (link.unary) return this.opts.unary.call(address, c);
    const method = services().ChatService.service[c.method] as grpc.MethodDefinition<unknown, unknown>;
    const left = (c.deadline ?? this.now() + DEFAULT_FORWARD_MS) - this.now();
    if (left <= 0) return Promise.reject(deadlineExceeded());
    let request: Buffer;
    try {
      request = method.requestSerialize(c.request);
    } catch (err) {
      // A request we cannot serialize: a bug on our side, not the caller's.
      return Promise.reject(err);
    }
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (link.pending.delete(id)) reject(deadlineExceeded());
      }, left);
      link.pending.set(id, { call: c, method, resolve, reject, timer });
      link.queue.push({
        id,
        method: c.method,
        request,
        token: c.authorization?.replace(/^Bearer\s+/i, '') ?? '',
        idempotency_key: c.idempotencyKey ?? '',
        timeout_ms: Math.ceil(left),
      });
      this.schedule(link);
    });
  }

  /** Calls sent on streams, and the ForwardBatch messages that carried them. */
  stats(): { calls: number; batches: number } {
    return { ...this.counters };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const link of this.links.values()) this.dropLink(link);
    this.links.clear();
  }

  private link(address: string): Link {
    const existing = this.links.get(address);
    if (existing) return existing;
    if (this.links.size >= MAX_LINKS) {
      const oldest = this.links.values().next().value as Link;
      this.links.delete(oldest.address);
      this.dropLink(oldest);
    }
    const Client = services().ForwardService;
    const link: Link = {
      address,
      client: new Client(address, this.opts.credentials ?? grpc.credentials.createInsecure(), {
        // A leader that restarts must be reachable again quickly, not after grpc-js's 120 s back-off.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        // The stream has no deadline: pings notice a leader whose host vanished.
        'grpc.keepalive_time_ms': 2000,
        'grpc.keepalive_timeout_ms': 1000,
        'grpc.keepalive_permit_without_calls': 1,
      }),
      stream: undefined,
      queue: [],
      scheduled: false,
      pending: new Map(),
      unary: false,
    };
    this.links.set(address, link);
    return link;
  }

  private dropLink(link: Link): void {
    const stream = link.stream;
    link.stream = undefined;
    this.failPending(link, 'This replica is shutting down; retry.');
    stream?.cancel();
    link.client.close();
  }

  private schedule(link: Link): void {
    if (link.scheduled) return;
    link.scheduled = true;
    // setImmediate, not a microtask: every call that arrives in this loop iteration joins the batch.
    setImmediate(() => {
      link.scheduled = false;
      this.flush(link);
    });
  }

  private flush(link: Link): void {
    if (this.closed || this.links.get(link.address) !== link || link.queue.length === 0) return;
    const stream = link.stream ?? this.open(link);
    const queue = link.queue;
    link.queue = [];
    for (const calls of chunks(queue, (w) => 64 + w.request.length + w.token.length)) {
      this.counters.calls += calls.length;
      this.counters.batches++;
      try {
        stream.write({ calls });
      } catch (err) {
        // grpc-js reports failures through the stream's events; this guards against a serialization bug.
        for (const w of calls) this.settle(link, w.id)?.reject(err);
      }
    }
  }

  private open(link: Link): grpc.ClientDuplexStream<unknown, unknown> {
    const forward = (link.client as unknown as { Forward: ForwardFn }).Forward.bind(link.client);
    const stream = forward(this.metadata);
    link.stream = stream;
    stream.on('data', (msg: { replies?: WireReply[] }) => {
      for (const r of msg.replies ?? []) this.answer(link, r);
    });
    const gone = (err?: grpc.ServiceError) => {
      if (link.stream !== stream) return;
      link.stream = undefined;
      if (err?.code === status.UNIMPLEMENTED) {
        // An older leader: it served none of them. Send them (and every later call) the unary way.
        link.unary = true;
        const waiting = [...link.pending.values()];
        link.pending.clear();
        for (const p of waiting) {
          clearTimeout(p.timer);
          this.opts.unary.call(link.address, p.call).then(p.resolve, p.reject);
        }
        return;
      }
      this.failPending(link, `The leader at ${link.address} could not be reached; retry.`);
    };
    stream.on('error', (err: grpc.ServiceError) => gone(err));
    // The leader ended the stream (it is shutting down): what it did not answer gets UNAVAILABLE.
    stream.on('end', () => gone());
    return stream;
  }

  private answer(link: Link, r: WireReply): void {
    const p = this.settle(link, Number(r.id));
    if (!p) return; // timed out, or not ours
    if (r.code !== status.OK) {
      p.reject(new ChatError(r.code, r.message ?? '', r.retry_after_ms || undefined));
      return;
    }
    try {
      p.resolve(p.method.responseDeserialize(r.response ?? Buffer.alloc(0)));
    } catch (err) {
      p.reject(err);
    }
  }

  private settle(link: Link, id: number): Pending | undefined {
    const p = link.pending.get(id);
    if (!p) return undefined;
    link.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }

  private failPending(link: Link, message: string): void {
    const waiting = [...link.pending.values()];
    link.pending.clear();
    link.queue = [];
    for (const p of waiting) {
      clearTimeout(p.timer);
      p.reject(new ChatError(status.UNAVAILABLE, message));
    }
  }
}

function deadlineExceeded(): ChatError {
  return new ChatError(status.DEADLINE_EXCEEDED, 'The deadline ran out before the leader answered.');
}

/** Splits `items` into runs of at most MAX_BATCH_BYTES (by `size`), each at least one item. */
function chunks<T>(items: T[], size: (item: T) => number): T[][] {
  const out: T[][] = [];
  let run: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (run.length > 0 && bytes + n > MAX_BATCH_BYTES) {
      out.push(run);
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += n;
  }
  if (run.length > 0) out.push(run);
  return out;
}

// --- the leader's side --------------------------------------------------------------------------------

export interface ForwardServiceOptions {
  secret: string;
  /** Serves one call as a direct call would be (ChatHandlers.serve). */
  serve: (req: ChatRequest) => Promise<unknown>;
  /** Reports refused streams (for logs). */
  onError?: (what: string) => void;
  now?: () => number;
}

/** What a registered ForwardService lets its owner do. */
export interface ForwardServiceHandle {
  /** End every inbound stream, so a server shutdown need not wait for them. */
  endStreams(): void;
}

type Duplex = grpc.ServerDuplexStream<{ calls?: WireCall[] }, { replies: WireReply[] }>;

/** Registers ForwardService on `server`: every call needs the cluster secret (guardService checks it). */
export function addForwardService(server: grpc.Server, opts: ForwardServiceOptions): ForwardServiceHandle {
  const now = opts.now ?? Date.now;
  const chat = chatServiceDefinition();
  const open = new Set<Duplex>();
  const implementation: grpc.UntypedServiceImplementation = {
    Forward(call: Duplex) {
      open.add(call);
      let ended = false;
      /** The follower closed its side: end ours once every call it sent is answered. */
      let halfClosed = false;
      let running = 0;
      let replies: WireReply[] = [];
      let scheduled = false;
      const send = (r: WireReply) => {
        running--;
        if (ended) return;
        replies.push(r);
        if (scheduled) return;
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          const out = replies;
          replies = [];
          if (ended || call.cancelled) return;
          for (const run of chunks(out, (x) => 32 + (x.response?.length ?? 0) + (x.message?.length ?? 0)))
            call.write({ replies: run });
          if (halfClosed && running === 0) {
            finish();
            call.end();
          }
        });
      };
      const finish = () => {
        ended = true;
        open.delete(call);
      };
      call.on('data', (batch: { calls?: WireCall[] }) => {
        const calls = batch.calls ?? [];
        if (calls.length > MAX_CALLS) {
          opts.onError?.('a ForwardService batch was too large');
          call.emit('error', { code: status.INVALID_ARGUMENT, details: 'The batch is too large.' });
          finish();
          return;
        }
        running += calls.length;
        for (const w of calls) serveOne(w, chat, opts, now).then(send);
      });
      call.on('end', () => {
        halfClosed = true;
        if (running > 0 || scheduled) return;
        finish();
        call.end();
      });
      call.on('error', finish);
      call.on('cancelled', finish);
    },
  };
  const guarded = guardService(services().ForwardService.service, implementation, {
    secret: opts.secret,
    onRefused: (method, s) => opts.onError?.(`ForwardService ${method} refused: ${s.details}`),
  });
  server.addService(guarded.definition, guarded.implementation);
  return {
    endStreams: () => {
      for (const call of [...open]) {
        open.delete(call);
        call.end();
      }
    },
  };
}

/** One forwarded call: decode it as ChatService would, serve it, and make its reply. */
async function serveOne(
  w: WireCall,
  chat: grpc.ServiceDefinition,
  opts: ForwardServiceOptions,
  now: () => number,
): Promise<WireReply> {
  const id = Number(w.id);
  const fail = (err: unknown): WireReply => {
    const s = toStatus(err, new grpc.Metadata());
    const retry = Number(s.metadata?.get(RETRY_AFTER_HEADER)[0] ?? 0);
    return { id, code: s.code ?? status.INTERNAL, message: s.details ?? '', retry_after_ms: retry || 0 };
  };
  const method = METHODS.has(w.method) ? chat[w.method] : undefined;
  if (!method) return fail(new ChatError(status.UNIMPLEMENTED, `There is no method '${w.method}'.`));
  const key = w.idempotency_key || undefined;
  if (key !== undefined && charCount(key) > MAX_IDEMPOTENCY_KEY) {
    return fail(new ChatError(status.INVALID_ARGUMENT, 'The idempotency-key must be at most 64 characters.'));
  }
  const timeout = Number(w.timeout_ms);
  try {
    const value = await opts.serve({
      method: w.method as ChatMethod,
      request: method.requestDeserialize(w.request ?? Buffer.alloc(0)),
      token: w.token || undefined,
      idempotencyKey: key,
      deadline: timeout > 0 ? now() + timeout : undefined,
      forwarded: true,
    });
    return { id, code: status.OK, response: method.responseSerialize(value) };
  } catch (err) {
    return fail(err);
  }
}
