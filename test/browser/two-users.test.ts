// Two people in two browser contexts against a real server: sign up, search with globs and pages, start
// a chat, live messages both ways, unread counts, view_limit delivery with "N more unread", deleting a
// message, settings, logout and login, and deleting an account. Saves the screenshots under docs/.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend,
  launchBrowser,
  logOut,
  messageTexts,
  screenshot,
  signUp,
  startSingleServer,
  waitGone,
  waitMessages,
  waitText,
} from './support.js';

const PASSWORD = 'correct-horse-1';

describe('web client: alice and bob', () => {
  let backend: Backend;
  let browser: Browser;
  let ctxA: BrowserContext;
  let ctxB: BrowserContext;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    backend = await startSingleServer();
    browser = await launchBrowser();
    ctxA = await browser.newContext({ viewport: { width: 1000, height: 720 } });
    ctxB = await browser.newContext({ viewport: { width: 1000, height: 720 } });
    alice = await ctxA.newPage();
    bob = await ctxB.newPage();
    for (const p of [alice, bob]) {
      p.on('pageerror', (e) => pageErrors.push(e.message));
      // The pages work under the server's Content-Security-Policy (Chromium reports what it blocks).
      p.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
      });
    }
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
  });

  it('signs up both users; a taken name is refused', async () => {
    await alice.goto(backend.url);
    await alice.waitForSelector('form.login');
    await screenshot(alice, 'web-login.png');
    await signUp(alice, backend.url, 'alice', 'Alice Liddell', PASSWORD);
    await signUp(bob, backend.url, 'bob', 'Bob Builder', PASSWORD);

    // A third context tries alice's name in another case.
    const other = await browser.newPage();
    await other.goto(`${backend.url}/#/signup`);
    await other.fill('form.signup input[name=username]', 'ALICE');
    await other.fill('form.signup input[name=nickname]', 'Impostor');
    await other.fill('form.signup input[name=password]', PASSWORD);
    await other.click('form.signup button[type=submit]');
    await waitText(other, 'form.signup .error', 'taken');
    await other.close();
  });

  it('searches users with a glob, page by page', async () => {
    // Eleven more users through the JSON API, so that `user*` spans two pages of ten.
    for (let i = 1; i <= 11; i++) {
      const name = `user${String(i).padStart(2, '0')}`;
      const res = await fetch(`${backend.url}/api/Signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: name, nickname: `User ${i}`, password: PASSWORD }),
      });
      expect(res.status).toBe(200);
    }
    await alice.click('nav a[data-route=users]');
    await alice.fill('form.search input[name=pattern]', 'user*');
    await alice.click('form.search button[type=submit]');
    await waitText(alice, '.page-info', 'Page 1 of 2 · 11 users');
    expect(await alice.locator('.user-row').count()).toBe(10);
    await alice.click('.pager .next');
    await waitText(alice, '.page-info', 'Page 2 of 2');
    expect(await alice.locator('.user-row').getAttribute('data-user')).toBe('user11');

    await alice.fill('form.search input[name=pattern]', 'B?B');
    await alice.click('form.search button[type=submit]');
    await waitText(alice, '.page-info', 'Page 1 of 1 · 1 users');
    expect(await alice.locator('.user-row').getAttribute('data-user')).toBe('bob');
    await alice.fill('form.search input[name=pattern]', '*');
    await alice.click('form.search button[type=submit]');
    await waitText(alice, '.page-info', '12 users'); // everyone but alice herself
    await screenshot(alice, 'web-users.png');
  });

  it('starts a chat and exchanges live messages with unread counts', async () => {
    await bob.click('nav a[data-route=chats]');
    await waitText(bob, '#chat-list', 'No chats yet.');

    await alice.fill('form.search input[name=pattern]', 'bob');
    await alice.click('form.search button[type=submit]');
    await alice.click('.user-row[data-user=bob] .start-chat');
    await waitText(alice, '#chat-title', 'Bob Builder');
    await alice.fill('form.composer textarea', 'Hello Bob');
    await alice.click('form.composer button[type=submit]');
    await waitMessages(alice, ['Hello Bob']);

    // Bob did nothing: the chat and its unread count arrive live.
    await waitText(bob, '.chat-row[data-user=alice] .unread', '1');
    await waitText(bob, '#total-unread', '1');
    await bob.click('.chat-row[data-user=alice] a');
    await waitMessages(bob, ['Hello Bob']);
    await bob.fill('form.composer textarea', 'Hi Alice!');
    await bob.press('form.composer textarea', 'Enter');
    await waitMessages(bob, ['Hello Bob', 'Hi Alice!']);
    // Alice has the chat open and has read everything, so bob's reply is delivered at once.
    await waitMessages(alice, ['Hello Bob', 'Hi Alice!']);
    await bob.click('nav a[data-route=chats]');
    await waitGone(bob, '.chat-row[data-user=alice] .unread');
    expect(await bob.locator('#total-unread').isHidden()).toBe(true);
  });

  it('delivers view_limit messages at a time with "N more unread"', async () => {
    await bob.click('nav a[data-route=settings]');
    await bob.fill('form.settings input[name=view_limit]', '2');
    await bob.click('form.settings button[type=submit]');
    await waitText(bob, '#current-limit', 'delivered 2 at a time');
    await screenshot(bob, 'web-settings.png');
    await bob.click('nav a[data-route=chats]');

    for (const n of [1, 2, 3, 4, 5]) {
      await alice.fill('form.composer textarea', `m${n}`);
      await alice.click('form.composer button[type=submit]');
    }
    await waitMessages(alice, ['Hello Bob', 'Hi Alice!', 'm1', 'm2', 'm3', 'm4', 'm5']);
    await waitText(bob, '.chat-row[data-user=alice] .unread', '5');
    await screenshot(bob, 'web-chats.png');

    await bob.click('.chat-row[data-user=alice] a');
    await waitMessages(bob, ['Hello Bob', 'Hi Alice!', 'm1', 'm2']);
    await waitText(bob, '.more-unread', '3 more unread');
    await screenshot(bob, 'web-chat.png');
    await bob.click('.more-unread');
    await waitMessages(bob, ['Hello Bob', 'Hi Alice!', 'm1', 'm2', 'm3', 'm4']);
    await waitText(bob, '.more-unread', '1 more unread');
    await bob.click('.more-unread');
    await waitMessages(bob, ['Hello Bob', 'Hi Alice!', 'm1', 'm2', 'm3', 'm4', 'm5']);
    await waitGone(bob, '.more-unread');

    // Everything read: a new message shows up live in bob's open chat.
    await alice.fill('form.composer textarea', 'live one');
    await alice.click('form.composer button[type=submit]');
    await waitMessages(bob, ['Hello Bob', 'Hi Alice!', 'm1', 'm2', 'm3', 'm4', 'm5', 'live one']);
  });

  it('deletes a selected own message on both sides', async () => {
    // Bob's message is not alice's to select.
    await alice.click('#messages .msg.theirs');
    expect(await alice.locator('.delete-selected').count()).toBe(0);
    await alice.click('#messages .msg.mine >> text=m3');
    await waitText(alice, '.delete-selected', 'Delete selected (1)');
    await alice.click('.delete-selected');
    const after = ['Hello Bob', 'Hi Alice!', 'm1', 'm2', 'm4', 'm5', 'live one'];
    await waitMessages(alice, after);
    await waitMessages(bob, after);
    await waitGone(alice, '.delete-selected');
  });

  it('logs out and back in', async () => {
    await logOut(alice);
    await alice.fill('form.login input[name=username]', 'alice');
    await alice.fill('form.login input[name=password]', 'wrong-password');
    await alice.click('form.login button[type=submit]');
    await alice.waitForSelector('form.login .error:not(:empty)');
    await alice.fill('form.login input[name=password]', PASSWORD);
    await alice.click('form.login button[type=submit]');
    await waitText(alice, '#me', '@alice');
    await alice.click('.chat-row[data-user=bob] a');
    await waitMessages(alice, ['Hello Bob', 'Hi Alice!', 'm1', 'm2', 'm4', 'm5', 'live one']);
  });

  it("deletes bob's account after asking for the password; alice sees the chat go", async () => {
    await bob.click('nav a[data-route=settings]');
    await bob.fill('form.delete-account input[name=password]', 'not-my-password');
    await bob.click('form.delete-account button[type=submit]');
    await bob.waitForSelector('form.delete-account .error:not(:empty)');
    await bob.fill('form.delete-account input[name=password]', PASSWORD);
    await bob.click('form.delete-account button[type=submit]');
    await waitText(bob, '#notice', 'account was deleted');
    await bob.waitForSelector('form.login');

    // Alice had the chat open: it is removed live and she is told so in one line.
    await waitText(alice, '#notice', 'The chat with bob was removed.');
    await waitText(alice, '#chat-list', 'No chats yet.');
    // The name is free again.
    await alice.click('nav a[data-route=users]');
    await alice.fill('form.search input[name=pattern]', 'bob');
    await alice.click('form.search button[type=submit]');
    await waitText(alice, '.user-row, .list .empty', 'No users match.');
    expect(pageErrors).toEqual([]);
    expect(await messageTexts(alice)).toEqual([]);
  });
});
