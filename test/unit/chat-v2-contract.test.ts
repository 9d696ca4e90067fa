// Contract tests of Chat v2 (API.md "Changes in v2") against a real one-member replica over gRPC:
// GetMessages (paged pure read), ReadMessages, MarkRead, EditMessage, SetTyping, their events, limits
// and error codes, and what the idempotency table keeps.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningNode, metadata, rpc, startTestNode, stubs, waitFor } from './server-fixture.js';

interface Msg {
  message_id: number;
  chat_id: string;
  sender: string;
  content: string;
  sent_at: number;
  read: boolean;
  edited_at: number;
}
interface Page {
  messages: Msg[];
  has_more: boolean;
}
interface Delivery {
  messages: Msg[];
  unread_remaining: number;
}
type Ev = Record<string, unknown> & { index: number; event: string };

let node: RunningNode;
let chat: grpc.Client;
let seq = 0;

beforeAll(async () => {
  // The contract tests write bursts of messages from one user: the per-user write limit is not theirs
  // to test (rate-limits tests are).
  node = await startTestNode({
    rateLimits: { loginFailuresPerMinute: 5, writesPerSecond: 1_000_000, writeBurst: 1_000_000 },
  });
  ({ chat } = stubs(node.address));
});

afterAll(async () => {
  chat?.close();
  await node?.stop();
});

const as = (token: string, extra: Record<string, string> = {}) =>
  metadata({ authorization: `Bearer ${token}`, ...extra });

/** Two fresh users with a chat between them; `a` and `b` are their tokens. */
async function pair(viewLimitB?: number) {
  const n = ++seq;
  const names = [`va${n}`, `vb${n}`];
  const tokens: string[] = [];
  for (const username of names) {
    expect(
      (await rpc(chat, 'Signup', { username, nickname: username, password: 'password123' })).error,
    ).toBeUndefined();
    tokens.push(
      (await rpc<{ token: string }>(chat, 'Login', { username, password: 'password123' })).response!.token,
    );
  }
  const [a, b] = tokens;
  const c = await rpc<{ chat_id: string }>(chat, 'StartChat', { username: names[1] }, as(a));
  if (viewLimitB !== undefined) {
    expect((await rpc(chat, 'UpdateSettings', { view_limit: viewLimitB }, as(b))).error).toBeUndefined();
  }
  return { a, b, nameA: names[0], nameB: names[1], chatId: c.response!.chat_id };
}

async function ok<T>(method: string, req: unknown, md: grpc.Metadata): Promise<T> {
  const r = await rpc<T>(chat, method, req, md);
  if (r.error) throw new Error(`${method} failed: ${r.error.code} ${r.error.details}`);
  return r.response!;
}

async function code(method: string, req: unknown, md: grpc.Metadata): Promise<grpc.status | undefined> {
  const r = await rpc(chat, method, req, md);
  if (r.error) expect(r.error.details).toMatch(/\.$/);
  return r.error?.code;
}

async function send(token: string, chatId: string, content: string): Promise<Msg> {
  return ok<Msg>('SendMessage', { chat_id: chatId, content }, as(token));
}

function subscribe(token: string) {
  const c = chat as unknown as Record<string, Function>;
  const call = c.Subscribe.bind(c)({ after_index: 0 }, as(token)) as grpc.ClientReadableStream<Ev>;
  const got: Ev[] = [];
  let ready = false;
  call.on('metadata', () => {
    ready = true;
  });
  call.on('data', (e: Ev) => got.push(e));
  call.on('error', () => {});
  return { got, call, ready: () => ready };
}

const contents = (p: { messages: Msg[] }) => p.messages.map((m) => m.content);

