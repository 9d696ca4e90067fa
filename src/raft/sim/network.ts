// A simulated network: one Transport per node, all messages routed through the cluster's event queue.
// Faults: random drop, random latency (which reorders), duplication, and directed link cuts, so both
// symmetric partitions and one-way (asymmetric) ones can be expressed. A cut checked at delivery time
// also drops messages already in flight when the partition starts.

import type { ClusterConfig, NodeId, RaftMessage } from '../../../machines/protocol.js';
import type { Transport } from '../interfaces.js';
import type { EventQueue } from './event-queue.js';
import type { Prng } from './prng.js';

export interface LinkFaults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice (each copy with its own latency). */
  duplicateRate: number;
  minLatencyMs: number;
  maxLatencyMs: number;
  /** Probability that a message is held back 200-2000 ms (stale messages from old terms arrive late). */
  longDelayRate?: number;
}

export const PERFECT_LINKS: LinkFaults = { dropRate: 0, duplicateRate: 0, minLatencyMs: 1, maxLatencyMs: 1 };

export type NetworkObserver = (
  what: 'send' | 'deliver' | 'drop' | 'duplicate',
  message: RaftMessage,
  why?: string,
) => void;

export class SimNetwork {
  faults: LinkFaults;
  private handlers = new Map<NodeId, (message: RaftMessage) => void>();
  /** Each attached node's peerLost handler (a crash closes the crashed node's connections). */
  private lostHandlers = new Map<NodeId, (id: NodeId) => void>();
  /** Directed cuts: "a>b" means nothing from a reaches b. */
  private cuts = new Set<string>();
  observer: NetworkObserver | null = null;
  sent = 0;
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Prng,
    faults: LinkFaults = PERFECT_LINKS,
  ) {
    this.faults = { ...faults };
  }

  /** A fresh transport for one incarnation of node `id`. */
  transport(id: NodeId): SimTransport {
    return new SimTransport(this, id);
  }

  attach(id: NodeId, handler: (message: RaftMessage) => void): void {
    this.handlers.set(id, handler);
  }

  detach(id: NodeId, handler: (message: RaftMessage) => void): void {
    if (this.handlers.get(id) !== handler) return;
    this.handlers.delete(id);
    this.lostHandlers.delete(id);
    // As on a real host, the dead node's connections close: every node it can reach hears of it after
    // one minimal latency (the hint RaftNode turns into `peerLost`; a partitioned node hears nothing).
    for (const [other, lost] of this.lostHandlers) {
      if (!this.canReach(id, other)) continue;
      this.queue.after(this.faults.minLatencyMs, 'deliver', () => {
        if (this.lostHandlers.get(other) === lost) lost(id);
      });
    }
  }

  onPeerLost(id: NodeId, handler: (peer: NodeId) => void): void {
    this.lostHandlers.set(id, handler);
  }

  /** Cut the link from `from` to `to` only (asymmetric). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Split the nodes into groups that cannot talk to each other (symmetric). */
  partition(groups: NodeId[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cuts.add(`${a}>${b}`);
      }
    }
  }

  /** Cut `id` off from everyone else, both ways. */
  isolate(id: NodeId, all: NodeId[]): void {
    for (const other of all) {
      if (other === id) continue;
      this.cuts.add(`${id}>${other}`);
      this.cuts.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cuts.clear();
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.cuts.has(`${from}>${to}`);
  }

  /** The cuts as "a>b" strings, for traces. */
  describeCuts(): string[] {
    return [...this.cuts].sort();
  }

  route(message: RaftMessage): void {
    this.sent++;
    this.observer?.('send', message);
    if (!this.canReach(message.from, message.to)) {
      this.dropped++;
      this.observer?.('drop', message, 'partition');
      return;
    }
    if (this.rng.chance(this.faults.dropRate)) {
      this.dropped++;
      this.observer?.('drop', message, 'loss');
      return;
    }
    this.schedule(message);
    if (this.rng.chance(this.faults.duplicateRate)) {
      this.observer?.('duplicate', message);
      this.schedule(message);
    }
  }

  private schedule(message: RaftMessage): void {
    const { minLatencyMs, maxLatencyMs } = this.faults;
    let latency = minLatencyMs + this.rng.float() * Math.max(0, maxLatencyMs - minLatencyMs);
    if (this.rng.chance(this.faults.longDelayRate ?? 0)) latency += 200 + this.rng.float() * 1800;
    const copy = cloneMessage(message);
    this.queue.after(latency, 'deliver', () => this.deliver(copy));
  }

  private deliver(message: RaftMessage): void {
    if (!this.canReach(message.from, message.to)) {
      this.dropped++;
      this.observer?.('drop', message, 'partition');
      return;
    }
    const handler = this.handlers.get(message.to);
    if (!handler) {
      this.dropped++;
      this.observer?.('drop', message, 'down');
      return;
    }
    this.delivered++;
    this.observer?.('deliver', message);
    handler(cloneMessage(message));
  }
}

/** A node's view of the network. Closing it (a crash or a stop) detaches the node at once. */
export class SimTransport implements Transport {
  private handler: ((message: RaftMessage) => void) | null = null;
  private closed = false;

  constructor(
    private readonly network: SimNetwork,
    readonly id: NodeId,
  ) {}

  send(message: RaftMessage): void {
    if (this.closed) return;
    if (message.from !== this.id) throw new Error(`node ${this.id} sent a message from ${message.from}`);
    this.network.route(message);
  }

  listen(handler: (message: RaftMessage) => void): void {
    if (this.closed) return;
    this.handler = handler;
    this.network.attach(this.id, handler);
  }

  setPeers(_members: ClusterConfig['members']): void {
    // Every simulated node can address every other; partitions are the network's business.
  }

  onPeerLost(handler: (id: NodeId) => void): void {
    if (!this.closed) this.network.onPeerLost(this.id, handler);
  }

  close(): void {
    this.closed = true;
    if (this.handler) this.network.detach(this.id, this.handler);
    this.handler = null;
  }
}

/** Copy a message so that neither side can change what the other holds (entries are copied too). */
export function cloneMessage(message: RaftMessage): RaftMessage {
  if (message.type === 'AppendEntries') {
    return { ...message, entries: message.entries.map((e) => ({ ...e })) };
  }
  if (message.type === 'InstallSnapshot') {
    return { ...message, config: { members: message.config.members.map((m) => ({ ...m })) } };
  }
  return { ...message };
}
