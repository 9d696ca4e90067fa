// The in-process network and a minimal state machine that the RaftNode unit tests share: messages
// queue on send() and are delivered by flush(), in order, so a test steps a whole cluster under one
// SimulatedClock.
import type { Entry, RaftMessage } from '../../machines/protocol.js';
import type { ApplyOutcome, StateMachine, Transport } from '../../src/raft/interfaces.js';

export class InProcessNet {
  handlers = new Map<string, (m: RaftMessage) => void>();
  queue: RaftMessage[] = [];
  /** Messages handed to send(), delivered or not. */
  sent = 0;
  /** Rewrites (or drops, with null) a message as it is delivered. */
  rewrite: (m: RaftMessage) => RaftMessage | null = (m) => m;

  transport(id: string): Transport {
    return {
      send: (m) => {
        this.sent++;
        this.queue.push(m);
      },
      listen: (h) => {
        this.handlers.set(id, h);
      },
      setPeers: () => {},
      close: () => {
        this.handlers.delete(id);
      },
    };
  }

  /** Deliver until nothing is queued (bounded). */
  flush(): void {
    for (let i = 0; i < 1000 && this.queue.length > 0; i++) {
      const q = this.queue;
      this.queue = [];
      for (const m of q) {
        const out = this.rewrite(m);
        if (out) this.handlers.get(out.to)?.(out);
      }
    }
  }
}

/** Applies anything, remembering only the last index (results are null). */
export class LastIndexMachine implements StateMachine {
  last = 0;
  appliedIndex(): number {
    return this.last;
  }
  apply(entries: Entry[]): ApplyOutcome[] {
    this.last = entries[entries.length - 1].index;
    return entries.map((e) => ({ index: e.index, term: e.term, result: null }));
  }
}