describe('GetMessages: a paged, side-effect-free read', () => {
  it('pages back with before_id over a chat with deletes in the middle; has_more at the edges', async () => {
    const { a, b, chatId } = await pair();
    const sent: Msg[] = [];
    for (let i = 1; i <= 9; i++) sent.push(await send(a, chatId, `m${i}`));
    // Delete m3, m4 and m7: the pages skip the holes and stay full.
    const gone = [sent[2], sent[3], sent[6]].map((m) => m.message_id);
    expect(await ok('DeleteMessages', { chat_id: chatId, message_ids: gone }, as(a))).toEqual({
      deleted_count: 3,
    });

    const p1 = await ok<Page>('GetMessages', { chat_id: chatId, limit: 2 }, as(a));
    expect([contents(p1), p1.has_more]).toEqual([['m8', 'm9'], true]);
    const p2 = await ok<Page>(
      'GetMessages',
      { chat_id: chatId, before_id: p1.messages[0].message_id, limit: 2 },
      as(a),
    );
    expect([contents(p2), p2.has_more]).toEqual([['m5', 'm6'], true]);
    const p3 = await ok<Page>(
      'GetMessages',
      { chat_id: chatId, before_id: p2.messages[0].message_id, limit: 2 },
      as(a),
    );
    expect([contents(p3), p3.has_more]).toEqual([['m1', 'm2'], false]);
    // Exactly the rest: has_more is false; one more below the first id: empty, false.
    const rest = await ok<Page>(
      'GetMessages',
      { chat_id: chatId, before_id: sent[2].message_id, limit: 2 },
      as(a),
    );
    expect([contents(rest), rest.has_more]).toEqual([['m1', 'm2'], false]);
    const below = await ok<Page>('GetMessages', { chat_id: chatId, before_id: sent[0].message_id }, as(a));
    expect(below).toEqual({ messages: [], has_more: false });
    // A bound on a deleted id works like any bound.
    const atHole = await ok<Page>(
      'GetMessages',
      { chat_id: chatId, before_id: sent[6].message_id, limit: 1 },
      as(a),
    );
    expect([contents(atHole), atHole.has_more]).toEqual([['m6'], true]);
    // The default page (limit 0) holds everything here, oldest first.
    const all = await ok<Page>('GetMessages', { chat_id: chatId }, as(a));
    expect([contents(all), all.has_more]).toEqual([['m1', 'm2', 'm5', 'm6', 'm8', 'm9'], false]);
    // An empty chat: no messages, no more.
    const empty = await pair();
    expect(await ok('GetMessages', { chat_id: empty.chatId }, as(empty.b))).toEqual({
      messages: [],
      has_more: false,
    });
    // Unread messages are not history for the recipient: b sees nothing until delivery.
    expect(await ok('GetMessages', { chat_id: chatId }, as(b))).toEqual({ messages: [], has_more: false });
  });

  it('shows the caller own messages and those already read, nothing unread; has_more counts only visible ones', async () => {
    const { a, b, chatId } = await pair(2);
    const a1 = await send(a, chatId, 'a1');
    await send(a, chatId, 'a2');
    await send(b, chatId, 'b1');
    await send(a, chatId, 'a3');
    const first = await ok<Page>('GetMessages', { chat_id: chatId }, as(b));
    expect(contents(first)).toEqual(['b1']);
    await ok('ReadMessages', { chat_id: chatId }, as(b)); // a1, a2 now read
    const second = await ok<Page>('GetMessages', { chat_id: chatId }, as(b));
    expect(contents(second)).toEqual(['a1', 'a2', 'b1']);
    expect(second.messages.map((m) => m.read)).toEqual([true, true, false]);
    // Below b1 only a1 and a2 are visible: a page of 2 has no more, a page of 1 has.
    const below = await ok<Page>(
      'GetMessages',
      { chat_id: chatId, before_id: second.messages[2].message_id, limit: 1 },
      as(b),
    );
    expect([contents(below), below.has_more]).toEqual([['a2'], true]);
    expect(below.messages[0].message_id).toBeGreaterThan(a1.message_id);
  });

  it('writes nothing: no log entry, no idempotency row, no read flag, even with a key', async () => {
    const { a, b, chatId } = await pair();
    await send(a, chatId, 'x');
    await waitFor(
      () => node.node.status().commitIndex === node.node.status().lastLogIndex,
      'the log to settle',
    );
    const before = node.node.status().lastLogIndex;
    const rows = () => node.store.db.prepare('SELECT COUNT(*) FROM idempotency').pluck().get();
    const rowsBefore = rows();
    const digest = node.store.stateDigest();
    for (let i = 0; i < 3; i++) {
      await ok('GetMessages', { chat_id: chatId }, as(b, { 'idempotency-key': `get-${i}` }));
      await ok('GetMessages', { chat_id: chatId }, as(a));
    }
    expect(node.node.status().lastLogIndex).toBe(before);
    expect(rows()).toBe(rowsBefore);
    expect(node.store.stateDigest()).toBe(digest);
  });

  it('limits and errors: limit 1..200 (0 = 50), NOT_FOUND outside the chat, UNAUTHENTICATED without a token', async () => {
    const { a, b, chatId } = await pair();
    for (let i = 1; i <= 52; i++) await send(a, chatId, `n${i}`);
    const dflt = await ok<Page>('GetMessages', { chat_id: chatId, limit: 0 }, as(a));
    expect([dflt.messages.length, dflt.has_more, dflt.messages[49].content]).toEqual([50, true, 'n52']);
    expect((await ok<Page>('GetMessages', { chat_id: chatId, limit: 200 }, as(a))).messages).toHaveLength(52);
    expect((await ok<Page>('GetMessages', { chat_id: chatId, limit: 1 }, as(a))).messages).toHaveLength(1);
    expect(await code('GetMessages', { chat_id: chatId, limit: 201 }, as(a))).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect(await code('GetMessages', { chat_id: chatId, limit: -1 }, as(a))).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect(await code('GetMessages', { chat_id: '' }, as(a))).toBe(grpc.status.INVALID_ARGUMENT);
    const outsider = await pair();
    expect(await code('GetMessages', { chat_id: chatId }, as(outsider.a))).toBe(grpc.status.NOT_FOUND);
    expect(await code('GetMessages', { chat_id: 'c999999' }, as(b))).toBe(grpc.status.NOT_FOUND);
    expect(await code('GetMessages', { chat_id: chatId }, metadata())).toBe(grpc.status.UNAUTHENTICATED);
  });
});

