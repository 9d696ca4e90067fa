// kill -9 the replica serving alice's page while she chats: the page says so in one line, goes on
// through another member's gateway, and bob receives every message exactly once (and alice bob's).
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type WebCluster,
  launchBrowser,
  messageTexts,
  screenshot,
  signUp,
  startWebCluster,
  waitMessages,
  waitText,
} from './support.js';

const PASSWORD = 'correct-horse-1';

describe('web client failover', () => {
  let cluster: WebCluster;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    cluster = await startWebCluster(5);
    browser = await launchBrowser();
    alice = await (await browser.newContext({ viewport: { width: 1000, height: 720 } })).newPage();
    bob = await (await browser.newContext({ viewport: { width: 1000, height: 720 } })).newPage();
    for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('keeps chatting after the page reconnects; nothing lost or shown twice', async () => {
    const c = cluster;
    const leader = await c.harness.waitForLeader();
    // Alice's page is served by the leader, so its death also forces an election.
    const aliceHome = leader.node_id;
    const bobHome = c.harness.ids().find((id) => id !== aliceHome)!;
    await signUp(alice, c.urls.get(aliceHome)!, 'alice', 'Alice', PASSWORD);
    await signUp(bob, c.urls.get(bobHome)!, 'bob', 'Bob', PASSWORD);
    // Bob reads everything as it comes, so every message shows up in his open chat at once.
    await bob.click('nav a[data-route=settings]');
    await bob.fill('form.settings input[name=view_limit]', '1000');
    await bob.click('form.settings button[type=submit]');
    await waitText(bob, '#current-limit', '1000');

    await alice.click('nav a[data-route=users]');
    await alice.fill('form.search input[name=pattern]', 'bob');
    await alice.click('form.search button[type=submit]');
    await alice.click('.user-row[data-user=bob] .start-chat');
    await waitText(alice, '#chat-title', 'Bob');
    const sent: string[] = [];
    const send = async (text: string) => {
      await alice.fill('form.composer textarea', text);
      await alice.click('form.composer button[type=submit]');
      sent.push(text);
    };
    for (let i = 1; i <= 3; i++) await send(`before ${i}`);
    await bob.click('nav a[data-route=chats]');
    await bob.click('.chat-row[data-user=alice] a');
    await waitMessages(bob, sent);

    await c.kill(aliceHome);
    // She goes on typing at once; the first sends land on the dead gateway and are retried elsewhere.
    for (let i = 1; i <= 10; i++) await send(`after ${i}`);
    await waitText(alice, '#notice', 'now connected through');
    // It names the replica that died and one that answered since, once.
    const line = await alice.locator('#notice').textContent();
    const dead = c.urls.get(aliceHome)!.slice('http://'.length);
    const m = /^Lost (127\.0\.0\.1:\d+); now connected through (127\.0\.0\.1:\d+)\.$/.exec(line ?? '');
    expect(m, line ?? '').not.toBeNull();
    expect(m![1]).toBe(dead);
    const alive = [...c.urls.entries()]
      .filter(([id]) => id !== aliceHome)
      .map(([, u]) => u.slice('http://'.length));
    expect(alive).toContain(m![2]);
    await screenshot(alice, 'web-failover.png');

    await waitMessages(alice, sent);
    await waitMessages(bob, sent);
    // And back: bob's reply reaches alice's resumed event stream.
    await bob.fill('form.composer textarea', 'got them all');
    await bob.click('form.composer button[type=submit]');
    await waitMessages(alice, [...sent, 'got them all']);
    expect(await messageTexts(bob)).toEqual([...sent, 'got them all']);
    expect(pageErrors).toEqual([]);
  });
});
