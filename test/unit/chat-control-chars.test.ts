// Control characters (issue 13, finding 6): a nickname or message holding terminal escapes, carriage
// returns or other C0/C1 controls is refused with INVALID_ARGUMENT before it is proposed, and apply
// refuses one that reaches the log anyway. Line breaks and tabs stay allowed in messages.
import { status } from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CallContext } from '../../src/chat/service.js';
import { tokenHash } from '../../src/chat/tokens.js';
import { checkContent, checkNickname } from '../../src/chat/validate.js';
import { type Stack, errorOf, makeStack, userCtx } from './chat-fixture.js';

/** What the security review sent, and the rest of the C0/C1 range at its edges. */
const hostile = [
  '\x1b[2J\x1b[H', // clear the screen, cursor home
  '\x1b]0;pwned\x07', // OSC: set the window title
  'hi\r\nalice: forged line', // CR LF plus a forged message line
  'carriage\rreturn',
  'nul\x00byte',
  'bell\x07',
  'del\x7f',
  'csi\x9b2J', // C1 CSI, which some terminals act on in UTF-8
  'c1\x80start',
];

let s: Stack;
beforeEach(() => {
  s = makeStack();
});

describe('nicknames', () => {
  it.each([...hostile, 'tab\there', 'line\nbreak'])(
    'Signup refuses nickname %j with one sentence',
    async (nickname) => {
      const lastIndex = s.store.appliedIndex();
      const err = await errorOf(
        s.service.signup({ username: 'mallory', nickname, password: 'password123' }, {}),
      );
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toBe('The nickname must not contain control characters.');
      // Refused before proposing: nothing reached the log.
      expect(s.store.appliedIndex()).toBe(lastIndex);
    },
  );

  it('accepts ordinary Unicode, spaces and punctuation', async () => {
    for (const nickname of ['Zoë O’Brien', '李小龍', 'مرحبا', '😀 party', 'a\u00a0b'])
      expect(checkNickname(nickname)).toBe(nickname);
  });
});

describe('messages', () => {
  let alice: CallContext;
  let chatId: string;
  beforeEach(async () => {
    alice = await userCtx(s, 'alice');
    await userCtx(s, 'bob');
    chatId = (await s.service.startChat({ username: 'bob' }, alice)).chat_id;
  });

  it.each(hostile)('SendMessage refuses %j with one sentence, proposing nothing', async (content) => {
    const lastIndex = s.store.appliedIndex();
    const err = await errorOf(s.service.sendMessage({ chat_id: chatId, content }, alice));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toBe(
      'The message content must not contain control characters other than line breaks and tabs.',
    );
    expect(s.store.appliedIndex()).toBe(lastIndex);
  });

  it('keeps line breaks and tabs', async () => {
    const m = await s.service.sendMessage({ chat_id: chatId, content: 'first line\nsecond\tcolumn' }, alice);
    expect(m.content).toBe('first line\nsecond\tcolumn');
    expect(checkContent('😀 ok')).toBe('😀 ok');
  });

  it('apply refuses a message with an escape that reaches the log, and consumes its index', () => {
    const { token } = alice as { token: string };
    const index = s.store.appliedIndex() + 1;
    const data = JSON.stringify({
      type: 'sendMessage',
      actor: tokenHash(token),
      chatId,
      content: '\x1b[2Jforged',
      at: 1,
    });
    const [out] = s.store.apply([{ index, term: 1, kind: 'command', data }]);
    expect(out.result).toMatchObject({ ok: false, code: status.INVALID_ARGUMENT });
    expect(s.store.appliedIndex()).toBe(index);
    // Nothing was stored: the chat has no messages.
    const me = s.store.authenticate(tokenHash(token), 1);
    expect(me).toBeDefined();
    expect(s.store.listChats(me?.userId ?? 0).chats[0].last_message_at).toBe(0);
  });
});
