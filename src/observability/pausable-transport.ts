// A transport decorator for the /cluster page's fault buttons in development mode, and the tap that
// feeds its "messages in flight".
// - pause: for N seconds the replica neither sends nor receives Raft messages, as if a network
//   partition cut it off. Its timers keep running, so what follows is what a real partition causes (its
//   pre-votes go nowhere; the others elect a leader without it; when the pause ends it catches up).
// - cut a link: messages to and from one peer are dropped here, both directions, until healed; cutting
//   links is how a page makes a partition of any shape (cut both ends for symmetry: see cluster.js).
// Only Raft traffic is cut: client RPCs and the HTTP page still reach the replica.
// The tap is null while nobody watches: then a send costs one extra test.
import type { NodeId, RaftMessage } from '../../machines/protocol.js';
import type { Transport } from '../raft/interfaces.js';

/** Sees each message this replica sends (`dropped` false) and each one it drops, out or in. */
export type TransportTap = (message: RaftMessage, dropped: boolean) => void;

export class PausableTransport implements Transport {
  private until = 0;
  private readonly cuts = new Set<NodeId>();
  /** Set by the inspector while a viewer is connected. */
  tap: TransportTap | null = null;

  constructor(
    private readonly inner: Transport,
    private readonly now: () => number = Date.now,
  ) {}

  /** Cut the replica off for `ms` (a new pause replaces a running one). */
  pause(ms: number): void {
    this.until = this.now() + ms;
  }

  resume(): void {
    this.until = 0;
  }

  get paused(): boolean {
    return this.now() < this.until;
  }

  /** Milliseconds the pause still lasts (0 when not paused). */
  remainingMs(): number {
    return Math.max(0, this.until - this.now());
  }

  /** Drop every message to and from `peer` until healed. */
  cut(peer: NodeId): void {
    this.cuts.add(peer);
  }

  /** Restore every cut link (a running pause goes on). */
  heal(): void {
    this.cuts.clear();
  }

  /** The peers whose links are cut, sorted. */
  cutPeers(): NodeId[] {
    return [...this.cuts].sort();
  }

  send(message: RaftMessage): void {
    const drop = this.paused || this.cuts.has(message.to);
    this.tap?.(message, drop);
    if (drop) return;
    this.inner.send(message);
  }

  listen(handler: Parameters<Transport['listen']>[0]): void {
    this.inner.listen((m) => {
      if (this.paused || this.cuts.has(m.from)) {
        this.tap?.(m, true);
        return;
      }
      handler(m);
    });
  }

  setPeers(members: Parameters<Transport['setPeers']>[0]): void {
    this.inner.setPeers(members);
  }

  /** Passed through, except for a peer cut off here (a cut link already says it is gone). */
  onPeerLost(handler: (id: NodeId) => void): void {
    this.inner.onPeerLost?.((id) => {
      if (!this.paused && !this.cuts.has(id)) handler(id);
    });
  }

  close(): void {
    this.inner.close();
  }
}
