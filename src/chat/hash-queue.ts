// A bounded queue in front of password hashing. scrypt runs on libuv's thread pool, not on the event
// loop, but each hash holds a pool thread and a CPU core for hundreds of milliseconds (password.ts).
// Unbounded, a flood of logins would fill the pool (delaying every fs call queued behind it) and take
// every core from the event loop that runs Raft's timers. So at most `concurrency` hashes run at once,
// at most `maxWaiting` wait, and any call beyond that is shed at once with RESOURCE_EXHAUSTED and a
// `retry-after-ms` (an estimate of when the queue will have drained), and so is a call that would
// only finish past its deadline. A waiting call whose deadline passes anyway is dropped before it costs
// a hash.
import { availableParallelism } from 'node:os';
import { ChatError, exhausted, status, waitText } from './errors.js';

export interface HashQueueOptions {
  /** Hashes that may run at once (K). Default: defaultHashConcurrency(). */
  concurrency?: number;
  /** Hashes that may wait for a free slot (Q). Default: 8 per slot. */
  maxWaiting?: number;
  now?: () => number;
  /** Initial guess of one hash's duration (ms), until the first hashes are timed. */
  expectedMs?: number;
}

export interface HashQueueStats {
  running: number;
  waiting: number;
  /** Calls refused because the queue was full, since start. */
  shed: number;
  /** Calls dropped while waiting because their deadline passed, since start. */
  expired: number;
  /** Moving average of one hash's duration (ms). */
  averageMs: number;
}

/**
 * K, the hashes that run at once: one core less than the machine has, so that the event loop (Raft's
 * timers, heartbeats, the fsync of every commit) always keeps a core; and one thread less than libuv's
 * pool (UV_THREADPOOL_SIZE, default 4), so that fs work never queues behind hashes. At least 1. On the
 * 2-core development machine this is 1.
 */
export function defaultHashConcurrency(
  cores = availableParallelism(),
  poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4,
): number {
  return Math.max(1, Math.min(cores - 1, poolSize - 1));
}

interface Waiter {
  start: () => void;
  reject: (err: unknown) => void;
  deadline?: number;
}

export class HashQueue {
  readonly concurrency: number;
  readonly maxWaiting: number;
  private readonly now: () => number;
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private shed = 0;
  private expired = 0;
  private averageMs: number;

  constructor(opts: HashQueueOptions = {}) {
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? defaultHashConcurrency()));
    // Q: with K hashes of ~650 ms each, 8 per slot drain in about 5 s, the bundled client's deadline.
    this.maxWaiting = Math.max(0, Math.floor(opts.maxWaiting ?? 8 * this.concurrency));
    this.now = opts.now ?? Date.now;
    this.averageMs = opts.expectedMs ?? 650;
  }

  stats(): HashQueueStats {
    return {
      running: this.running,
      waiting: this.waiting.length,
      shed: this.shed,
      expired: this.expired,
      averageMs: Math.round(this.averageMs),
    };
  }

  /**
   * Runs `job` (one hash or one check) when a slot is free. Rejects at once with RESOURCE_EXHAUSTED when
   * K run and Q wait; with DEADLINE_EXCEEDED, without running it, when `deadline` (Unix ms) passes first.
   */
  run<T>(job: () => Promise<T>, deadline?: number): Promise<T> {
    if (this.running < this.concurrency) return this.execute(job);
    // Until what runs and waits now is done: by then a retry finds room (if the flood has stopped).
    const drainMs = Math.ceil(((this.waiting.length + this.running) / this.concurrency) * this.averageMs);
    // Full, or so long that this call would end past its deadline: say so now, not when it runs out.
    const tooLate = deadline !== undefined && this.now() + drainMs + this.averageMs > deadline;
    if (this.waiting.length >= this.maxWaiting || tooLate) {
      this.shed++;
      return Promise.reject(
        exhausted(`The server is busy checking passwords; try again in ${waitText(drainMs)}.`, drainMs),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({
        start: () => this.execute(job).then(resolve, reject),
        reject,
        deadline,
      });
    });
  }

  private async execute<T>(job: () => Promise<T>): Promise<T> {
    this.running++;
    const started = this.now();
    try {
      return await job();
    } finally {
      // An exponential moving average: the retry-after estimate follows the machine's real speed.
      this.averageMs = 0.8 * this.averageMs + 0.2 * Math.max(1, this.now() - started);
      this.running--;
      this.next();
    }
  }

  private next(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const w = this.waiting.shift() as Waiter;
      if (w.deadline !== undefined && this.now() >= w.deadline) {
        this.expired++;
        w.reject(
          new ChatError(status.DEADLINE_EXCEEDED, 'The deadline ran out while the password check waited.'),
        );
        continue;
      }
      w.start();
    }
  }
}
