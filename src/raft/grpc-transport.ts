// The production Transport: one gRPC client and one long-lived RaftService.Stream per peer, batching
// and best-effort delivery.
//
// - send() only enqueues: it never blocks and never throws, whatever state the peer is in.
// - Everything produced for one peer in the same handler turn (one callback and the synchronous work
//   it triggers) goes out as one RaftBatch written on the peer's stream from a microtask, so messages
//   to one peer leave in the order they were produced. A write on an open stream costs about a third
//   of a unary call (CPU and latency). Why a microtask and not setImmediate: see schedule().
// - While the stream pushes back (its buffer is full: a slow or stopped peer), batches accumulate
//   behind it. The queue per peer is bounded and drops its oldest messages first: the newest messages
//   (highest terms, latest commit index) are the ones worth keeping. Raft tolerates the loss.
// - A stream that fails (refused, reset, keepalive timeout) loses what it carried unconfirmed, and the
//   next one opens after a back-off (exponential, capped), so a down peer costs a few cheap attempts per
//   second and a peer that comes back is reached within `retryMaxMs` plus one connection attempt.
// - A stream the peer had accepted that ends (reset, refused on reconnect, closed by the peer) is
//   reported once to the onPeerLost handler: on a kill -9 the kernel closes the peer's sockets at once,
//   so this is the earliest sign that the peer died (the replica uses it to fail over fast). Failed
//   reconnection attempts after that are not reported again.
// - relay() sends an ephemeral notice (opaque bytes under a topic) to every configured peer in one
//   unary Relay call each, outside the log and best effort: a peer with too many relays in flight
//   (slow or down) misses the notice rather than queueing it.

import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, NodeId, RaftMessage } from '../../machines/protocol.js';
import type { Logger } from '../logger.js';
import { services } from '../proto.js';
import { bearer } from './cluster-secret.js';
import { approxSize, encode } from './codec.js';
import type { Transport } from './interfaces.js';
import { type RaftServiceHandle, addRaftService } from './raft-service.js';

export interface GrpcTransportOptions {
  selfId: NodeId;
  /** This replica's own address, sent with every batch so a peer that does not know us can answer. */
  selfAddress?: string;
  secret: string;
  /** Keepalive pings on each peer's connection: a peer whose host vanished (no reset) or that is
   *  stopped is noticed within about keepaliveMs + keepaliveTimeoutMs (defaults 2000 / 1000 ms). */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  /** Messages queued per peer before the oldest are dropped (default 4096). */
  maxQueue?: number;
  /** Approximate bytes per batch; larger queues go out in several batches (default 1 MiB, gRPC allows 4). */
  maxBatchBytes?: number;
  /** Back-off after a failed stream: starts at retryMinMs, doubles, capped at retryMaxMs (20 / 500 ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
  logger?: Logger;
  /** How peers are dialled (default plaintext); with mutual TLS, this replica's certificate and the CA. */
  credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js channel options for the per-peer clients. */
  channelOptions?: grpc.ChannelOptions;
  /** Report lost connections to the onPeerLost handler (default true; false only for A/B figures). */
  reportPeerLost?: boolean;
  /** Relay calls in flight per peer before further relays to it are dropped (default 32). */
  maxRelaysInFlight?: number;
  /** Deadline of one Relay call (default 1000 ms: a later notice is of no use). */
  relayTimeoutMs?: number;
}

export interface RelayStats {
  sent: number;
  /** Not sent: the peer had too many relays in flight, or the transport is closed. */
  dropped: number;
  /** Sent but failed (unreachable, refused, timed out). */
  failed: number;
  received: number;
}

export interface TransportStats {
  /** Messages written to a stream. */
  sent: number;
  /** Messages dropped: unknown peer, queue overflow, written to a stream the peer never accepted,
   *  closed transport. */
  dropped: number;
  /** Batches written (each a RaftBatch on a stream). */
  rpcs: number;
  /** Streams that failed (refused, reset, unreachable). */
  rpcErrors: number;
}

interface Peer {
  id: NodeId;
  address: string;
  /** True when the address comes from a configuration (not from a hint of an inbound batch). */
  fromConfig: boolean;
  client: grpc.Client;
  queue: RaftMessage[];
  scheduled: boolean;
  /** The open stream, if any. */
  stream: grpc.ClientWritableStream<unknown> | undefined;
  /** The peer accepted the stream (sent its response headers after checking the secret). */
  accepted: boolean;
  /** Messages written on the stream before it was accepted: lost if it fails. */
  unconfirmed: number;
  /** The stream's buffer is full; writing resumes on 'drain'. */
  blocked: boolean;
  retry: NodeJS.Timeout | undefined;
  backoffMs: number;
  down: boolean;
  relaysInFlight: number;
}

