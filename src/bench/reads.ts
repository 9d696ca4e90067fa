// The bench's read phase: seed chats of given sizes through the API (timed apart from the measurements),
// then measure GetMessages at N clients with the clients on the leader only and spread over every
// replica, and a mixed 90% GetMessages / 10% SendMessage workload. Every read is a real one: a
// participant of the chat, with its own valid token, reads a page that must come back full.
import * as grpc from '@grpc/grpc-js';
import type { CpuPerOp } from './cpu.js';
import type { LatencySummary } from './main.js';
import { ChatCaller, type Party, codeName, grpcCode, newKey } from './rpc.js';

/** The API's default page (GetMessages.limit 0 means 50); chats smaller than it are read whole. */
export const PAGE_LIMIT = 50;
/** Share of SendMessage calls in the mixed workload. */
export const MIXED_WRITE_SHARE = 0.1;

/** A phase's figures; the CPU ones (CpuPerOp, src/bench/cpu.ts) where /proc can be read. */
export interface PhaseFigures extends Partial<CpuPerOp> {
  /** Successful operations completed inside the window. */
  ok: number;
  perSecond: number;
  elapsedMs: number;
  latency: LatencySummary;
  /** Failures by gRPC code name; SHORT_PAGE counts replies with fewer messages than asked for. */
  errors: Record<string, number>;
  /** Successful operations inside the window by kind (GetMessages, SendMessage). */
  byKind: Record<string, number>;
}

export interface SeededChat {
  size: number;
  chatId: string;
  /** The two participants; both have read everything, so every message is visible to both. */
  parties: Party[];
  /** Message ids of the chat, ascending. */
  ids: number[];
  seedMs: number;
  errors: Record<string, number>;
}

type Summarize = (latenciesMs: number[]) => LatencySummary;

function countError(errors: Record<string, number>, err: unknown): void {
  const name = codeName(grpcCode(err));
  errors[name] = (errors[name] ?? 0) + 1;
}

function retryAfterMs(err: unknown): number {
  const md = (err as { metadata?: grpc.Metadata }).metadata;
  const v = Number(md?.get?.('retry-after-ms')[0]);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 5000) : 100;
}

/**
 * Writes `size` messages into the chat of `pair` with `concurrency` SendMessage calls in flight, the two
 * participants taking turns, then has both mark everything read. A write refused by a rate limit waits
 * for its `retry-after-ms` and is sent again with the same idempotency key.
 */
export async function seedChat(
  addresses: string[],
  pair: Party[],
  size: number,
  opts: {
    concurrency: number;
    messageBytes: number;
    onProgress?: (written: number) => void;
    credentials?: grpc.ChannelCredentials;
  },
): Promise<SeededChat> {
  const t0 = performance.now();
  const errors: Record<string, number> = {};
  const ids: number[] = [];
  const callers = Array.from(
    { length: Math.max(1, Math.ceil(opts.concurrency / 8)) },
    () => new ChatCaller(addresses, { attemptMs: 5000, totalMs: 60_000, credentials: opts.credentials }),
  );
  let next = 0;
  // A seed of 100,000 messages takes minutes on a busy machine: say how far it got every 10 s.
  const progress = setInterval(() => opts.onProgress?.(ids.length), 10_000);
  const sendOne = async (i: number, caller: ChatCaller): Promise<void> => {
    const from = pair[i % 2];
    const head = `seed ${i} `;
    const content = head + 'x'.repeat(Math.max(0, opts.messageBytes - head.length));
    const key = newKey();
    for (let attempt = 0; attempt < 1000; attempt++) {
      try {
        const r = await caller.call<{ message_id: number }>(
          'SendMessage',
          { chat_id: from.chatId, content },
          { token: from.token, key },
        );
        ids.push(Number(r.value.message_id));
        return;
      } catch (err) {
        if (grpcCode(err) !== grpc.status.RESOURCE_EXHAUSTED) {
          countError(errors, err);
          return;
        }
        await new Promise((r) => setTimeout(r, retryAfterMs(err)));
      }
    }
    errors.RESOURCE_EXHAUSTED = (errors.RESOURCE_EXHAUSTED ?? 0) + 1;
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(opts.concurrency, size) }, async (_, w) => {
        const caller = callers[w % callers.length];
        for (let guard = 0; guard < size && next < size; guard++) await sendOne(next++, caller);
      }),
    );
    ids.sort((a, b) => a - b);
    const last = ids[ids.length - 1] ?? 0;
    for (const p of pair) {
      await callers[0].call(
        'MarkRead',
        { chat_id: p.chatId, up_to_id: last },
        { token: p.token, key: newKey() },
      );
    }
  } finally {
    clearInterval(progress);
    for (const c of callers) c.close();
  }
  return { size, chatId: pair[0].chatId, parties: pair, ids, seedMs: performance.now() - t0, errors };
}