describe('ReadMessages and MarkRead', () => {
  it('view limit 1: one message per call, oldest first, unread_remaining counts down', async () => {
    const { a, b, chatId } = await pair(1);
    const sent = [await send(a, chatId, 'r1'), await send(a, chatId, 'r2'), await send(a, chatId, 'r3')];
    const seen: string[] = [];
    const left: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await ok<Delivery>('ReadMessages', { chat_id: chatId }, as(b));
      expect(d.messages).toHaveLength(1);
      expect(d.messages[0].read).toBe(true);
      seen.push(d.messages[0].content);
      left.push(d.unread_remaining);
    }
    expect([seen, left]).toEqual([
      ['r1', 'r2', 'r3'],
      [2, 1, 0],
    ]);
    expect(await ok('ReadMessages', { chat_id: chatId }, as(b))).toEqual({
      messages: [],
      unread_remaining: 0,
    });
    // The sender's own messages are never delivered to her.
    expect(await ok('ReadMessages', { chat_id: chatId }, as(a))).toEqual({
      messages: [],
      unread_remaining: 0,
    });
    expect(sent.map((m) => m.read)).toEqual([false, false, false]);
  });

  it('MarkRead marks the other side up to an id; ReadMessages then delivers only what is left', async () => {
    const { a, b, chatId } = await pair(1);
    const m = [];
    for (let i = 1; i <= 4; i++) m.push(await send(a, chatId, `k${i}`));
    const mine = await send(b, chatId, 'own');
    expect(await ok('MarkRead', { chat_id: chatId, up_to_id: m[1].message_id }, as(b))).toEqual({
      unread_remaining: 2,
    });
    const d = await ok<Delivery>('ReadMessages', { chat_id: chatId }, as(b));
    expect([contents(d), d.unread_remaining]).toEqual([['k3'], 1]);
    // Up to an id beyond everything (the largest uint64; its own message included): all read, own
    // messages untouched.
    expect(await ok('MarkRead', { chat_id: chatId, up_to_id: '18446744073709551615' }, as(b))).toEqual({
      unread_remaining: 0,
    });
    expect(mine.read).toBe(false);
    const chats = await ok<{ chats: { chat_id: string; unread_count: number }[] }>('ListChats', {}, as(b));
    expect(chats.chats.find((c) => c.chat_id === chatId)?.unread_count).toBe(0);
    // a's history: her four messages, all read now; b's own message is unread for a, so not in it.
    const aliceSide = await ok<Page>('GetMessages', { chat_id: chatId }, as(a));
    expect(contents(aliceSide)).toEqual(['k1', 'k2', 'k3', 'k4']);
    expect(aliceSide.messages.map((x) => x.read)).toEqual([true, true, true, true]);
    const forA = await ok<{ chats: { chat_id: string; unread_count: number }[] }>('ListChats', {}, as(a));
    expect(forA.chats.find((c) => c.chat_id === chatId)?.unread_count).toBe(1);
  });

  it('emit messages_read to the sender only when something was newly read', async () => {
    const { a, b, nameB, chatId } = await pair(2);
    const sa = subscribe(a);
    const sb = subscribe(b);
    await waitFor(() => sa.ready() && sb.ready(), 'the streams');
    const m = [await send(a, chatId, 'e1'), await send(a, chatId, 'e2'), await send(a, chatId, 'e3')];
    await ok('ReadMessages', { chat_id: chatId }, as(b));
    await ok('ReadMessages', { chat_id: chatId }, as(b)); // e3
    await ok('ReadMessages', { chat_id: chatId }, as(b)); // nothing left: no event
    await ok('MarkRead', { chat_id: chatId, up_to_id: m[2].message_id }, as(b)); // nothing new: no event
    const marker = await send(b, chatId, 'marker');
    await waitFor(() => sa.got.some((e) => e.event === 'message_received'), 'the marker');
    const receipts = sa.got.filter((e) => e.event === 'messages_read').map((e) => e.messages_read);
    expect(receipts).toEqual([
      { chat_id: chatId, reader: nameB, up_to_id: m[1].message_id },
      { chat_id: chatId, reader: nameB, up_to_id: m[2].message_id },
    ]);
    expect(sb.got.filter((e) => e.event === 'messages_read')).toEqual([]);
    // MarkRead of the marker by a: a receipt to b naming it.
    await ok('MarkRead', { chat_id: chatId, up_to_id: marker.message_id }, as(a));
    await waitFor(() => sb.got.some((e) => e.event === 'messages_read'), 'the receipt to b');
    expect(sb.got.find((e) => e.event === 'messages_read')?.messages_read).toEqual({
      chat_id: chatId,
      reader: expect.stringMatching(/^va/),
      up_to_id: marker.message_id,
    });
    sa.call.cancel();
    sb.call.cancel();
  });

  it('an idempotent retry returns the original reply; the row keeps ids only; a deleted message drops out', async () => {
    const { a, b, chatId } = await pair(2);
    const m = [await send(a, chatId, 'i1'), await send(a, chatId, 'i2'), await send(a, chatId, 'i3')];
    const key = as(b, { 'idempotency-key': 'read-once' });
    const first = await ok<Delivery>('ReadMessages', { chat_id: chatId }, key);
    expect([contents(first), first.unread_remaining]).toEqual([['i1', 'i2'], 1]);
    const again = await ok<Delivery>('ReadMessages', { chat_id: chatId }, key);
    expect(again).toEqual(first);
    // Nothing applied twice: i3 is still unread.
    expect(
      (await ok<Delivery>('ReadMessages', { chat_id: chatId }, as(b))).messages.map((x) => x.content),
    ).toEqual(['i3']);
    const row = node.store.db
      .prepare("SELECT result FROM idempotency WHERE key = 'read-once'")
      .pluck()
      .get() as string;
    expect(row).not.toContain('i1');
    expect(JSON.parse(row)).toEqual({
      ok: true,
      delivered: { message_ids: [m[0].message_id, m[1].message_id], unread_remaining: 1 },
    });
    // The sender deletes i1 between the attempt and a retry: the retry leaves it out.
    await ok('DeleteMessages', { chat_id: chatId, message_ids: [m[0].message_id] }, as(a));
    const late = await ok<Delivery>('ReadMessages', { chat_id: chatId }, key);
    expect([contents(late), late.unread_remaining]).toEqual([['i2'], 1]);

    const markKey = as(b, { 'idempotency-key': 'mark-once' });
    const i4 = await send(a, chatId, 'i4');
    const mark1 = await ok('MarkRead', { chat_id: chatId, up_to_id: i4.message_id - 1 }, markKey);
    await send(a, chatId, 'i5');
    const mark2 = await ok('MarkRead', { chat_id: chatId, up_to_id: i4.message_id - 1 }, markKey);
    expect(mark2).toEqual(mark1);
    expect(mark1).toEqual({ unread_remaining: 1 });
  });

  it('limits and errors', async () => {
    const { a, chatId } = await pair();
    const outsider = await pair();
    expect(await code('ReadMessages', { chat_id: chatId }, as(outsider.a))).toBe(grpc.status.NOT_FOUND);
    expect(await code('ReadMessages', { chat_id: 'c999999' }, as(a))).toBe(grpc.status.NOT_FOUND);
    expect(await code('ReadMessages', { chat_id: '' }, as(a))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await code('ReadMessages', { chat_id: chatId }, metadata())).toBe(grpc.status.UNAUTHENTICATED);
    expect(await code('MarkRead', { chat_id: chatId, up_to_id: 0 }, as(a))).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect(await code('MarkRead', { chat_id: chatId, up_to_id: 1 }, as(outsider.a))).toBe(
      grpc.status.NOT_FOUND,
    );
    expect(await code('MarkRead', { chat_id: 'c999999', up_to_id: 1 }, as(a))).toBe(grpc.status.NOT_FOUND);
    expect(await code('MarkRead', { chat_id: chatId, up_to_id: 1 }, metadata())).toBe(
      grpc.status.UNAUTHENTICATED,
    );
  });
});