type RelayFn = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null) => void,
) => void;

type StreamFn = (
  md: grpc.Metadata,
  cb: (err: grpc.ServiceError | null) => void,
) => grpc.ClientWritableStream<unknown>;

/** Hints about unknown senders are capped so that nobody can grow this map without bound. */
const MAX_HINTS = 256;

export class GrpcTransport implements Transport {
  private readonly peers = new Map<NodeId, Peer>();
  private readonly hints = new Map<NodeId, string>();
  private handler: ((message: RaftMessage) => void) | undefined;
  private peerLostHandler: ((id: NodeId) => void) | undefined;
  private closed = false;
  private readonly counters: TransportStats = { sent: 0, dropped: 0, rpcs: 0, rpcErrors: 0 };
  private readonly maxQueue: number;
  private readonly maxBatchBytes: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly metadata: grpc.Metadata;
  private selfAddress: string;
  private inbound: RaftServiceHandle | undefined;
  private readonly relayHandlers = new Map<string, (from: NodeId, payload: Buffer) => void>();
  private readonly relayCounters: RelayStats = { sent: 0, dropped: 0, failed: 0, received: 0 };

  constructor(private readonly opts: GrpcTransportOptions) {
    this.selfAddress = opts.selfAddress ?? '';
    this.maxQueue = opts.maxQueue ?? 4096;
    this.maxBatchBytes = opts.maxBatchBytes ?? 1 << 20;
    this.retryMinMs = opts.retryMinMs ?? 20;
    this.retryMaxMs = opts.retryMaxMs ?? 500;
    this.metadata = new grpc.Metadata();
    this.metadata.set('authorization', bearer(opts.secret));
  }

  /**
   * Register the RaftService on `server`, delivering inbound messages to the `listen` handler. The
   * service checks the secret before it decodes; build the server with `raftSecretGate(secret)` in its
   * interceptors (as grpc-server.ts does) so that a call without it is refused before its body is read.
   */
  attach(server: grpc.Server): void {
    this.inbound = addRaftService(server, {
      secret: this.opts.secret,
      selfId: this.opts.selfId,
      deliver: (m) => this.handler?.(m),
      learnAddress: (id, address) => this.learnAddress(id, address),
      onError: (what, err) => this.opts.logger?.warn({ err }, what),
      relay: (from, topic, payload) => {
        const handler = this.relayHandlers.get(topic);
        if (!handler || this.closed) return;
        this.relayCounters.received++;
        handler(from, payload);
      },
    });
  }

  /** Handle inbound relays of `topic` (one handler per topic). */
  onRelay(topic: string, handler: (from: NodeId, payload: Buffer) => void): void {
    this.relayHandlers.set(topic, handler);
  }

  /** Send `payload` under `topic` to every configured peer, best effort (see the header). */
  relay(topic: string, payload: Buffer): void {
    if (this.closed) {
      this.relayCounters.dropped++;
      return;
    }
    const max = this.opts.maxRelaysInFlight ?? 32;
    const request = { from: this.opts.selfId, topic, payload };
    for (const peer of this.peers.values()) {
      if (!peer.fromConfig) continue;
      if (peer.relaysInFlight >= max) {
        this.relayCounters.dropped++;
        continue;
      }
      peer.relaysInFlight++;
      this.relayCounters.sent++;
      const deadline = Date.now() + (this.opts.relayTimeoutMs ?? 1000);
      const call = (peer.client as unknown as { Relay: RelayFn }).Relay.bind(peer.client);
      call(request, this.metadata, { deadline }, (err) => {
        peer.relaysInFlight--;
        if (err) this.relayCounters.failed++;
      });
    }
  }

  relayStats(): RelayStats {
    return { ...this.relayCounters };
  }

  listen(handler: (message: RaftMessage) => void): void {
    this.handler = handler;
  }

  /** Told once each time a working stream to a peer ends (see the header). */
  onPeerLost(handler: (id: NodeId) => void): void {
    if (this.opts.reportPeerLost === false) return;
    this.peerLostHandler = handler;
  }