/** One closed-loop client: its own connection, pinned to one replica (no retries elsewhere). */
interface Client {
  party: Party;
  address: string;
  caller: ChatCaller;
}

/** What one operation came to: a success of some kind, or a problem that is not a gRPC error. */
type Outcome = { kind: string } | { problem: string };

/** Runs `op` in a closed loop on every client for `seconds`; counts only completions inside the window. */
async function closedLoop(
  clients: Client[],
  seconds: number,
  op: (c: Client) => Promise<Outcome>,
  summarize: Summarize,
): Promise<PhaseFigures> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const done: { at: number; kind: string }[] = [];
  let running = true;
  const t0 = performance.now();
  const loops = clients.map(async (c) => {
    for (let n = 0; running && n < 100_000_000; n++) {
      const s = performance.now();
      try {
        const out = await op(c);
        if ('problem' in out) {
          errors[out.problem] = (errors[out.problem] ?? 0) + 1;
          continue;
        }
        const e = performance.now();
        latencies.push(e - s);
        done.push({ at: e, kind: out.kind });
      } catch (err) {
        countError(errors, err);
      }
    }
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const stopAt = performance.now();
  running = false;
  await Promise.all(loops);
  const byKind: Record<string, number> = {};
  let ok = 0;
  for (const d of done) {
    if (d.at > stopAt) continue;
    ok++;
    byKind[d.kind] = (byKind[d.kind] ?? 0) + 1;
  }
  const elapsedMs = stopAt - t0;
  return {
    ok,
    perSecond: Math.round((ok / (elapsedMs / 1000)) * 100) / 100,
    elapsedMs: Math.round(elapsedMs),
    latency: summarize(latencies),
    errors,
    byKind,
  };
}

function makeClients(
  parties: Party[],
  n: number,
  addresses: string[],
  credentials?: grpc.ChannelCredentials,
): Client[] {
  return Array.from({ length: n }, (_, i) => ({
    party: parties[i % parties.length],
    address: addresses[i % addresses.length],
    caller: new ChatCaller(addresses, { attemptMs: 5000, credentials }),
  }));
}

/**
 * GetMessages at `clients` closed-loop clients, each a participant of the seeded chat pinned to one of
 * `addresses` (one address: the leader only). Each read asks for a page below a random message of the
 * chat, or the latest page, and a page with fewer than the asked-for messages counts as SHORT_PAGE.
 */
export async function measureReads(
  chat: SeededChat,
  clients: number,
  addresses: string[],
  seconds: number,
  summarize: Summarize,
  credentials?: grpc.ChannelCredentials,
): Promise<PhaseFigures> {
  const limit = Math.min(PAGE_LIMIT, chat.ids.length);
  const cs = makeClients(chat.parties, clients, addresses, credentials);
  try {
    return await closedLoop(
      cs,
      seconds,
      async (c) => {
        // k messages of the chat lie below before_id; k = ids.length is the latest page (before_id 0).
        const k = limit + Math.floor(Math.random() * (chat.ids.length - limit + 1));
        const beforeId = k === chat.ids.length ? 0 : chat.ids[k];
        const r = await c.caller.call<{ messages: unknown[] }>(
          'GetMessages',
          { chat_id: chat.chatId, before_id: beforeId, limit },
          { token: c.party.token, only: c.address },
        );
        return r.value.messages.length === limit ? { kind: 'GetMessages' } : { problem: 'SHORT_PAGE' };
      },
      summarize,
    );
  } finally {
    for (const c of cs) c.caller.close();
  }
}

/**
 * The mixed workload: each of `parties` (one client each) is pinned to one of `addresses` and in a
 * closed loop sends a message to its chat (share MIXED_WRITE_SHARE) or reads the latest page of it.
 * Followers forward the writes to the leader and serve the reads themselves.
 */
export async function measureMixed(
  parties: Party[],
  addresses: string[],
  seconds: number,
  messageBytes: number,
  summarize: Summarize,
  credentials?: grpc.ChannelCredentials,
): Promise<PhaseFigures> {
  const cs = makeClients(parties, parties.length, addresses, credentials);
  let seq = 0;
  try {
    return await closedLoop(
      cs,
      seconds,
      async (c) => {
        if (Math.random() < MIXED_WRITE_SHARE) {
          const head = `mixed ${seq++} `;
          await c.caller.call(
            'SendMessage',
            { chat_id: c.party.chatId, content: head + 'x'.repeat(Math.max(0, messageBytes - head.length)) },
            { token: c.party.token, key: newKey(), only: c.address },
          );
          return { kind: 'SendMessage' };
        }
        await c.caller.call(
          'GetMessages',
          { chat_id: c.party.chatId, before_id: 0, limit: PAGE_LIMIT },
          { token: c.party.token, only: c.address },
        );
        return { kind: 'GetMessages' };
      },
      summarize,
    );
  } finally {
    for (const c of cs) c.caller.close();
  }
}
