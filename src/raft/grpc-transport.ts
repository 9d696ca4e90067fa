// The production Transport: one gRPC client per peer, batching and best-effort delivery.
//
// - send() only enqueues: it never blocks and never throws, whatever state the peer is in.
// - Everything produced for one peer in the same event-loop tick goes out as one RaftBatch (setImmediate
//   flush), and while an RPC to that peer is in flight the next batch accumulates behind it. So the batch
//   size grows with the load and messages to one peer leave in the order they were produced.
// - The queue per peer is bounded and drops its oldest messages first: when a peer is down, the newest
//   messages (highest terms, latest commit index) are the ones worth keeping. Raft tolerates the loss.
// - A failed RPC drops its batch and backs off (exponentially, capped) before the next attempt, so a
//   down peer costs a few cheap attempts per second, and a peer that comes back is reached within
//   `retryMaxMs` plus one connection attempt.

import * as grpc from '@grpc/grpc-js';
import type { ClusterConfig, NodeId, RaftMessage } from '../../machines/protocol.js';
import type { Logger } from '../logger.js';
import { services } from '../proto.js';
import { bearer } from './cluster-secret.js';
import { approxSize, encode } from './codec.js';
import type { Transport } from './interfaces.js';
import { addRaftService } from './raft-service.js';

export interface GrpcTransportOptions {
  selfId: NodeId;
  /** This replica's own address, sent with every batch so a peer that does not know us can answer. */
  selfAddress?: string;
  secret: string;
  /** Deadline of one Send RPC (default 1000 ms). A stopped (SIGSTOP) peer costs at most this. */
  deadlineMs?: number;
  /** Messages queued per peer before the oldest are dropped (default 4096). */
  maxQueue?: number;
  /** Approximate bytes per RPC; larger queues go out in several RPCs (default 1 MiB, gRPC allows 4). */
  maxBatchBytes?: number;
  /** Send RPCs in flight per peer (default 1: strict order). More pipelines on a slow link, but
   *  batches may then overtake each other; Raft tolerates that, at the cost of some retransmission. */
  maxInflight?: number;
  /** Back-off after a failed RPC: starts at retryMinMs, doubles, capped at retryMaxMs (20 / 500 ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
  logger?: Logger;
  /** Extra grpc-js channel options for the per-peer clients. */
  channelOptions?: grpc.ChannelOptions;
}

export interface TransportStats {
  /** Messages handed to a successful RPC. */
  sent: number;
  /** Messages dropped: unknown peer, queue overflow, failed RPC, closed transport. */
  dropped: number;
  rpcs: number;
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
  inflight: number;
  retry: NodeJS.Timeout | undefined;
  backoffMs: number;
  down: boolean;
}

type SendFn = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null) => void,
) => grpc.ClientUnaryCall;

/** Hints about unknown senders are capped so that nobody can grow this map without bound. */
const MAX_HINTS = 256;

