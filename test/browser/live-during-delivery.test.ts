// A message that arrives live while the page's own ReadMessages is on its way must still be shown. The
// page used to drop it (a delivery was busy) and, once a later live message was shown and marked read
// up to its id, the dropped one was read on the server but never on screen: the failover browser test
// caught it in CI as a missing "after 4". Here the delivery's reply is held in the browser until the
// live message has reached the page, and the chat list (whose unread count is another way back) is
// answered empty, so only the page's own follow-up delivery can bring the message in.
import type { Browser, BrowserContext, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type Backend, api, launchBrowser, signUp, startSingleServer, waitMessages } from './support.js';

const PASSWORD = 'correct-horse-1';
const WAIT_MS = 20_000;

describe('web client: a live message during a delivery', () => {
  let backend: Backend;
  let browser: Browser;
  let bob: BrowserContext;

  beforeAll(async () => {
    backend = await startSingleServer();
    browser = await launchBrowser();
    bob = await browser.newContext({ viewport: { width: 1000, height: 720 } });
    const signup = await bob.newPage();
    await signUp(signup, backend.url, 'bob', 'Bob', PASSWORD);
    await signup.close();
  });

  afterAll(async () => {
    // The page keeps refreshing its chat list through the route above; a refresh still in the route
    // when the browser closes would otherwise fail the run (it did in CI).
    await bob?.unrouteAll({ behavior: 'ignoreErrors' });
    await browser?.close();
    await backend?.stop();
  });

  it('shows a message that arrived while ReadMessages was in flight', async () => {
    await api(backend.url, 'Signup', { username: 'alice', nickname: 'Alice', password: PASSWORD });
    const alice = (
      await api<{ token: string }>(backend.url, 'Login', { username: 'alice', password: PASSWORD })
    ).token;
    const { chat_id } = await api<{ chat_id: string }>(backend.url, 'StartChat', { username: 'bob' }, alice);
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

    // 'late' is applied after that ReadMessages was answered, so its reply does not hold it. The typing
    // event that follows on the same stream tells us the page has seen 'late' too.
    await api(backend.url, 'SendMessage', { chat_id, content: 'late' }, alice);
    await api(backend.url, 'SetTyping', { chat_id, typing: true }, alice);
    await page.waitForSelector('#typing:not([hidden])', { timeout: WAIT_MS });
    release();

    await waitMessages(page, ['first', 'late'], WAIT_MS);
    await bob.unrouteAll({ behavior: 'ignoreErrors' });
  });
});
