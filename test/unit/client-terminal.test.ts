// The terminal client driven line by line (non-TTY, as with piped stdin) against a scripted fake replica.
import { PassThrough } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChatClientOptions } from '../../src/client/client.js';
import { oneLine } from '../../src/client/printable.js';
import { runTerminal, when } from '../../src/client/terminal.js';
import { FakeServer, type UnaryScript, closedAddress, fail, ok, waitFor } from './client-fake-server.js';

const servers: FakeServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop();
});

const bob = { chat_id: 'c1', other_user: 'bob', other_nickname: 'Bob', unread_count: 2, last_message_at: 0 };
const msg = (id: number, sender: string, content: string, read = false, edited_at = 0) => ({
  message_id: id,
  chat_id: 'c1',
  sender,
  content,
  sent_at: Date.now(),
  read,
  edited_at,
});

const script: UnaryScript = (method, req) => {
  switch (method) {
    case 'Signup':
      return ok({ user: { username: req.username, nickname: req.nickname, view_limit: 6 } });
    case 'Login':
      return req.password === 'password1'
        ? ok({ token: 'T', user: { username: 'alice', nickname: 'Alice', view_limit: 6 } })
        : fail(grpc.status.UNAUTHENTICATED, 'Wrong username or password.');
    case 'ListChats':
      return ok({ chats: [bob] });
    case 'StartChat':
      return req.username === 'bob' ? ok(bob) : fail(grpc.status.NOT_FOUND, 'No such user.');
    case 'SendMessage':
      return ok(msg(11, 'alice', String(req.content)));
    case 'GetMessages':
      // Two pages of history: 3 and 4 (newest), then 1 and 2.
      return Number(req.before_id) === 0
        ? ok({ messages: [msg(3, 'bob', 'hi alice'), msg(4, 'alice', 'hi bob', true, 1)], has_more: true })
        : ok({ messages: [msg(1, 'alice', 'first'), msg(2, 'bob', 'second')], has_more: false });
    case 'ReadMessages':
      return ok({
        messages: [msg(5, 'bob', 'unread one'), msg(6, 'bob', 'unread two')],
        unread_remaining: 3,
      });
    case 'EditMessage':
      return Number(req.message_id) === 3
        ? fail(grpc.status.PERMISSION_DENIED, 'Only the sender may edit a message.')
        : ok(msg(Number(req.message_id), 'alice', String(req.content), true, Date.now()));
    case 'DeleteMessages':
      return ok({ deleted_count: (req.message_ids as unknown[]).length });
    case 'ListUsers':
      return ok({
        users: [{ username: 'bob', nickname: 'Bob', view_limit: 6 }],
        page: 1,
        total_pages: 1,
        total_count: 1,
      });
    case 'GetSettings':
      return ok({ view_limit: 6 });
    case 'UpdateSettings':
      return req.view_limit === 0
        ? fail(grpc.status.INVALID_ARGUMENT, 'view_limit must be 1 to 1000')
        : ok({ view_limit: req.view_limit });
    default:
      return ok({});
  }
};

/** Starts the terminal on piped streams; `send` writes lines, `output()` is everything printed so far. */
function session(addresses: string[], clientOptions: ChatClientOptions = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (b: Buffer) => {
    text += b.toString();
  });
  const done = runTerminal({
    addresses,
    input,
    output,
    tty: false,
    clientOptions: { random: () => 0.5, backoff: { initialMs: 1 }, ...clientOptions },
  });
  return {
    send: (...lines: string[]) => input.write(lines.map((l) => `${l}\n`).join('')),
    end: () => input.end(),
    output: () => text,
    done,
  };
}

/**
 * A fake replica whose Subscribe stream stays open, and a session on it: `push` sends an event with
 * its log index, `streaming` says whether the client has subscribed yet.
 */
