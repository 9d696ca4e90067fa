// A message that arrives live while the page's own ReadMessages is on its way must still be shown. The
// page used to drop it (a delivery was busy) and, once a later live message was shown and marked read
// up to its id, the dropped one was read on the server but never on screen: the failover browser test
// caught it in CI as a missing "after 4". Here the delivery's reply is held in the browser until the
// live message has reached the page, and the chat list (whose unread count is another way back) is
// answered empty, so only the page's own follow-up delivery can bring the message in.
import type { Page, Route } from 'playwright-core';
import { describe, it } from 'vitest';
import { api, sendSeenLive, useRoutedPage, waitMessages } from './support.js';

const WAIT_MS = 20_000;

describe('web client: a live message during a delivery', () => {
  const setup = useRoutedPage();

  it('shows a message that arrived while ReadMessages was in flight', async () => {
    const { backend, context: bob, page: signup, alice, chat_id } = setup();
    await signup.close();
    await api(backend.url, 'SendMessage', { chat_id, content: 'first' }, alice);

    // The chat list never reports an unread count, so a list refresh cannot start a delivery.
    await bob.route('**/api/ListChats', async (route: Route) => {
      const json = (await (await route.fetch()).json()) as { chats: { unread_count: number }[] };
      for (const c of json.chats) c.unread_count = 0;
      await route.fulfill({ json });
    });
    // Opening the chat in a new page (so with no chat list yet) delivers with ReadMessages: the server
    // answers, the browser holds the answer until released.
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let heldResolve!: () => void;
    const held = new Promise<void>((r) => {
      heldResolve = r;
    });
    await bob.route('**/api/ReadMessages', async (route: Route) => {
      const response = await route.fetch();
      heldResolve();
      await released;
      await route.fulfill({ response });
    });
    const page: Page = await bob.newPage();
    await page.goto(`${backend.url}/#/chat/${encodeURIComponent(chat_id)}`);
    await held;

    // 'late' is applied after that ReadMessages was answered, so its reply does not hold it.
    await sendSeenLive(page, backend.url, alice, chat_id, 'late');
    release();

    await waitMessages(page, ['first', 'late'], WAIT_MS);
  });
});
