// A concurrent client workload for the fault tests: K logical clients, two per chat, each sending
// messages with unique contents (and a fresh idempotency key per message, reused on its retries) and
// reading its chat now and then. It records what was ACKNOWLEDGED, checks every read against what was
// acknowledged before it started (a stale read is a violation), and at the end verifies that every
// acknowledged message is present exactly once and nothing appears twice or out of nowhere.
import type * as grpc from '@grpc/grpc-js';
import { ChatCaller, type Party, codeName, grpcCode, makeParties, newKey } from '../../../src/bench/rpc.js';
import { ChatClient } from '../../../src/client/client.js';

/** The page size of the workload's history reads (GetMessages). */
const PAGE = 200;

export interface Ack {
  client: number;
  chatId: string;
  content: string;
  messageId: number;
  /** performance.now() when the call was first sent, and when it was acknowledged. */
  startedAt: number;
  ackedAt: number;
}

interface Message {
  message_id: number;
  chat_id: string;
  sender: string;
  content: string;
}

export interface VerifyResult {
  /** Acknowledged contents not found. */
  missing: string[];
  /** Contents found more than once. */
  duplicated: string[];
  /** Contents found that were never sent. */
  unknown: string[];
  /** Acknowledged messages whose id differs from the one acknowledged. */
  idMismatch: string[];
  found: number;
}

export interface WorkloadOptions {
  /** Logical clients (rounded up to even: two per chat). */
  clients?: number;
  /** Per-attempt deadline and total budget per operation. */
  attemptMs?: number;
  totalMs?: number;
  /** One read every `readEvery` operations. */
  readEvery?: number;
  /**
   * Which client drives the load: 'caller' (src/bench/rpc.ts, the harness's own minimal retrying
   * caller) or 'chatclient' (src/client ChatClient, the library the bundled clients use).
   */
  client?: 'caller' | 'chatclient';
  /** How the clients dial the replicas (default plaintext; TLS with the cluster's CA). */
  credentials?: grpc.ChannelCredentials;
}

/** What a workload client needs: a send (retried inside with one idempotency key) and a history read
 * (GetMessages, the newest page: a pure read, no key). */
interface Driver {
  send(p: Party, content: string): Promise<Message>;
  read(p: Party): Promise<{ messages: Message[]; has_more: boolean }>;
  close(): void;
}

function callerDriver(
  addresses: string[],
  attemptMs: number,
  totalMs: number,
  credentials?: grpc.ChannelCredentials,
): Driver {
  const caller = new ChatCaller(addresses, { attemptMs, totalMs, credentials });
  return {
    send: async (p, content) =>
      (
        await caller.call<Message>(
          'SendMessage',
          { chat_id: p.chatId, content },
          { token: p.token, key: newKey() },
        )
      ).value,
    read: async (p) =>
      (
        await caller.call<{ messages: Message[]; has_more: boolean }>(
          'GetMessages',
          { chat_id: p.chatId, before_id: 0, limit: PAGE },
          { token: p.token },
        )
      ).value,
    close: () => caller.close(),
  };
}

function chatClientDriver(
  addresses: string[],
  token: string,
  attemptMs: number,
  totalMs: number,
  credentials?: grpc.ChannelCredentials,
): Driver {
  const client = new ChatClient(addresses, {
    token,
    attemptTimeoutMs: attemptMs,
    deadlineMs: totalMs,
    credentials,
  });
  return {
    send: (p, content) => client.sendMessage(p.chatId, content),
    read: (p) => client.getMessages(p.chatId, { limit: PAGE }),
    close: () => client.close(),
  };
}

/** The gRPC code name of an error from either client (ChatClientError carries a numeric code too). */
function errorName(err: unknown): string {
  return codeName(grpcCode(err));
}

export class Workload {
  readonly acked: Ack[] = [];
  /** Contents whose send failed for good: they may or may not be applied, but at most once. */
  readonly failed = new Map<string, string>();
  /** Reads that missed something acknowledged before they started. */
  readonly staleReads: string[] = [];
  /** Failure counts by gRPC code name (after retries were exhausted). */
  readonly errors = new Map<string, number>();
  private readonly sent = new Set<string>();
  private parties: Party[] = [];
  private drivers: Driver[] = [];
  private loops: Promise<void>[] = [];
  private running = false;
  private seq = 0;
  private readonly runId = Math.random().toString(36).slice(2, 8);

  constructor(
    private readonly addresses: () => string[],
    private readonly opts: WorkloadOptions = {},
  ) {}

  /** Sign up two users per chat, log them in, start the chats. */
  async setup(): Promise<void> {
    const k = Math.max(2, (this.opts.clients ?? 8) + ((this.opts.clients ?? 8) % 2));
    const admin = new ChatCaller(this.addresses(), {
      attemptMs: 3000,
      totalMs: 30_000,
      credentials: this.opts.credentials,
    });
    try {
      const pairs = await makeParties(admin, `w${this.runId}`, k / 2, { viewLimit: 1000 });
      this.parties = pairs.flat();
    } finally {
      admin.close();
    }
  }

  get clients(): number {
    return this.parties.length;
  }

  /** Client i's user and chat (clients 2j and 2j+1 share chat j). */
  party(i: number): Party {
    return this.parties[i];
  }

  /** Record a content a test sent itself in a workload chat, so verify() does not call it unknown. */
  noteSent(content: string): void {
    this.sent.add(content);
  }

