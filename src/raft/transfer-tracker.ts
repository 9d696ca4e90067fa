// TransferTracker: the callers waiting for a leadership transfer (RaftNode.transferLeadership). The
// replica machine reports the end of a transfer, or its refusal, with a `transferFinished` effect that
// names no caller, so every caller waiting then gets that outcome; a caller that asks after it waits
// for the next one. When the host stops or its actor fails, every caller waiting fails.

import type { NodeId } from '../../machines/protocol.js';

export class TransferFailedError extends Error {
  constructor(readonly to: NodeId | null) {
    super(`leadership transfer${to ? ` to ${to}` : ''} did not complete`);
    this.name = 'TransferFailedError';
  }
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class TransferTracker {
  private waiting: Waiter[] = [];

  /** A caller waits for the end of the transfer it is about to ask for. */
  add(waiter: Waiter): void {
    this.waiting.push(waiter);
  }

  /** The machine's `transferFinished`: every caller waiting gets the outcome (`to`: the target asked). */
  finished(ok: boolean, to: NodeId | null): void {
    const pending = this.waiting;
    this.waiting = [];
    for (const w of pending) {
      if (ok) w.resolve();
      else w.reject(new TransferFailedError(to));
    }
  }

  /** The host stopped or failed: every caller waiting fails with `err`. */
  failAll(err: Error): void {
    const pending = this.waiting;
    this.waiting = [];
    for (const w of pending) w.reject(err);
  }
}
