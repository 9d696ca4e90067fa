// scrypt on a few worker threads of low CPU priority. A hash at OWASP's cost keeps a core busy for
// hundreds of milliseconds; on libuv's pool it would compete with the event loop (Raft's heartbeats and
// election timers, the fsync of each commit) at equal priority, so a login flood on a machine with few
// cores would make those timers late. Each worker thread raises its own nice value to NICE when it
// starts (on Linux the nice value is per thread, so the event loop keeps its own), then runs scryptSync
// on that thread: when both want the same core, the scheduler gives the event loop about 90% of it
// (CFS weights 1024 against 110) and wakes it ahead of the hash; libuv's pool stays free for fs work.
// Not 19: at 19 (weight 15) a hash on a machine busy with other processes can starve for tens of
// seconds, and a Signup would time out rather than be slow. How many hashes run at once is the HashQueue's business (K); this pool
// has K threads and queues anything beyond (which the HashQueue never sends).
import { Worker } from 'node:worker_threads';
import type { Derive, ScryptCost } from './password.js';

// Plain CommonJS, evaluated by the worker: no file to find at run time, in src/ (tests) or dist/.
const NICE = 10;
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const os = require('node:os');
const crypto = require('node:crypto');
let priority = 0;
try { os.setPriority(${NICE}); priority = os.getPriority(); } catch { priority = os.getPriority(); }
parentPort.postMessage({ ready: true, priority });
parentPort.on('message', (m) => {
  try {
    const key = crypto.scryptSync(m.password, Buffer.from(m.salt), m.keyLen,
      { N: m.N, r: m.r, p: m.p, maxmem: 256 * m.N * m.r + (1 << 20) });
    parentPort.postMessage({ id: m.id, key });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err) });
  }
});
`;

interface Job {
  id: number;
  password: string;
  salt: Buffer;
  keyLen: number;
  cost: ScryptCost;
  resolve: (key: Buffer) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job?: Job;
}

export class ScryptWorkers {
  private readonly slots: Slot[] = [];
  private readonly backlog: Job[] = [];
  private seq = 0;
  private closed = false;
  /** The nice value each worker thread reported when it started (NICE where the OS allows it). */
  readonly priorities: Promise<number[]>;

  constructor(readonly size: number) {
    const ready: Promise<number>[] = [];
    for (let i = 0; i < Math.max(1, size); i++) ready.push(this.spawn(i));
    this.priorities = Promise.all(ready);
  }

  /** The Derive of password.ts, on the pool. */
  readonly derive: Derive = (password, salt, keyLen, cost) =>
    new Promise<Buffer>((resolve, reject) => {
      if (this.closed) {
        reject(new Error('the password hashing workers are stopped'));
        return;
      }
      this.backlog.push({ id: ++this.seq, password, salt, keyLen, cost, resolve, reject });
      this.dispatch();
    });

  close(): void {
    this.closed = true;
    for (const s of this.slots) {
      s.job?.reject(new Error('the password hashing workers are stopped'));
      void s.worker.terminate();
    }
    for (const j of this.backlog.splice(0)) j.reject(new Error('the password hashing workers are stopped'));
  }

  private spawn(i: number): Promise<number> {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    // Idle workers must not keep the process alive; a busy one is awaited by its caller anyway.
    worker.unref();
    const slot: Slot = { worker };
    this.slots[i] = slot;
    return new Promise<number>((resolveReady) => {
      worker.on(
        'message',
        (m: { ready?: boolean; priority?: number; id?: number; key?: Uint8Array; error?: string }) => {
          if (m.ready) {
            resolveReady(m.priority ?? 0);
            return;
          }
          const job = slot.job;
          if (!job || job.id !== m.id) return;
          slot.job = undefined;
          if (m.error !== undefined || !m.key) job.reject(new Error(m.error ?? 'scrypt failed'));
          else job.resolve(Buffer.from(m.key));
          this.dispatch();
        },
      );
      const fail = (err: Error) => {
        resolveReady(0);
        slot.job?.reject(err);
        slot.job = undefined;
        // A worker that died is replaced, so one bad hash cannot shrink the pool.
        if (!this.closed) {
          void worker.terminate();
          void this.spawn(i);
          this.dispatch();
        }
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (!this.closed && this.slots[i] === slot)
          fail(new Error(`a password hashing worker exited (${code})`));
      });
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.backlog.length === 0) return;
      if (slot.job) continue;
      const job = this.backlog.shift() as Job;
      slot.job = job;
      slot.worker.postMessage({
        id: job.id,
        password: job.password,
        salt: job.salt,
        keyLen: job.keyLen,
        N: job.cost.N,
        r: job.cost.r,
        p: job.cost.p,
      });
    }
  }
}
