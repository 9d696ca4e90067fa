// kill -9 the replica serving alice's page while she chats: the page says so in one line, goes on
// through another member's gateway, and bob receives every message exactly once (and alice bob's).
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterUnsupported,
  type TwoGateways,
  type WebCluster,
  browserMissingReason,
  launchBrowser,
  messageTexts,
  screenshot,
  signUp,
  startTwoGateways,
  startWebCluster,
  waitMessages,
  waitText,
} from './support.js';

const missing = browserMissingReason();
const PASSWORD = 'correct-horse-1';

describe.skipIf(missing !== undefined)('web client failover', () => {
  let cluster: WebCluster | undefined;
  let unsupported = '';
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    try {
      cluster = await startWebCluster(5);
    } catch (err) {
      if (!(err instanceof ClusterUnsupported)) throw err;
      unsupported = err.message;
      return;
    }
    browser = await launchBrowser();
    alice = await (await browser.newContext({ viewport: { width: 1000, height: 720 } })).newPage();
    bob = await (await browser.newContext({ viewport: { width: 1000, height: 720 } })).newPage();
    for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('keeps chatting after the page reconnects; nothing lost or shown twice', async (ctx) => {
    if (unsupported) ctx.skip(unsupported);
    const c = cluster!;
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
    await waitText(alice, '#notice', 'reconnected through');
    const line = await alice.locator('#notice').textContent();
    expect(line).toMatch(/^Lost 127\.0\.0\.1:\d+; reconnected through 127\.0\.0\.1:\d+\.$/);
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

describe.skipIf(missing !== undefined)('web client failover between gateways (one replica)', () => {
  let gw: TwoGateways;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    gw = await startTwoGateways();
    browser = await launchBrowser();
    alice = await (await browser.newContext()).newPage();
    bob = await (await browser.newContext()).newPage();
    for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('moves to the other gateway, retries sends once, and resumes the event stream', async () => {
    await signUp(alice, gw.urls[0], 'alice', 'Alice', PASSWORD);
    await signUp(bob, gw.urls[1], 'bob', 'Bob', PASSWORD);
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
    await send('one');
    await bob.click('.chat-row[data-user=alice] a');
    await waitMessages(bob, sent);

    await gw.kill(0);
    for (const t of ['two', 'three', 'four']) await send(t);
    await waitText(alice, '#notice', 'reconnected through');
    expect(await alice.locator('#notice').textContent()).toBe(
      `Lost ${gw.urls[0].slice(7)}; reconnected through ${gw.urls[1].slice(7)}.`,
    );
    await waitMessages(alice, sent);
    await waitMessages(bob, sent);
    // Bob's reply reaches alice over her new event stream on the second gateway.
    await bob.fill('form.composer textarea', 'pong');
    await bob.click('form.composer button[type=submit]');
    await waitMessages(alice, [...sent, 'pong']);
    expect(pageErrors).toEqual([]);
  });
});