describe('EditMessage', () => {
  it('the sender edits: edited_at is the entry time, the other side gets message_edited, history shows it', async () => {
    const { a, b, chatId } = await pair();
    const sb = subscribe(b);
    await waitFor(() => sb.ready(), 'the stream');
    const m = await send(a, chatId, 'tpyo');
    expect(m.edited_at).toBe(0);
    const edited = await ok<Msg>(
      'EditMessage',
      { chat_id: chatId, message_id: m.message_id, content: 'typo' },
      as(a),
    );
    expect(edited).toMatchObject({
      message_id: m.message_id,
      content: 'typo',
      sender: m.sender,
      sent_at: m.sent_at,
    });
    expect(edited.edited_at).toBeGreaterThanOrEqual(m.sent_at);
    await waitFor(() => sb.got.some((e) => e.event === 'message_edited'), 'message_edited');
    expect(sb.got.find((e) => e.event === 'message_edited')?.message_edited).toEqual(edited);
    expect((await ok<Page>('GetMessages', { chat_id: chatId }, as(a))).messages[0]).toEqual(edited);
    sb.call.cancel();
  });

  it('a non-sender gets PERMISSION_DENIED; unknown message or chat NOT_FOUND; content as SendMessage', async () => {
    const { a, b, chatId } = await pair();
    const m = await send(a, chatId, 'mine');
    const req = (over: Record<string, unknown>) => ({
      chat_id: chatId,
      message_id: m.message_id,
      content: 'x',
      ...over,
    });
    expect(await code('EditMessage', req({}), as(b))).toBe(grpc.status.PERMISSION_DENIED);
    expect(await code('EditMessage', req({ message_id: m.message_id + 1000 }), as(a))).toBe(
      grpc.status.NOT_FOUND,
    );
    expect(await code('EditMessage', req({ chat_id: 'c999999' }), as(a))).toBe(grpc.status.NOT_FOUND);
    const other = await pair();
    expect(await code('EditMessage', req({ chat_id: other.chatId }), as(other.a))).toBe(
      grpc.status.NOT_FOUND,
    );
    expect(await code('EditMessage', req({ message_id: 0 }), as(a))).toBe(grpc.status.INVALID_ARGUMENT);
    for (const content of ['', '   ', 'x'.repeat(4097)]) {
      expect(await code('EditMessage', req({ content }), as(a))).toBe(grpc.status.INVALID_ARGUMENT);
    }
    expect(await code('EditMessage', req({}), metadata())).toBe(grpc.status.UNAUTHENTICATED);
    // Nothing changed by the refusals.
    expect((await ok<Page>('GetMessages', { chat_id: chatId }, as(a))).messages[0]).toEqual(m);
    expect((await ok<Msg>('EditMessage', req({ content: '😀'.repeat(4096) }), as(a))).content).toHaveLength(
      8192,
    );
  });
});

describe('SetTyping on one replica', () => {
  it('reaches the other participant only, is never logged, and checks membership', async () => {
    const { a, b, nameA, chatId } = await pair();
    const sa = subscribe(a);
    const sb = subscribe(b);
    await waitFor(() => sa.ready() && sb.ready(), 'the streams');
    const before = node.node.status().lastLogIndex;
    expect(await ok('SetTyping', { chat_id: chatId, typing: true }, as(a))).toEqual({});
    await waitFor(() => sb.got.some((e) => e.event === 'typing'), 'typing');
    expect(sb.got.find((e) => e.event === 'typing')).toMatchObject({
      typing: { chat_id: chatId, username: nameA, typing: true },
    });
    expect(node.node.status().lastLogIndex).toBe(before);
    expect(sa.got.filter((e) => e.event === 'typing')).toEqual([]);
    const outsider = await pair();
    expect(await code('SetTyping', { chat_id: chatId, typing: true }, as(outsider.a))).toBe(
      grpc.status.NOT_FOUND,
    );
    expect(await code('SetTyping', { chat_id: '', typing: true }, as(a))).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await code('SetTyping', { chat_id: chatId, typing: true }, metadata())).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    sa.call.cancel();
    sb.call.cancel();
  });
});