export class GrpcTransport implements Transport {
  private readonly peers = new Map<NodeId, Peer>();
  private readonly hints = new Map<NodeId, string>();
  private handler: ((message: RaftMessage) => void) | undefined;
  private closed = false;
  private readonly counters: TransportStats = { sent: 0, dropped: 0, rpcs: 0, rpcErrors: 0 };
  private readonly deadlineMs: number;
  private readonly maxQueue: number;
  private readonly maxBatchBytes: number;
  private readonly maxInflight: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly metadata: grpc.Metadata;
  private selfAddress: string;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.selfAddress = opts.selfAddress ?? '';
    this.deadlineMs = opts.deadlineMs ?? 1000;
    this.maxQueue = opts.maxQueue ?? 4096;
    this.maxBatchBytes = opts.maxBatchBytes ?? 1 << 20;
    this.maxInflight = Math.max(1, opts.maxInflight ?? 1);
    this.retryMinMs = opts.retryMinMs ?? 20;
    this.retryMaxMs = opts.retryMaxMs ?? 500;
    this.metadata = new grpc.Metadata();
    this.metadata.set('authorization', bearer(opts.secret));
  }

  /** Register the RaftService on `server`, delivering inbound messages to the `listen` handler. */
  attach(server: grpc.Server): void {
    addRaftService(server, {
      secret: this.opts.secret,
      selfId: this.opts.selfId,
      deliver: (m) => this.handler?.(m),
      learnAddress: (id, address) => this.learnAddress(id, address),
      onError: (what, err) => this.opts.logger?.warn({ err }, what),
    });
  }

  listen(handler: (message: RaftMessage) => void): void {
    this.handler = handler;
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
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
    const client = new Client(address, grpc.credentials.createInsecure(), {
      // grpc-js backs off up to 120 s by default; a replica that restarts must be reachable again
      // well within an election timeout or two.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_send_message_length': 8 << 20,
      ...this.opts.channelOptions,
    });
    return {
      id,
      address,
      fromConfig,
      client,
      queue: [],
      scheduled: false,
      inflight: 0,
      retry: undefined,
      backoffMs: this.retryMinMs,
      down: false,
    };
  }

  private dropPeer(peer: Peer): void {
    if (this.peers.get(peer.id) === peer) this.peers.delete(peer.id);
    if (peer.retry) clearTimeout(peer.retry);
    peer.retry = undefined;
    this.counters.dropped += peer.queue.length;
    peer.queue = [];
    peer.client.close();
  }

  private schedule(peer: Peer): void {
    if (peer.scheduled || peer.inflight >= this.maxInflight || peer.retry) return;
    peer.scheduled = true;
    // setImmediate, not a microtask: every message the host produces while handling this event (and
    // the other I/O callbacks of this loop iteration) joins the same batch.
    setImmediate(() => {
      peer.scheduled = false;
      this.pump(peer);
    });
  }

  private pump(peer: Peer): void {
    for (let i = 0; i < this.maxInflight; i++) {
      if (this.closed || this.peers.get(peer.id) !== peer || peer.retry) return;
      if (peer.inflight >= this.maxInflight || peer.queue.length === 0) return;
      this.sendBatch(peer);
    }
  }

  private sendBatch(peer: Peer): void {
    let bytes = 0;
    let n = 0;
    while (n < peer.queue.length) {
      const size = approxSize(peer.queue[n]);
      if (n > 0 && bytes + size > this.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    const batch = peer.queue.splice(0, n);
    const request = { messages: batch.map(encode), from_address: this.selfAddress };
    peer.inflight++;
    this.counters.rpcs++;
    const sendFn = (peer.client as unknown as { Send: SendFn }).Send.bind(peer.client);
    try {
      sendFn(request, this.metadata, { deadline: Date.now() + this.deadlineMs }, (err) => {
        this.onResult(peer, batch.length, err);
      });
    } catch (err) {
      // grpc-js reports failures through the callback; this guards against a serialization bug only.
      this.onResult(peer, batch.length, err as grpc.ServiceError);
    }
  }

  private onResult(peer: Peer, count: number, err: grpc.ServiceError | null): void {
    peer.inflight--;
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    if (err) {
      this.counters.rpcErrors++;
      this.counters.dropped += count;
      // With several RPCs in flight, the first failure arms the back-off for all of them.
      if (peer.retry) return;
      if (!peer.down) {
        peer.down = true;
        const level = err.code === grpc.status.UNAUTHENTICATED ? 'error' : 'info';
        this.opts.logger?.[level](
          { peer: peer.id, address: peer.address, code: err.code },
          'peer unreachable',
        );
      }
      const wait = peer.backoffMs;
      peer.backoffMs = Math.min(peer.backoffMs * 2, this.retryMaxMs);
      peer.retry = setTimeout(() => {
        peer.retry = undefined;
        this.pump(peer);
      }, wait);
      peer.retry.unref();
      return;
    }
    this.counters.sent += count;
    if (peer.down) {
      peer.down = false;
      this.opts.logger?.info({ peer: peer.id, address: peer.address }, 'peer reachable');
    }
    peer.backoffMs = this.retryMinMs;
    this.pump(peer);
  }
}
