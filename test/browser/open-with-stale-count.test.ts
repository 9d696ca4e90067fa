// Opening a chat whose unread count on the page is stale must not lose the unread messages. The page
// used to take the chat list's count (0) for the truth: a live message that came in before a fresh
// count was shown at once and marked read up to its id, so the older unread ones were read on the
// server but never on screen. The failover browser test caught it in CI as a chat showing only
// "before 3". Here the chat list's refreshes are held in the browser while bob opens the chat, so the
// page can only know its count from a reply it asks for after opening.
import type { Route } from 'playwright-core';
import { describe, it } from 'vitest';
import { api, sendSeenLive, useRoutedPage, waitMessages } from './support.js';

const WAIT_MS = 20_000;

describe('web client: opening a chat with a stale unread count', () => {
  const setup = useRoutedPage();

  it('delivers the unread messages before showing a live one', async () => {
    const { backend, context: bob, page, alice, chat_id } = setup();
    // Bob's list shows the chat with nothing unread, which is true until alice writes.
    await page.waitForSelector('.chat-row[data-user=alice]:not(:has(.badge.unread))', { timeout: WAIT_MS });

    // From now on the list's refreshes are answered only when released: its count stays at 0.
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    await bob.route('**/api/ListChats', async (route: Route) => {
      const response = await route.fetch();
      await released;
      await route.fulfill({ response });
    });
    await api(backend.url, 'SendMessage', { chat_id, content: 'first' }, alice);
    const history = page.waitForResponse('**/api/GetMessages', { timeout: WAIT_MS });
    await page.click('.chat-row[data-user=alice] a');
    await history; // holds nothing: 'first' is unread, so not in GetMessages

    // 'late' comes live while the page's count is still the stale 0.
    await sendSeenLive(page, backend.url, alice, chat_id, 'late');
    release();

    await waitMessages(page, ['first', 'late'], WAIT_MS);
  });
});