  /** Start (or resume) every client's closed loop. */
  start(): void {
    if (this.running) return;
    if (this.parties.length === 0) throw new Error('Workload.setup() first');
    this.running = true;
    const attemptMs = this.opts.attemptMs ?? 2000;
    const totalMs = this.opts.totalMs ?? 20_000;
    this.drivers = this.parties.map((p) =>
      this.opts.client === 'chatclient'
        ? chatClientDriver(this.addresses(), p.token, attemptMs, totalMs, this.opts.credentials)
        : callerDriver(this.addresses(), attemptMs, totalMs, this.opts.credentials),
    );
    this.loops = this.parties.map((_, i) => this.loop(i));
  }

  /** Stop the loops after their current operation and wait for them (each operation is bounded). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const d of this.drivers) d.close();
    this.drivers = [];
    this.loops = [];
  }

  /** Resolves once `n` more sends have been acknowledged (counted from the call). */
  async waitForAcks(n: number, opts: { timeoutMs?: number; what?: string } = {}): Promise<void> {
    const target = this.acked.length + n;
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    for (let i = 0; i < 100_000 && this.acked.length < target; i++) {
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${opts.what ?? `${n} more acknowledged sends`} (${this.acked.length}/${target}; errors ${this.errorSummary()})`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * The longest time (ms) without an acknowledgement inside [fromMs, toMs] (performance.now() times),
   * counting from `fromMs` to the first acknowledgement after it: how long writes stalled.
   */
  longestAckGap(fromMs: number, toMs: number): number {
    const times = this.acked
      .map((a) => a.ackedAt)
      .filter((t) => t >= fromMs && t <= toMs)
      .sort((a, b) => a - b);
    let longest = 0;
    let prev = fromMs;
    for (const t of [...times, toMs]) {
      longest = Math.max(longest, t - prev);
      prev = t;
    }
    return longest;
  }

  errorSummary(): string {
    return JSON.stringify(Object.fromEntries(this.errors));
  }

  private async loop(i: number): Promise<void> {
    const me = this.parties[i];
    const driver = this.drivers[i];
    const readEvery = this.opts.readEvery ?? 5;
    for (let op = 0; this.running && op < 1_000_000; op++) {
      if (op % readEvery === readEvery - 1) await this.read(i, me, driver);
      else await this.send(i, me, driver);
    }
  }

  private count(err: unknown): void {
    const name = errorName(err);
    this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }

  private async send(i: number, me: Party, driver: Driver): Promise<void> {
    const content = `${this.runId}:${i}:${this.seq++}`;
    this.sent.add(content);
    const startedAt = performance.now();
    try {
      const res = await driver.send(me, content);
      this.acked.push({
        client: i,
        chatId: me.chatId,
        content,
        messageId: res.message_id,
        startedAt,
        ackedAt: performance.now(),
      });
    } catch (err) {
      this.count(err);
      this.failed.set(content, errorName(err));
    }
  }

  private async read(i: number, me: Party, driver: Driver): Promise<void> {
    const startedAt = performance.now();
    const before = this.acked.filter((a) => a.chatId === me.chatId && a.ackedAt < startedAt);
    try {
      const res = await driver.read(me);
      const seen = new Set(res.messages.map((m) => m.content));
      // Own messages are always visible to their sender (the partner's only once read, and nobody
      // reads here), so every own acknowledged message the page covers must be there: all of them
      // when there is no older page, else those from the page's oldest id on.
      const oldest = res.messages[0]?.message_id ?? 0;
      const mustSee = before.filter((a) => a.client === i && (!res.has_more || a.messageId >= oldest));
      const missed = mustSee.filter((a) => !seen.has(a.content));
      if (missed.length > 0) {
        this.staleReads.push(
          `client ${i} read of ${me.chatId} missed ${missed.length} acknowledged message(s), e.g. ${missed[0].content}`,
        );
      }
    } catch (err) {
      this.count(err);
    }
  }

  /** Read every chat from both sides (fresh callers) and check the acknowledged set against it. */
  async verify(): Promise<VerifyResult> {
    const caller = new ChatCaller(this.addresses(), {
      attemptMs: 3000,
      totalMs: 30_000,
      credentials: this.opts.credentials,
    });
    const counts = new Map<string, number>();
    const ids = new Map<string, number>();
    try {
      for (const p of this.parties) {
        // Page back through the whole history (own messages are always visible), bounded.
        let before = 0;
        for (let page = 0; page < 100_000; page++) {
          const res = await caller.call<{ messages: Message[]; has_more: boolean }>(
            'GetMessages',
            { chat_id: p.chatId, before_id: before, limit: 200 },
            { token: p.token },
          );
          for (const m of res.value.messages) {
            if (m.sender !== p.username) continue;
            counts.set(m.content, (counts.get(m.content) ?? 0) + 1);
            ids.set(m.content, m.message_id);
          }
          if (!res.value.has_more || res.value.messages.length === 0) break;
          before = res.value.messages[0].message_id;
        }
      }
    } finally {
      caller.close();
    }
    const missing = this.acked.filter((a) => !counts.has(a.content)).map((a) => a.content);
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([c]) => c);
    const unknown = [...counts.keys()].filter((c) => !this.sent.has(c));
    const idMismatch = this.acked
      .filter((a) => ids.has(a.content) && ids.get(a.content) !== a.messageId)
      .map((a) => `${a.content}: acknowledged id ${a.messageId}, stored id ${ids.get(a.content)}`);
    return {
      missing,
      duplicated,
      unknown,
      idMismatch,
      found: [...counts.values()].reduce((s, n) => s + n, 0),
    };
  }
}