  /** Set the address sent with every batch, once it is known (a server bound to port 0 learns it late). */
  setSelfAddress(address: string): void {
    this.selfAddress = address;
  }

  /** Deliver an inbound message (for a RaftService registered elsewhere). */
  deliver(message: RaftMessage): void {
    this.handler?.(message);
  }

  send(message: RaftMessage): void {
    if (this.closed || message.to === this.opts.selfId) {
      this.counters.dropped++;
      return;
    }
    const peer = this.peerFor(message.to);
    if (!peer) {
      this.counters.dropped++;
      return;
    }
    peer.queue.push(message);
    if (peer.queue.length > this.maxQueue) {
      const excess = peer.queue.length - this.maxQueue;
      peer.queue.splice(0, excess);
      this.counters.dropped += excess;
    }
    this.schedule(peer);
  }

  setPeers(members: ClusterConfig['members']): void {
    if (this.closed) return;
    const wanted = new Map<NodeId, string>();
    for (const m of members) if (m.id !== this.opts.selfId) wanted.set(m.id, m.address);
    for (const [id, peer] of this.peers) {
      const address = wanted.get(id);
      if (address === peer.address) peer.fromConfig = true;
      else if (address !== undefined || peer.fromConfig) this.dropPeer(peer);
    }
    for (const [id, address] of wanted) {
      if (!this.peers.has(id)) this.peers.set(id, this.newPeer(id, address, true));
    }
  }

