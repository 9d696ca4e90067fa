// Issue 11: the web client over https. One replica serving TLS with a `quorum-chat certs` certificate;
// the browser contexts ignore the certificate error (the development CA is not in Chromium's store),
// which is the only thing relaxed. Two users sign up, start a chat and exchange messages live: the
// page, the JSON API and the SSE stream all go over https.
import * as fs from 'node:fs';
import * as https from 'node:https';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, defineCluster, waitFor } from '../e2e/harness.js';
import { launchBrowser, requireBrowserAndServer, signUp, waitMessages, waitText } from './support.js';

const PASSWORD = 'correct-horse-1';

function healthz(url: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(`${url}/healthz`, { ca, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

describe('web client over https', () => {
  let h: Harness;
  let browser: Browser;
  let url = '';
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    requireBrowserAndServer();
    h = await defineCluster({ size: 1, tls: true });
    h.start('server1');
    await h.waitForVoters(['server1']);
    url = `https://127.0.0.1:${h.get('server1').spec.httpPort}`;
    const ca = fs.readFileSync(join(h.root, 'certs', 'ca.crt'));
    await waitFor(() => healthz(url, ca), { timeoutMs: 10_000, what: `${url}/healthz over TLS` });
    browser = await launchBrowser();
    const options = { ignoreHTTPSErrors: true, viewport: { width: 1000, height: 720 } };
    alice = await (await browser.newContext(options)).newPage();
    bob = await (await browser.newContext(options)).newPage();
    for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await h?.destroy();
  });

  it('signs up, starts a chat and delivers messages live, all over https', async () => {
    await signUp(alice, url, 'alice', 'Alice Liddell', PASSWORD);
    await signUp(bob, url, 'bob', 'Bob Builder', PASSWORD);
    expect(alice.url()).toMatch(/^https:\/\//);

    await alice.click('nav a[data-route=users]');
    await alice.fill('form.search input[name=pattern]', 'bob');
    await alice.click('form.search button[type=submit]');
    await alice.click('.user-row[data-user=bob] .start-chat');
    await waitText(alice, '#chat-title', 'Bob Builder');
    await alice.fill('form.composer textarea', 'Hello over TLS');
    await alice.click('form.composer button[type=submit]');
    await waitMessages(alice, ['Hello over TLS']);

    // Bob's chat list learns of it through the event stream (SSE over https).
    await bob.click('nav a[data-route=chats]');
    await waitText(bob, '.chat-row[data-user=alice] .unread', '1');
    await bob.click('.chat-row[data-user=alice] a');
    await waitMessages(bob, ['Hello over TLS']);
    expect(pageErrors).toEqual([]);
  });
});
