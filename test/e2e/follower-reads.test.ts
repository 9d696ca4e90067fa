// Follower reads on 5 real replicas (API.md v2: reads are served where they arrive, through ReadIndex).
//   - a follower serves reads itself: its own ChatService call counts go up, the leader's do not, and
//     its forwarded-calls counter stays at zero for reads (it counts the writes it forwards);
//   - a read right after a write acknowledged by another replica sees that write;
//   - a leader paused (SIGSTOP) while a new one is elected never serves a stale read when it resumes.
// The reads: GetMessages (history), ListChats, ListUsers, GetSettings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatCaller, grpcCode, newKey } from '../../src/bench/rpc.js';
import { type Harness, startCluster, waitFor } from './harness.js';
import { withReport } from './support/checks.js';

let h: Harness;
let caller: ChatCaller;
let token: string;
let chatId: string;
const alice = `alice${Date.now().toString(36)}`;
const bob = `bob${Date.now().toString(36)}`;

/** Scrape one replica's /metrics into "name{labels}" -> value. */
async function metrics(id: string): Promise<Map<string, number>> {
  const r = h.get(id);
  const res = await fetch(`http://${r.spec.host}:${r.spec.httpPort}/metrics`);
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const handled = (m: Map<string, number>, method: string) =>
  m.get(`qc_grpc_server_handled_total{method="${method}",code="OK"}`) ?? 0;
const forwarded = (m: Map<string, number>, method: string) =>
  m.get(`qc_chat_forwarded_total{method="${method}"}`) ?? 0;

/** A replica id that is a follower of the current leader (and the leader's status). */
async function followerAndLeader() {
  const lead = await h.waitForLeader();
  const all = await h.statuses();
  const follower = [...all.values()].find((s) => s.role === 'follower' && s.leader_id === lead.node_id);
  if (!follower) throw new Error('no follower that knows the leader');
  return { lead, follower };
}

const READS = ['GetMessages', 'ListChats', 'ListUsers', 'GetSettings'] as const;
const request = (method: (typeof READS)[number]) =>
  method === 'ListUsers'
    ? { pattern: 'bob*' }
    : method === 'GetMessages'
      ? { chat_id: chatId, limit: 10 }
      : {};

describe('follower reads (5 replicas)', () => {
  beforeAll(async () => {
    h = await startCluster({ size: 5 });
    caller = new ChatCaller(h.addresses());
    for (const name of [alice, bob]) {
      await caller.call(
        'Signup',
        { username: name, nickname: name, password: 'password123' },
        { key: newKey() },
      );
    }
    const login = await caller.call<{ token: string }>(
      'Login',
      { username: alice, password: 'password123' },
      { key: newKey() },
    );
    token = login.value.token;
    const chat = await caller.call<{ chat_id: string }>(
      'StartChat',
      { username: bob },
      { token, key: newKey() },
    );
    chatId = chat.value.chat_id;
    await h.waitForConvergence();
  }, 120_000);

  afterAll(async () => {
    caller?.close();
    await h?.destroy();
  });

  it('a follower serves reads without forwarding them (per-replica call metrics)', async () => {
    await withReport(
      () => h,
      async () => {
        const { lead, follower } = await followerAndLeader();
        const at = h.get(follower.node_id).address;
        const [f0, l0] = [await metrics(follower.node_id), await metrics(lead.node_id)];
        const n = 15;
        for (const method of READS) {
          for (let i = 0; i < n; i++) {
            const r = await caller.call(method, request(method), { token, only: at });
            expect(r.value).toBeDefined();
          }
        }
        // One write through the follower: it is forwarded, and counted as such.
        await caller.call('UpdateSettings', { view_limit: 9 }, { token, key: newKey(), only: at });
        const [f1, l1] = [await metrics(follower.node_id), await metrics(lead.node_id)];
        const still = await h.status(follower.node_id);
        expect(still?.role, 'the follower stayed a follower during the test').toBe('follower');
        for (const method of READS) {
          expect(handled(f1, method) - handled(f0, method), `${method} served by the follower`).toBe(n);
          expect(forwarded(f1, method) - forwarded(f0, method), `${method} forwarded`).toBe(0);
          expect(handled(l1, method) - handled(l0, method), `${method} calls reaching the leader`).toBe(0);
        }
        expect(forwarded(f1, 'UpdateSettings') - forwarded(f0, 'UpdateSettings')).toBe(1);
        expect(handled(l1, 'UpdateSettings') - handled(l0, 'UpdateSettings')).toBe(1);
      },
    );
  }, 60_000);

  it('a read right after a write acknowledged by another replica sees that write', async () => {
    await withReport(
      () => h,
      async () => {
        const ids = h.ids();
        let followerReads = 0;
        for (let i = 0; i < 20; i++) {
          const writer = h.get(ids[i % ids.length]).address;
          const reader = ids[(i + 1 + (i % 3)) % ids.length];
          const limit = 10 + i;
          await caller.call('UpdateSettings', { view_limit: limit }, { token, key: newKey(), only: writer });
          const s = await h.status(reader);
          if (s?.role === 'follower') followerReads++;
          const got = await caller.call<{ view_limit: number }>(
            'GetSettings',
            {},
            {
              token,
              only: h.get(reader).address,
            },
          );
          expect(got.value.view_limit, `round ${i}: read at ${reader} after the write at ${writer}`).toBe(
            limit,
          );
          // A message sent through one replica is in the history page another serves at once.
          const sent = await caller.call<{ message_id: number }>(
            'SendMessage',
            { chat_id: chatId, content: `round ${i}` },
            { token, key: newKey(), only: writer },
          );
          const page = await caller.call<{ messages: { message_id: number }[] }>(
            'GetMessages',
            { chat_id: chatId, limit: 5 },
            { token, only: h.get(reader).address },
          );
          expect(page.value.messages.map((m) => m.message_id)).toContain(sent.value.message_id);
          // A new chat started through one replica is listed at once by another.
          if (i % 5 === 0) {
            const other = `carol${i}${Date.now().toString(36)}`;
            await caller.call(
              'Signup',
              { username: other, nickname: 'c', password: 'password123' },
              {
                key: newKey(),
                only: writer,
              },
            );
            const chat = await caller.call<{ chat_id: string }>(
              'StartChat',
              { username: other },
              {
                token,
                key: newKey(),
                only: writer,
              },
            );
            const list = await caller.call<{ chats: { chat_id: string }[] }>(
              'ListChats',
              {},
              {
                token,
                only: h.get(reader).address,
              },
            );
            expect(list.value.chats.map((c) => c.chat_id)).toContain(chat.value.chat_id);
          }
        }
        // Most readers were followers (4 of 5 replicas are): the follower path is what was tested.
        expect(followerReads).toBeGreaterThanOrEqual(10);
      },
    );
  }, 120_000);

  it('a leader paused while a new one is elected never serves a stale read when it resumes', async () => {
    await withReport(
      () => h,
      async () => {
        const old = await h.waitForLeader();
        const pinned = new ChatCaller([old.address]);
        const others = new ChatCaller(
          h.addresses().filter((a) => a !== old.address),
          { totalMs: 20_000 },
        );
        try {
          const only = { only: old.address, attemptMs: 20_000 };
          await pinned.call('ListChats', {}, { token, only: old.address }); // open the connection
          await h.kill(old.node_id, 'SIGSTOP');
          const fresh = await h.waitForLeader({ not: old.node_id, timeoutMs: 15_000 });
          expect(fresh.term).toBeGreaterThan(old.term);

          // Writes acknowledged by the new leader while the old one is paused ...
          await others.call('UpdateSettings', { view_limit: 321 }, { token, key: newKey() });
          const dave = `dave${Date.now().toString(36)}`;
          await others.call(
            'Signup',
            { username: dave, nickname: 'd', password: 'password123' },
            { key: newKey() },
          );
          const chat = await others.call<{ chat_id: string }>(
            'StartChat',
            { username: dave },
            {
              token,
              key: newKey(),
            },
          );

          // ... then reads queued at the paused leader, which still believes it leads.
          const settle = <T>(p: Promise<{ value: T }>) =>
            p.then(
              (r) => ({ ok: true as const, value: r.value }),
              (err: unknown) => ({ ok: false as const, code: grpcCode(err) }),
            );
          const reads = [
            settle(pinned.call<{ view_limit: number }>('GetSettings', {}, { token, ...only })),
            settle(
              pinned.call<{ users: { username: string }[] }>(
                'ListUsers',
                { pattern: dave },
                { token, ...only },
              ),
            ),
            settle(pinned.call<{ chats: { chat_id: string }[] }>('ListChats', {}, { token, ...only })),
          ] as const;
          await h.kill(old.node_id, 'SIGCONT');
          const [settings, users, chats] = await Promise.all(reads);

          // Each read either failed (UNAVAILABLE: the client retries) or shows every acknowledged write.
          if (settings.ok) expect(settings.value.view_limit).toBe(321);
          if (users.ok) expect(users.value.users.map((u) => u.username)).toEqual([dave]);
          if (chats.ok) expect(chats.value.chats.map((c) => c.chat_id)).toContain(chat.value.chat_id);
          for (const r of [settings, users, chats]) if (!r.ok) expect(r.code).toBe(14); // UNAVAILABLE

          // Once it follows the new leader, it serves reads itself again, and they are fresh.
          await waitFor(
            async () => {
              const s = await h.status(old.node_id);
              return s?.role === 'follower' && s.term >= fresh.term && s.leader_id !== null;
            },
            { timeoutMs: 15_000, what: `${old.node_id} to follow the new leader` },
          );
          const again = await pinned.call<{ view_limit: number }>(
            'GetSettings',
            {},
            { token, only: old.address },
          );
          expect(again.value.view_limit).toBe(321);
        } finally {
          pinned.close();
          others.close();
        }
      },
    );
  }, 120_000);
});