  /** Remember the address an unknown sender reported; a configuration's address always wins. */
  learnAddress(id: NodeId, address: string): void {
    if (this.closed || id === this.opts.selfId || address === '') return;
    const peer = this.peers.get(id);
    if (peer?.fromConfig) return;
    if (!this.hints.has(id) && this.hints.size >= MAX_HINTS) {
      const oldest = this.hints.keys().next().value;
      if (oldest !== undefined) this.hints.delete(oldest);
    }
    this.hints.set(id, address);
    if (peer && peer.address !== address) this.dropPeer(peer);
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  /** End the peers' streams into this replica (before a server shutdown, which would wait for them). */
  endInbound(): void {
    this.inbound?.endStreams();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endInbound();
    for (const peer of this.peers.values()) this.dropPeer(peer);
    this.hints.clear();
    this.handler = undefined;
  }

  // --- internals -------------------------------------------------------------------------------------

  private peerFor(id: NodeId): Peer | undefined {
    const existing = this.peers.get(id);
    if (existing) return existing;
    const hint = this.hints.get(id);
    if (hint === undefined) return undefined;
    const peer = this.newPeer(id, hint, false);
    this.peers.set(id, peer);
    return peer;
  }

  private newPeer(id: NodeId, address: string, fromConfig: boolean): Peer {
    const Client = services().RaftService;
    const client = new Client(address, this.opts.credentials ?? grpc.credentials.createInsecure(), {
      // grpc-js backs off up to 120 s by default; a replica that restarts must be reachable again
      // well within an election timeout or two.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_send_message_length': 8 << 20,
      // A stream has no deadline: pings are how a vanished or stopped peer is noticed.
      'grpc.keepalive_time_ms': this.opts.keepaliveMs ?? 2000,
      'grpc.keepalive_timeout_ms': this.opts.keepaliveTimeoutMs ?? 1000,
      'grpc.keepalive_permit_without_calls': 1,
      ...this.opts.channelOptions,
    });
    return {
      id,
      address,
      fromConfig,
      client,
      queue: [],
      scheduled: false,
      stream: undefined,
      accepted: false,
      unconfirmed: 0,
      blocked: false,
      retry: undefined,
      backoffMs: this.retryMinMs,
      down: false,
      relaysInFlight: 0,
    };
  }

  private dropPeer(peer: Peer): void {
    if (this.peers.get(peer.id) === peer) this.peers.delete(peer.id);
    if (peer.retry) clearTimeout(peer.retry);
    peer.retry = undefined;
    this.counters.dropped += peer.queue.length;
    peer.queue = [];
    const stream = peer.stream;
    peer.stream = undefined;
    stream?.cancel();
    peer.client.close();
  }

  private schedule(peer: Peer): void {
    if (peer.scheduled || peer.blocked || peer.retry) return;
    peer.scheduled = true;
    // A microtask, not setImmediate. A microtask still runs after the whole handler turn that produced
    // the message (the replica machine emits every effect of an event synchronously), so everything
    // one event produces for this peer is one batch, in order. What it no longer joins are the other
    // callbacks of the same loop iteration (a few more, smaller batches under load).
    // setImmediate made a leader's AppendEntries wait for the leader's own fsync: the executor's flush
    // is scheduled with setImmediate when the entries are written, which is before they are sent, so
    // it ran first and blocked the loop in the (synchronous) fsync before this pump wrote, and HTTP/2
    // then put the batch on the socket in a native immediate of the next iteration. Written from a
    // microtask, the batch reaches HTTP/2 before the flush runs, and its native immediate (which
    // Node runs before the JS immediates of an iteration) puts it on the socket before the fsync:
    // replication overlaps the leader's fsync, as ready-executor.ts intends. An acknowledgement is
    // not affected in safety: the executor hands it to send() only once its write is durable; this
    // only decides when bytes that may leave are written (docs/design/write-path.md).
    queueMicrotask(() => {
      peer.scheduled = false;
      this.pump(peer);
    });
  }

  /** Write the queue out as batches, until it is empty or the stream pushes back. */
  private pump(peer: Peer): void {
    for (let i = 0; i < 10_000; i++) {
      if (this.closed || this.peers.get(peer.id) !== peer || peer.retry || peer.blocked) return;
      if (peer.queue.length === 0) return;
      this.writeBatch(peer);
    }
  }

  private writeBatch(peer: Peer): void {
    let bytes = 0;
    let n = 0;
    while (n < peer.queue.length) {
      const size = approxSize(peer.queue[n]);
      if (n > 0 && bytes + size > this.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    const stream = peer.stream ?? this.openStream(peer);
    const batch = peer.queue.splice(0, n);
    const request = { messages: batch.map(encode), from_address: this.selfAddress };
    this.counters.rpcs++;
    this.counters.sent += batch.length;
    if (!peer.accepted) peer.unconfirmed += batch.length;
    let flowing = true;
    try {
      flowing = stream.write(request);
    } catch (err) {
      // grpc-js reports failures through the call's callback; this guards against a serialization bug.
      this.opts.logger?.error({ err, peer: peer.id }, 'writing a Raft batch failed');
    }
    if (!flowing && peer.stream === stream) {
      peer.blocked = true;
      stream.once('drain', () => {
        if (peer.stream !== stream) return;
        peer.blocked = false;
        this.pump(peer);
      });
    }
  }

  private openStream(peer: Peer): grpc.ClientWritableStream<unknown> {
    const open = (peer.client as unknown as { Stream: StreamFn }).Stream.bind(peer.client);
    const stream = open(this.metadata, (err) => this.onStreamEnd(peer, stream, err));
    peer.stream = stream;
    peer.accepted = false;
    peer.unconfirmed = 0;
    peer.blocked = false;
    stream.on('metadata', () => {
      if (peer.stream !== stream) return;
      peer.accepted = true;
      peer.unconfirmed = 0;
      peer.backoffMs = this.retryMinMs;
      if (peer.down) {
        peer.down = false;
        this.opts.logger?.info({ peer: peer.id, address: peer.address }, 'peer reachable');
      }
    });
    return stream;
  }

  private onStreamEnd(
    peer: Peer,
    stream: grpc.ClientWritableStream<unknown>,
    err: grpc.ServiceError | null,
  ): void {
    if (peer.stream !== stream) return; // replaced or cancelled by dropPeer
    peer.stream = undefined;
    peer.blocked = false;
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    if (!peer.accepted) this.counters.dropped += peer.unconfirmed;
    peer.unconfirmed = 0;
    if (peer.accepted) {
      peer.accepted = false;
      this.peerLostHandler?.(peer.id);
    }
    if (!err) {
      // The peer ended the stream cleanly (it is shutting down): open a new one for what comes next.
      this.schedule(peer);
      return;
    }
    this.counters.rpcErrors++;
    if (!peer.down) {
      peer.down = true;
      const level = err.code === grpc.status.UNAUTHENTICATED ? 'error' : 'info';
      this.opts.logger?.[level]({ peer: peer.id, address: peer.address, code: err.code }, 'peer unreachable');
    }
    const wait = peer.backoffMs;
    peer.backoffMs = Math.min(peer.backoffMs * 2, this.retryMaxMs);
    peer.retry = setTimeout(() => {
      peer.retry = undefined;
      this.pump(peer);
    }, wait);
    peer.retry.unref();
  }
}
