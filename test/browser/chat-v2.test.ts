// The v2 chat features in the web client against a real server, in two browser contexts: paging up
// through history by scrolling, read ticks that appear live on the sender's side, the typing indicator
// (shown, ended by a send, and over by itself after 6 s), editing one's own message, plus the new-user
// fixes: notices go when the user navigates away, and "Log out" fits a 390 px wide screen.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend,
  api,
  launchBrowser,
  logOut,
  screenshot,
  signUp,
  startSingleServer,
  waitGone,
  waitMessages,
  waitText,
} from './support.js';

const PASSWORD = 'correct-horse-1';

describe('web client: history pages, read ticks, typing, edits', () => {
  let backend: Backend;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  let aliceToken = '';
  let bobToken = '';
  let chatId = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    backend = await startSingleServer();
    browser = await launchBrowser();
    alice = await (await browser.newContext({ viewport: { width: 1000, height: 720 } })).newPage();
    bob = await (await browser.newContext({ viewport: { width: 1000, height: 720 } })).newPage();
    for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));
    await signUp(alice, backend.url, 'alice', 'Alice Liddell', PASSWORD);
    await signUp(bob, backend.url, 'bob', 'Bob Builder', PASSWORD);
    aliceToken = (
      await api<{ token: string }>(backend.url, 'Login', { username: 'alice', password: PASSWORD })
    ).token;
    bobToken = (await api<{ token: string }>(backend.url, 'Login', { username: 'bob', password: PASSWORD }))
      .token;
    chatId = (await api<{ chat_id: string }>(backend.url, 'StartChat', { username: 'bob' }, aliceToken))
      .chat_id;
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
  });

  it('opens a long chat at its latest page and loads older pages as the user scrolls up', async () => {
    // 70 messages of alice's (from her other session): her own, so all visible to her in the history.
    const all = Array.from({ length: 70 }, (_, i) => `old ${i + 1}`);
    for (const content of all)
      await api(backend.url, 'SendMessage', { chat_id: chatId, content }, aliceToken);
    await alice.goto(`${backend.url}/#/chat/${encodeURIComponent(chatId)}`);
    // The latest page (30), scrolled to the bottom.
    await waitMessages(alice, all.slice(40));
    const scrollUp = () =>
      alice.evaluate(() => {
        const log = document.getElementById('messages')!;
        log.scrollTop = 0;
        log.dispatchEvent(new Event('scroll'));
      });
    await scrollUp();
    await waitMessages(alice, all.slice(10));
    // What the user was looking at stays in view: the log did not jump back to the top.
    expect(await alice.evaluate(() => document.getElementById('messages')!.scrollTop)).toBeGreaterThan(100);
    await scrollUp();
    await waitMessages(alice, all);
    // The start of the chat: nothing older to load.
    await waitGone(alice, '.load-older');
  });

  it('shows read ticks on the sender side as the other side reads, live', async () => {
    // Bob has not opened the chat: his 70 unread arrive with his view limit; read them all at once.
    await api(backend.url, 'UpdateSettings', { view_limit: 1000 }, bobToken);
    await alice.fill('form.composer textarea', 'are you there?');
    await alice.click('form.composer button[type=submit]');
    const mine = alice.locator('#messages .msg.mine', { hasText: 'are you there?' });
    await mine.waitFor();
    expect(await mine.locator('.tick').count()).toBe(0);
    // Bob opens the chat: ReadMessages marks everything read and alice's bubble says so at once.
    await bob.goto(`${backend.url}/#/chat/${encodeURIComponent(chatId)}`);
    await waitText(bob, '#messages .msg.theirs .content', 'are you there?');
    await waitText(alice, '#messages .msg.mine:last-child .meta', 'read');
    // With the chat open on both sides, a live message is marked read as bob's page shows it.
    await alice.fill('form.composer textarea', 'and now?');
    await alice.click('form.composer button[type=submit]');
    await waitText(bob, '#messages .msg.theirs:last-child .content', 'and now?');
    await waitText(alice, '#messages .msg.mine:last-child .meta', 'read');
    const chats = await api<{ chats: { unread_count: number }[] }>(backend.url, 'ListChats', {}, bobToken);
    expect(chats.chats[0].unread_count).toBe(0);
  });

  it('shows "typing…" while the other side types, ends it on send, and expires it after 6 s', async () => {
    await waitGone(alice, '#typing:not([hidden])');
    await bob.click('form.composer textarea');
    await bob.keyboard.type('hello ali', { delay: 30 });
    await waitText(alice, '#typing', 'Bob Builder is typing…');
    await alice.evaluate(() => {
      const log = document.getElementById('messages')!;
      log.scrollTop = log.scrollHeight;
    });
    await screenshot(alice, 'web-typing.png');
    await bob.keyboard.type('ce');
    await bob.keyboard.press('Enter');
    await waitText(alice, '#messages .msg.theirs:last-child .content', 'hello alice');
    await waitGone(alice, '#typing:not([hidden])');

    // A typing:true that is never refreshed or ended (the other page died) is over after 6 s.
    await api(backend.url, 'SetTyping', { chat_id: chatId, typing: true }, bobToken);
    await waitText(alice, '#typing', 'is typing…');
    const shownAt = Date.now();
    await waitGone(alice, '#typing:not([hidden])', 15_000);
    expect(Date.now() - shownAt).toBeGreaterThan(4000);
  });

  it("edits one's own message; both sides show the new text as edited", async () => {
    // Bob's messages are not alice's to edit.
    await alice.click('#messages .msg.theirs:last-child');
    expect(await alice.locator('.edit-selected').count()).toBe(0);
    await alice.click('#messages .msg.mine >> text=and now?');
    await alice.click('.edit-selected');
    expect(await alice.inputValue('form.composer textarea')).toBe('and now?');
    await waitText(alice, 'form.composer button[type=submit]', 'Save');
    await alice.fill('form.composer textarea', 'and now, edited?');
    await alice.press('form.composer textarea', 'Enter');
    const edited = (page: Page) => page.locator('#messages .msg', { hasText: 'and now, edited?' });
    await edited(alice).waitFor();
    await edited(bob).waitFor();
    expect(await edited(alice).locator('.meta').textContent()).toContain('edited');
    expect(await edited(bob).locator('.meta').textContent()).toContain('edited');
    await waitText(alice, 'form.composer button[type=submit]', 'Send');
    expect(await alice.locator('#messages .msg .content').allTextContents()).not.toContain('and now?');
    expect(pageErrors).toEqual([]);
  });

  it('drops a notice when the user navigates away', async () => {
    await bob.click('nav a[data-route=settings]');
    await bob.fill('form.settings input[name=view_limit]', '3');
    await bob.click('form.settings button[type=submit]');
    await waitText(bob, '#current-limit, form.settings .error', 'delivered 3 at a time');
    await waitText(bob, '#notice', 'View limit set to 3.');
    await bob.click('nav a[data-route=chats]');
    await bob.waitForSelector('#notice[hidden]', { state: 'attached' });
  });

  it('keeps "Log out" on screen at 390 px wide', async () => {
    const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
    await signUp(phone, backend.url, 'carol', 'Carol', PASSWORD);
    const box = await phone.locator('#logout').boundingBox();
    expect(box).not.toBeNull();
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(phone, 'web-phone.png');
    await logOut(phone);
  });
});
