// A small retrying ChatService caller for the benchmark and the fault tests. It does what API.md asks
// of a bundled client and no more: prefer the replica named in `x-leader`, and on UNAVAILABLE, a
// deadline or a lost connection retry on the next member with a short jittered backoff, reusing the
// same idempotency key. It reports when the successful attempt started, which the failover measurement
// needs (a write sent after a kill and acknowledged proves the cluster serves again).
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { services } from '../proto.js';
import { fastReconnect, unary } from '../server/local-cluster.js';

/** Codes after which the same call may be tried again elsewhere (mutations carry a key). */
export const retryableCodes: ReadonlySet<number> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.INTERNAL, // RST_STREAM when a replica dies mid-call
  grpc.status.UNKNOWN,
  grpc.status.CANCELLED,
]);

export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export function codeName(code: number | undefined): string {
  if (code === undefined) return 'NO_CODE';
  return (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
}

export interface CallOptions {
  token?: string;
  /** Idempotency key; reused on every retry of this call. */
  key?: string;
  /** Per-attempt deadline. */
  attemptMs?: number;
  /** Give up after this long in total (the last error is thrown). */
  totalMs?: number;
  /** Only this address, no retries (for tests that target one replica). */
  only?: string;
}

export interface CallResult<T> {
  value: T;
  /** performance.now() when the successful attempt was sent. */
  attemptStartedAt: number;
  attempts: number;
}

/** One logical client: its own channels (one per address, created lazily), its own leader hint. */
export class ChatCaller {
  private readonly clients = new Map<string, grpc.Client>();
  private members: string[];
  private leaderHint: string | undefined;
  private next = 0;
  closed = false;

  constructor(
    addresses: string[],
    private readonly defaults: {
      attemptMs?: number;
      totalMs?: number;
      backoffMs?: number;
      /** How replicas are dialled (default plaintext; TLS with a CA, tls/credentials.ts). */
      credentials?: grpc.ChannelCredentials;
      /**
       * Stay on members[pinned] (ignore the x-leader hint), moving to the next member only when an
       * attempt fails: the bench's "spread" shape, where followers forward most writes.
       */
      pinned?: number;
    } = {},
  ) {
    if (addresses.length === 0) throw new Error('ChatCaller needs at least one address');
    this.members = [...addresses];
    this.next =
      defaults.pinned !== undefined
        ? defaults.pinned % this.members.length
        : Math.floor(Math.random() * this.members.length);
  }

  client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = services().ChatService;
      // A local subchannel pool gives each logical client its own connection, as separate users have.
      c = new Ctor(address, this.defaults.credentials ?? grpc.credentials.createInsecure(), {
        ...fastReconnect,
        'grpc.use_local_subchannel_pool': 1,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  private pick(): string {
    if (this.defaults.pinned !== undefined) return this.members[this.next % this.members.length];
    if (this.leaderHint && this.members.includes(this.leaderHint)) return this.leaderHint;
    const a = this.members[this.next % this.members.length];
    this.next++;
    return a;
  }

  private learn(md: grpc.Metadata): void {
    const leader = md.get('x-leader')[0];
    if (typeof leader === 'string' && leader) {
      this.leaderHint = leader;
      if (!this.members.includes(leader)) this.members.push(leader);
    }
    const members = md.get('x-members')[0];
    if (typeof members === 'string' && members) {
      for (const m of members.split(',')) if (m && !this.members.includes(m)) this.members.push(m);
    }
  }

  async call<T>(method: string, request: object, opts: CallOptions = {}): Promise<CallResult<T>> {
    const attemptMs = opts.attemptMs ?? this.defaults.attemptMs ?? 2000;
    const totalMs = opts.only ? attemptMs : (opts.totalMs ?? this.defaults.totalMs ?? 20_000);
    const backoffMs = this.defaults.backoffMs ?? 20;
    const deadline = performance.now() + totalMs;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= 1000; attempt++) {
      if (this.closed) throw Object.assign(new Error('caller closed'), { code: grpc.status.CANCELLED });
      const address = opts.only ?? this.pick();
      const md = new grpc.Metadata();
      if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
      if (opts.key) md.set('idempotency-key', opts.key);
      const startedAt = performance.now();
      const remaining = Math.max(1, Math.min(attemptMs, deadline - startedAt));
      try {
        const value = await unary<T>(this.client(address), method, request, {
          metadata: md,
          deadlineMs: remaining,
          onMetadata: (m) => this.learn(m),
        });
        return { value, attemptStartedAt: startedAt, attempts: attempt };
      } catch (err) {
        lastErr = err;
        const code = grpcCode(err);
        // A rate limit or a full password-hash queue says when to come back (retry-after-ms): wait that
        // long and try again with the same key, if it fits in the call's time.
        const after = retryAfterMs(err);
        if (code === grpc.status.RESOURCE_EXHAUSTED && after !== undefined) {
          if (performance.now() + after >= deadline) throw err;
          await new Promise((r) => setTimeout(r, after));
          continue;
        }
        if (opts.only || code === undefined || !retryableCodes.has(code)) throw err;
        // The hint led us to a dead or stale replica: forget it and rotate.
        if (this.leaderHint === address) this.leaderHint = undefined;
        if (this.defaults.pinned !== undefined) this.next++;
        if (performance.now() + backoffMs >= deadline) throw err;
        await new Promise((r) => setTimeout(r, backoffMs / 2 + Math.random() * backoffMs));
      }
    }
    throw lastErr;
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** The server's `retry-after-ms` trailer of a refused call, if it carries one. */
function retryAfterMs(err: unknown): number | undefined {
  const md = (err as { metadata?: grpc.Metadata }).metadata;
  const v = md instanceof grpc.Metadata ? md.get('retry-after-ms')[0] : undefined;
  const n = Number(v);
  return v !== undefined && Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** A fresh idempotency key (≤ 64 characters). */
export function newKey(): string {
  return randomUUID();
}

/** Percentile of a sorted array (nearest rank), 0 when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Users and chats for a load run: `pairs` chats, each between two fresh users, both logged in. */
export interface Party {
  username: string;
  token: string;
  chatId: string;
}

/** The password of every user makeParties signs up. */
export const PARTY_PASSWORD = 'password-for-bench';

export async function makeParties(
  caller: ChatCaller,
  prefix: string,
  pairs: number,
  opts: { viewLimit?: number; concurrency?: number } = {},
): Promise<Party[][]> {
  const password = PARTY_PASSWORD;
  const makeOne = async (i: number): Promise<Party[]> => {
    const names = [`${prefix}a${i}`, `${prefix}b${i}`];
    const tokens: string[] = [];
    for (const username of names) {
      await signupOnce(caller, username, password);
      const login = await caller.call<{ token: string }>('Login', { username, password }, { key: newKey() });
      tokens.push(login.value.token);
      if (opts.viewLimit) {
        await caller.call(
          'UpdateSettings',
          { view_limit: opts.viewLimit },
          { token: login.value.token, key: newKey() },
        );
      }
    }
    const chat = await caller.call<{ chat_id: string }>(
      'StartChat',
      { username: names[1] },
      { token: tokens[0], key: newKey() },
    );
    return names.map((username, j) => ({ username, token: tokens[j], chatId: chat.value.chat_id }));
  };
  const out: Party[][] = new Array(pairs);
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  let nextPair = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, pairs) }, async () => {
      for (let guard = 0; guard < pairs && nextPair < pairs; guard++) {
        const i = nextPair++;
        out[i] = await makeOne(i);
      }
    }),
  );
  return out;
}

/** Signup with a key, so a retry after a lost reply cannot fail with ALREADY_EXISTS. */
async function signupOnce(caller: ChatCaller, username: string, password: string): Promise<void> {
  await caller.call('Signup', { username, nickname: username, password }, { key: `signup-${username}` });
}
