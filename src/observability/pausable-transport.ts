// A transport decorator for the /cluster page's "pause" button in development mode: for N seconds the
// replica neither sends nor receives Raft messages, as if a network partition cut it off. Its timers
// keep running, so what follows is what a real partition causes (its pre-votes go nowhere; the others
// elect a leader without it; when the pause ends it catches up). Only Raft traffic is cut: client RPCs
// and the HTTP page still reach it.
import type { Transport } from '../raft/interfaces.js';

export class PausableTransport implements Transport {
  private until = 0;

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

  send(message: Parameters<Transport['send']>[0]): void {
    if (this.paused) return;
    this.inner.send(message);
  }

  listen(handler: Parameters<Transport['listen']>[0]): void {
    this.inner.listen((m) => {
      if (this.paused) return;
      handler(m);
    });
  }

  setPeers(members: Parameters<Transport['setPeers']>[0]): void {
    this.inner.setPeers(members);
  }

  close(): void {
    this.inner.close();
  }
}
