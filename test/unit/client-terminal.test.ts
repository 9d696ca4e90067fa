// The terminal client driven line by line (non-TTY, as with piped stdin) against a scripted fake replica.
import { PassThrough } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { runTerminal } from '../../src/client/terminal.js';
import { FakeServer, type UnaryScript, closedAddress, fail, ok, waitFor } from './client-fake-server.js';

const servers: FakeServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop();
});

const bob = { chat_id: 'c1', other_user: 'bob', other_nickname: 'Bob', unread_count: 2, last_message_at: 0 };
const msg = (id: number, sender: string, content: string, read = false) => ({
  message_id: id,
  chat_id: 'c1',
  sender,
  content,
  sent_at: 0,
  read,
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
    case 'ReadMessages':
      return ok({
        messages: [msg(3, 'bob', 'hi alice'), msg(4, 'alice', 'hi bob', true)],
        unread_remaining: 3,
      });
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
        ? fail(grpc.status.INVALID_ARGUMENT, 'view_limit must be 1 to 1000.')
        : ok({ view_limit: req.view_limit });
    default:
      return ok({});
  }
};

/** Starts the terminal on piped streams; `send` writes lines, `output()` is everything printed so far. */
function session(addresses: string[]) {
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
    clientOptions: { random: () => 0.5, backoff: { initialMs: 1 } },
  });
  return {
    send: (...lines: string[]) => input.write(lines.map((l) => `${l}\n`).join('')),
    end: () => input.end(),
    output: () => text,
    done,
  };
}

describe('terminal client (piped stdin)', () => {
  it('runs every command in order and prints results, errors and live messages', async () => {
    const s = await FakeServer.start(script, (call) => {
      call.sendMetadata(new grpc.Metadata());
      call.write({ index: 9, message_received: msg(12, 'bob', 'are you there?') });
    });
    servers.push(s);
    const t = session([s.address]);
    t.send(
      'help',
      'chats',
      'signup alice password1 Alice Liddell',
      'login alice wrong',
      'login alice password1',
    );
    await waitFor(() => t.output().includes('new message from bob: are you there?'), 5000, 'live message');
    t.send(
      'send too early',
      'users b*',
      'chats',
      'open nobody',
      'open bob',
      'send hello   there',
      'read',
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
    const after = (marker: string) => lines.slice(lines.indexOf(marker) + 1);
    expect(lines).toContain(
      '  read [user]                              show the open chat; marks up to view-limit unread as read',
    );
    expect(lines).toContain('error: not logged in; login <username> <password> (or signup first)');
    expect(lines).toContain('signed up as alice (Alice Liddell); now: login alice <password>');
    expect(lines).toContain('error: UNAUTHENTICATED: Wrong username or password.');
    expect(lines).toContain('logged in as alice (Alice)');
    expect(lines).toContain('2 unread messages from bob');
    expect(lines).toContain('error: no chat is open; open <user> first');
    expect(after('error: no chat is open; open <user> first').slice(0, 4)).toEqual([
      '  bob (Bob)',
      'page 1 of 1, 1 user',
      '  bob (Bob)  2 unread',
      'error: NOT_FOUND: No such user.',
    ]);
    expect(lines).toContain("opened chat with bob (Bob): 2 unread; type 'read' to show them");
    expect(lines).toContain('sent #11');
    expect(lines.filter((l) => / bob: hi alice$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => / alice: hi bob {2}\(read\)$/.test(l))).toHaveLength(1);
    expect(lines).toContain("3 more unread; type 'read' again to see them");
    expect(lines).toContain('deleted 2 messages');
    expect(lines).toContain('usage: delete <id> [id...]  (message ids as shown by read)');
    expect(lines).toContain('view-limit: 6');
    expect(lines).toContain('view-limit set to 3');
    expect(lines).toContain('error: INVALID_ARGUMENT: view_limit must be 1 to 1000.');
    expect(lines).toContain('sent #11 to bob');
    expect(lines).toContain("unknown command 'bogus'; type 'help' for the list");
    expect(lines).toContain('logged out alice');
    expect(lines.at(-2)).toBe('error: not logged in; login <username> <password> (or signup first)');
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
    expect(lines.filter((l) => l.startsWith('error'))).toEqual([]);
  });

  it('neutralises control characters in what other users wrote (old data from before the server refused them)', async () => {
    const forged = '\x1b[2J\x1b[Hhi\r\n  #99 00:00:00 alice: forged';
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
        default:
          return script(method, req, server);
      }
    };
    const s = await FakeServer.start(evil, (call) => {
      call.sendMetadata(new grpc.Metadata());
      call.write({ index: 9, message_received: msg(12, 'bob', 'live\x1b]0;t\x07\r\nalice: forged live') });
    });
    servers.push(s);
    const t = session([s.address]);
    t.send('login alice password1');
    await waitFor(() => t.output().includes('new message from bob: live'), 5000, 'live message');
    t.send('users', 'chats', 'open bob', 'read');
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
    expect(lines.filter((l) => /^(\s*#\d+ |new message from )/.test(l) && l.includes('alice'))).toEqual([]);
    // Visible, harmless forms instead.
    expect(lines).toContain('new message from bob: live^[]0;t^G^M');
    expect(lines.filter((l) => / bob: \^\[\[2J\^\[\[Hhi\^M$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => / bob: c1\\x9b2J and\ttab$/.test(l))).toHaveLength(1);
    expect(lines).toContain('  bob (^[[31mred^Jalice (Alice))');
    expect(lines).toContain('  bob (^[]0;pwned^GBob)  2 unread');
    expect(lines).toContain("opened chat with bob (Bob^MMallory): 2 unread; type 'read' to show them");
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