async function liveSession(unary: UnaryScript) {
  let stream: grpc.ServerWritableStream<Record<string, unknown>, unknown> | undefined;
  const s = await FakeServer.start(unary, (call) => {
    call.sendMetadata(new grpc.Metadata());
    stream = call;
  });
  servers.push(s);
  const push = (index: number, ev: object) => {
    if (!stream) throw new Error('the client has not subscribed yet');
    stream.write({ index, ...ev });
  };
  return { s, t: session([s.address]), push, streaming: () => stream !== undefined };
}

/** The message lines a session printed, with the time of day as T. */
function shownMessages(output: string): string[] {
  return output
    .split('\n')
    .filter((l) => /^ {2}#\d+ /.test(l))
    .map((l) => l.replace(/ \d\d:\d\d:\d\d /, ' T '));
}

describe('terminal client (piped stdin)', () => {
  it('runs every command in order and prints results, errors and live messages', async () => {
    const s = await FakeServer.start(script, (call) => {
      call.sendMetadata(new grpc.Metadata());
      call.write({ index: 9, message_received: msg(12, 'bob', 'are you there?') });
    });
    servers.push(s);
    const t = session([s.address]);
    t.send('help', 'chats', 'signup alice password1 Alice Liddell');
    // Not in an open chat: announced, its text left to ReadMessages (the view limit holds).
    await waitFor(
      () => t.output().includes("new message #12 from bob; type 'read bob' to see it"),
      5000,
      'live message',
    );
    expect(t.output()).not.toContain('are you there?');
    t.send(
      'login alice wrong',
      'send too early',
      'users b*',
      'chats',
      'open nobody',
      'open bob',
      'older',
      'older',
      'read',
      'send hello   there',
      'edit 4 better words',
      'edit 3 not mine',
      'edit 4',
      'delete 4 #11',
      'delete x',
      'settings',
      'set view-limit 3',
      'set view-limit 0',
      'msg bob quick one',
      'bogus',
      'logout',
      'settings',
    );
    t.end();
    await expect(t.done).resolves.toBe(0);
    const lines = t.output().split('\n');
    const linesAfter = (marker: string) => lines.slice(lines.indexOf(marker) + 1);
    expect(lines).toContain(
      '  read [user]                              show the next view-limit unread messages of the open chat',
    );
    // `chats` before logging in.
    expect(
      lines.indexOf('Error: Not logged in; use login <username> <password> (or signup first).'),
    ).toBeLessThan(lines.indexOf('signed up as alice (Alice Liddell)'));
    // Sign-up logs in at once, as the web page does.
    expect(lines).toContain('signed up as alice (Alice Liddell)');
    expect(lines).toContain('logged in as alice (Alice)');
    expect(s.callsOf('Login')[0].request).toMatchObject({ username: 'alice', password: 'password1' });
    // Every error sentence starts with a capital letter, whatever the server sent.
    expect(lines).toContain('Error: Wrong username or password. (UNAUTHENTICATED)');
    expect(lines).toContain('2 unread messages from bob');
    expect(lines).toContain('Error: No chat is open; use open <user> first.');
    expect(linesAfter('Error: No chat is open; use open <user> first.').slice(0, 4)).toEqual([
      '  bob (Bob)',
      'page 1 of 1, 1 user',
      '  bob (Bob)  2 unread',
      'Error: No such user. (NOT_FOUND)',
    ]);
    // Opening: the latest page of history, then the first batch of unread messages.
    const opened = linesAfter('chat with bob (Bob)');
    expect(opened.slice(0, 7).map((l) => l.replace(/ \d\d:\d\d:\d\d /, ' T '))).toEqual([
      "  (older messages: type 'older')",
      '  #3 T bob: hi alice',
      '  #4 T alice: hi bob  (edited)  (read)',
      '  -- unread --',
      '  #5 T bob: unread one',
      '  #6 T bob: unread two',
      "3 more unread; type 'read' for the next ones",
    ]);
    // `older` pages back from the oldest message shown; at the start there is nothing more.
    expect(opened.slice(7, 10).map((l) => l.replace(/ \d\d:\d\d:\d\d /, ' T '))).toEqual([
      '  #1 T alice: first',
      '  #2 T bob: second',
      '  no older messages',
    ]);
    expect(s.callsOf('GetMessages').map((c) => Number(c.request.before_id))).toEqual([0, 3]);
    expect(s.callsOf('GetMessages')[0].idempotencyKey).toBeUndefined();
    expect(s.callsOf('ReadMessages')).toHaveLength(2);
    expect(s.callsOf('ReadMessages')[0].idempotencyKey).toBeDefined();
    expect(lines).toContain('sent #11');
    expect(lines).toContain('edited #4');
    expect(lines).toContain('Error: Only the sender may edit a message. (PERMISSION_DENIED)');
    expect(lines).toContain('Usage: edit <id> <text>');
    expect(s.callsOf('EditMessage')[0].request).toMatchObject({
      chat_id: 'c1',
      message_id: 4,
      content: 'better words',
    });
    expect(lines).toContain('deleted 2 messages');
    expect(lines).toContain('Usage: delete <id> [id...]  (message ids as shown)');
    expect(lines).toContain('view-limit: 6');
    expect(lines).toContain('view-limit set to 3');
    expect(lines).toContain('Error: View_limit must be 1 to 1000. (INVALID_ARGUMENT)');
    expect(lines).toContain('sent #11 to bob');
    expect(lines).toContain("Unknown command 'bogus'; type 'help' for the list.");
    expect(lines).toContain('logged out alice');
    expect(lines.at(-2)).toBe('Error: Not logged in; use login <username> <password> (or signup first).');
    // What the server saw: the content kept its inner spaces, the ids were parsed, the token was sent.
    expect(s.callsOf('SendMessage')[0].request).toMatchObject({ chat_id: 'c1', content: 'hello   there' });
    expect(s.callsOf('DeleteMessages')[0].request).toMatchObject({ chat_id: 'c1', message_ids: [4, 11] });
    expect(s.callsOf('Logout')[0].authorization).toBe('Bearer T');
    expect(s.callsOf('Subscribe')).toHaveLength(1);
  });

  it('prints a one-line notice when it has to move to another replica', async () => {
    const down = await closedAddress();
    const s = await FakeServer.start(script, (call) => call.sendMetadata(new grpc.Metadata()));
    servers.push(s);
    const t = session([down, s.address]);
    t.send('login alice password1', 'chats');
    t.end();
    await expect(t.done).resolves.toBe(0);
    const lines = t.output().split('\n');
    expect(lines.filter((l) => l.startsWith('(reconnected to'))).toEqual([`(reconnected to ${s.address})`]);
    expect(lines).toContain('logged in as alice (Alice)');
    expect(lines.filter((l) => l.startsWith('Error'))).toEqual([]);
  });

  it('shows live messages in the open chat and marks them read; read ticks, edits, typing; neutralises control characters', async () => {
    const { s, t, push, streaming } = await liveSession((method, req, server) =>
      method === 'ListChats'
        ? ok({ chats: [{ ...bob, unread_count: 0 }] })
        : method === 'ReadMessages'
          ? ok({ messages: [], unread_remaining: 0 })
          : method === 'GetMessages'
            ? ok({ messages: [], has_more: false })
            : script(method, req, server),
    );
    t.send('login alice password1', 'open bob');
    await waitFor(() => t.output().includes('  no unread messages') && streaming(), 5000, 'open chat');
    push(20, { message_received: msg(21, 'bob', 'live \u001b[2Jhello\rthere') });
    await waitFor(() => s.callsOf('MarkRead').length === 1, 5000, 'MarkRead');
    expect(s.callsOf('MarkRead')[0].request).toMatchObject({ chat_id: 'c1', up_to_id: 21 });
    expect(s.callsOf('MarkRead')[0].idempotencyKey).toBeDefined();
    push(21, { messages_read: { chat_id: 'c1', reader: 'bob', up_to_id: 11 } });
    push(22, { message_edited: msg(21, 'bob', 'fixed\u0007', false, 5) });
    // Typing events carry the replica's applied index when sent: not dropped as replays.
    push(22, { typing: { chat_id: 'c1', username: 'bob', typing: true } });
    push(22, { typing: { chat_id: 'c1', username: 'bob', typing: true } });
    await waitFor(() => t.output().includes('bob is typing…'), 5000, 'typing');
    t.end();
    await expect(t.done).resolves.toBe(0);
    const lines = t.output().split('\n');
    const live = lines.find((l) => l.includes('bob: live'));
    // ESC, CR and BEL cannot reach the terminal.
    expect(live).toMatch(/^ {2}#21 \d\d:\d\d:\d\d bob: live \^\[\[2Jhello\^Mthere$/);
    expect(lines).toContain('bob read your messages up to #11');
    expect(lines).toContain('bob edited #21: fixed^G');
    expect(lines.filter((l) => l === 'bob is typing…')).toHaveLength(1);
    // Nothing but the line breaks: no control character got through.
    expect([...t.output()].filter((c) => c !== '\n' && (c < ' ' || c === '\u007f'))).toEqual([]);
  });

  it('in a chat opened with nothing unread, a live message is delivered, not marked read up to its id', async () => {
    // The chat said 0 unread when StartChat applied, but messages may have come since (here #20, whose
    // event this client saw before the chat was open). MarkRead(21) would mark #20 read unseen.
    const { s, t, push, streaming } = await liveSession((method, req, server) =>
      method === 'StartChat'
        ? ok({ ...bob, unread_count: 0 })
        : method === 'GetMessages'
          ? ok({ messages: [], has_more: false })
          : method === 'ReadMessages'
            ? ok({
                messages: [msg(20, 'bob', 'sent before'), msg(21, 'bob', 'sent after')],
                unread_remaining: 0,
              })
            : script(method, req, server),
    );
    t.send('login alice password1', 'open bob');
    await waitFor(() => t.output().includes('  no messages yet') && streaming(), 5000, 'open chat');
    expect(s.callsOf('ReadMessages')).toHaveLength(0);
    push(30, { message_received: msg(21, 'bob', 'sent after') });
    await waitFor(() => t.output().includes('bob: sent after'), 5000, 'the delivery');
    expect(s.callsOf('ReadMessages')).toHaveLength(1);
    expect(s.callsOf('MarkRead')).toHaveLength(0);
    // Now the count is known to be 0: the next live message shows at once and is marked read.
    push(31, { message_received: msg(22, 'bob', 'and now') });
    await waitFor(() => s.callsOf('MarkRead').length === 1, 5000, 'MarkRead');
    expect(s.callsOf('MarkRead')[0].request).toMatchObject({ chat_id: 'c1', up_to_id: 22 });
    t.end();
    await expect(t.done).resolves.toBe(0);
    expect(shownMessages(t.output())).toEqual([
      '  #20 T bob: sent before',
      '  #21 T bob: sent after',
      '  #22 T bob: and now',
    ]);
    expect(s.callsOf('ReadMessages')).toHaveLength(1);
  });

  it('a live message during a delivery waits for it, and is delivered by the next one', async () => {
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const { s, t, push, streaming } = await liveSession((method, req, server) => {
      if (method === 'GetMessages') return ok({ messages: [], has_more: false });
      if (method !== 'ReadMessages') return script(method, req, server);
      return server.callsOf('ReadMessages').length === 1
        ? {
            response: { messages: [msg(5, 'bob', 'one'), msg(6, 'bob', 'two')], unread_remaining: 0 },
            after: held,
          }
        : ok({ messages: [msg(7, 'bob', 'three')], unread_remaining: 0 });
    });
    // StartChat says 2 unread: opening delivers, and that delivery is held in flight.
    t.send('login alice password1', 'open bob');
    await waitFor(() => s.callsOf('ReadMessages').length === 1 && streaming(), 5000, 'the delivery');
    push(30, { message_received: msg(7, 'bob', 'three') });
    // Events are handled in order: once the typing line is out, #7 has been seen (and passed over).
    push(30, { typing: { chat_id: 'c1', username: 'bob', typing: true } });
    await waitFor(() => t.output().includes('bob is typing…'), 5000, 'typing');
    expect(t.output()).not.toContain('three');
    release();
    await waitFor(() => t.output().includes('bob: three'), 5000, 'the second delivery');
    t.end();
    await expect(t.done).resolves.toBe(0);
    expect(shownMessages(t.output())).toEqual(['  #5 T bob: one', '  #6 T bob: two', '  #7 T bob: three']);
    expect(s.callsOf('ReadMessages')).toHaveLength(2);
    expect(s.callsOf('MarkRead')).toHaveLength(0);
  });

  it('says "reconnected" only once a call succeeds again, not when a stream merely opens', async () => {
    let streams = 0;
    let serving = true;
    const s = await FakeServer.start(
      (method, req, server) =>
        method === 'ListChats' && !serving
          ? fail(grpc.status.UNAVAILABLE, 'No leader is known right now; retry.')
          : script(method, req, server),
      (call) => {
        streams++;
        call.sendMetadata(new grpc.Metadata());
        // The first stream breaks at once; the next ones open (the replica is up, the cluster is not).
        if (streams === 1)
          setTimeout(() => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'Gone.' }), 50);
      },
    );
    servers.push(s);
    const t = session([s.address], { deadlineMs: 600 });
    t.send('login alice password1');
    await waitFor(() => t.output().includes('logged in as alice'), 10_000, 'login');
    serving = false;
    await waitFor(() => t.output().includes(`(lost the connection to ${s.address}; retrying)`), 5000, 'lost');
    await waitFor(() => streams >= 2 && s.callsOf('ListChats').length >= 3, 10_000, 'probes');
    // A command that makes no call, or whose call fails, proves nothing either.
    t.send('help', 'chats');
    // It fails as UNAVAILABLE, or as DEADLINE_EXCEEDED when its last attempt was still waiting for the
    // channel to reconnect as the 600 ms deadline ran out: either way, no call went through.
    await waitFor(() => /\((UNAVAILABLE|DEADLINE_EXCEEDED)\)/.test(t.output()), 10_000, 'chats to fail');
    expect(t.output()).not.toContain('reconnected');
    serving = true;
    await waitFor(() => t.output().includes(`(reconnected to ${s.address})`), 5000, 'reconnected');
    t.end();
    await expect(t.done).resolves.toBe(0);
    expect(
      t
        .output()
        .split('\n')
        .filter((l) => l.startsWith('(')),
    ).toEqual([`(lost the connection to ${s.address}; retrying)`, `(reconnected to ${s.address})`]);
  });

  it('on a terminal, tells the other side while the user types a message, at most every few seconds', async () => {
    const s = await FakeServer.start(
      (method, req, server) =>
        method === 'ReadMessages'
          ? ok({ messages: [], unread_remaining: 0 })
          : method === 'GetMessages'
            ? ok({ messages: [], has_more: false })
            : script(method, req, server),
      (call) => call.sendMetadata(new grpc.Metadata()),
    );
    servers.push(s);
    const input = new PassThrough();
    const output = new PassThrough();
    output.resume();
    const done = runTerminal({ addresses: [s.address], input, output, tty: true });
    input.write('login alice password1\nopen bob\n');
    await waitFor(() => s.callsOf('ReadMessages').length === 1, 5000, 'open');
    for (const ch of 'send hello') input.write(ch);
    await waitFor(() => s.callsOf('SetTyping').length === 1, 5000, 'SetTyping(true)');
    expect(s.callsOf('SetTyping')[0].request).toMatchObject({ chat_id: 'c1', typing: true });
    input.write('\n');
    await waitFor(() => s.callsOf('SendMessage').length === 1, 5000, 'send');
    // Many keys, one SetTyping(true); sending ends it.
    await waitFor(() => s.callsOf('SetTyping').length === 2, 5000, 'SetTyping(false)');
    expect(s.callsOf('SetTyping').map((c) => c.request.typing)).toEqual([true, false]);
    input.end();
    await expect(done).resolves.toBe(0);
  });

  it('shows the date with the time for messages of an earlier day', () => {
    const now = new Date(2026, 11, 2, 9, 30, 0).getTime();
    expect(when(new Date(2026, 11, 2, 8, 5, 7).getTime(), now)).toBe('08:05:07');
    expect(when(new Date(2026, 10, 30, 23, 59, 1).getTime(), now)).toBe('2026-11-30 23:59:01');
    expect(oneLine('a\u001b]0;x\u0007b\nc\u009bd')).toBe('a^[]0;x^Gb^Jc\\x9bd');
  });

  it('neutralises control characters in what other users wrote (old data from before the server refused them)', async () => {
    const forged = '\x1b[2J\x1b[Hhi\r\n  #99 00:00:00 alice: forged';
    const live = 'live\x1b]0;t\x07\r\nalice: forged live';
    const evil: UnaryScript = (method, req, server) => {
      switch (method) {
        case 'ListChats':
          return ok({ chats: [{ ...bob, other_nickname: '\x1b]0;pwned\x07Bob' }] });
        case 'StartChat':
          return ok({ ...bob, other_nickname: 'Bob\rMallory' });
        case 'ListUsers':
          return ok({
            users: [{ username: 'bob', nickname: '\x1b[31mred\nalice (Alice)', view_limit: 6 }],
            page: 1,
            total_pages: 1,
            total_count: 1,
          });
        case 'GetMessages':
          return ok({
            messages: [msg(3, 'bob', forged), msg(5, 'bob', 'c1\x9b2J and\ttab')],
            unread_remaining: 0,
          });
        case 'ReadMessages':
          return ok({ messages: [msg(12, 'bob', live)], unread_remaining: 0 });
        default:
          return script(method, req, server);
      }
    };
    const s = await FakeServer.start(evil, (call) => {
      call.sendMetadata(new grpc.Metadata());
      call.write({ index: 9, message_received: msg(12, 'bob', live) });
    });
    servers.push(s);
    const t = session([s.address]);
    t.send('login alice password1');
    await waitFor(() => t.output().includes('new message #12 from bob'), 5000, 'live message');
    t.send('users', 'chats', 'open bob');
    t.end();
    await expect(t.done).resolves.toBe(0);
    const out = t.output();
    // Nothing that a terminal acts on reaches it: no ESC, CR, BEL or C1 control, anywhere.
    expect([...out].filter((ch) => /\p{Cc}/u.test(ch) && ch !== '\n' && ch !== '\t')).toEqual([]);
    const lines = out.split('\n');
    // The forged lines exist only behind the continuation gutter, never as lines of their own.
    expect(lines.filter((l) => /alice: forged/.test(l)).sort()).toEqual([
      '  |   #99 00:00:00 alice: forged',
      '  | alice: forged live',
    ]);
    expect(lines.filter((l) => /^(\s*#\d+ |new message )/.test(l) && l.includes('alice'))).toEqual([]);
    // Visible, harmless forms instead.
    expect(lines.filter((l) => / bob: live\^\[\]0;t\^G\^M$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => / bob: \^\[\[2J\^\[\[Hhi\^M$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => / bob: c1\\x9b2J and\ttab$/.test(l))).toHaveLength(1);
    expect(lines).toContain('  bob (^[[31mred^Jalice (Alice))');
    expect(lines).toContain('  bob (^[]0;pwned^GBob)  2 unread');
    expect(lines).toContain('chat with bob (Bob^MMallory)');
  });

  it('stops at quit without reading further lines', async () => {
    const s = await FakeServer.start(script);
    servers.push(s);
    const t = session([s.address]);
    t.send('quit', 'signup bob password1');
    await expect(t.done).resolves.toBe(0);
    expect(s.calls).toHaveLength(0);
    t.end();
  });
});
