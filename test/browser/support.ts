// Shared pieces of the browser tests: Debian's Chromium through playwright-core (never a downloaded
// browser), real `quorum-chat server` processes through the e2e harness, and condition waits.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { type Browser, type Page, chromium } from 'playwright-core';
import { ChatClient } from '../../src/client/client.js';
import { projectRoot } from '../../src/server/local-cluster.js';
import { chatApiFromClient } from '../../src/web/client-api.js';
import { startHttpServer } from '../../src/web/http-server.js';
import { type Harness, defineCluster, serverMissingReason, waitFor } from '../e2e/harness.js';

export const chromiumPath = '/usr/bin/chromium';
export const docsDir = join(projectRoot, 'docs');

/** Why the browser tests cannot run here, or undefined. */
export function browserMissingReason(): string | undefined {
  if (!existsSync(chromiumPath)) return `${chromiumPath} is missing (apt-get install chromium)`;
  return serverMissingReason();
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface Backend {
  harness: Harness;
  /** The web client's URL (the replica's own HTTP server, or the stand-in gateway). */
  url: string;
  /** True when the page is served by a gateway in this test process rather than by the replica. */
  standIn: boolean;
  stop(): Promise<void>;
}

/**
 * One real server process. The page is served by the replica's own HTTP server on --http-port; while
 * the server does not start one yet, a gateway in this process (the same startHttpServer and ChatClient
 * the server uses) stands in, pointed at the replica's gRPC port.
 */
export async function startSingleServer(): Promise<Backend> {
  const harness = await defineCluster({ size: 1 });
  const replica = harness.get('server1');
  try {
    harness.start('server1');
    await harness.waitForVoters(['server1']);
    const own = `http://127.0.0.1:${replica.spec.httpPort}`;
    const serves = await waitFor(async () => ((await healthz(own)) ? true : undefined), {
      timeoutMs: 3000,
      what: 'the replica to serve /healthz',
    }).catch(() => false);
    if (serves) return { harness, url: own, standIn: false, stop: () => harness.destroy() };
    const root = new ChatClient([replica.address]);
    const api = chatApiFromClient(root);
    const http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      gateway: api,
      logger: pino({ level: 'silent' }),
    });
    return {
      harness,
      url: http.url,
      standIn: true,
      stop: async () => {
        await http.close();
        api.close();
        root.close();
        await harness.destroy();
      },
    };
  } catch (err) {
    await harness.destroy();
    throw err;
  }
}

async function healthz(base: string): Promise<boolean> {
  try {
    return (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(500) })).ok;
  } catch {
    return false;
  }
}

const WAIT_MS = 15_000;

/** Waits until `selector` exists and its text contains `text`. */
export async function waitText(page: Page, selector: string, text: string, timeout = WAIT_MS): Promise<void> {
  await page
    .waitForFunction(
      ([sel, want]) =>
        Array.from(document.querySelectorAll(sel)).some((el) => el.textContent?.includes(want)),
      [selector, text] as const,
      { timeout },
    )
    .catch(async (err: Error) => {
      const seen = await page.locator(selector).allTextContents();
      throw new Error(
        `no ${selector} containing ${JSON.stringify(text)}; seen ${JSON.stringify(seen)}: ${err.message}`,
      );
    });
}

/** Waits until no element matches `selector`. */
export async function waitGone(page: Page, selector: string, timeout = WAIT_MS): Promise<void> {
  await page.waitForFunction((sel) => document.querySelector(sel) === null, selector, { timeout });
}

/** The texts of the message bubbles, oldest first. */
export function messageTexts(page: Page): Promise<string[]> {
  return page.locator('#messages .msg .content').allTextContents();
}

/** Waits until the message list is exactly `want`. */
export async function waitMessages(page: Page, want: string[], timeout = WAIT_MS): Promise<void> {
  await page
    .waitForFunction(
      (w) => {
        const got = Array.from(document.querySelectorAll('#messages .msg .content')).map(
          (e) => e.textContent,
        );
        return JSON.stringify(got) === JSON.stringify(w);
      },
      want,
      { timeout },
    )
    .catch(async (err: Error) => {
      throw new Error(
        `messages ${JSON.stringify(await messageTexts(page))}, want ${JSON.stringify(want)}: ${err.message}`,
      );
    });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(docsDir, { recursive: true });
  await page.screenshot({ path: join(docsDir, name) });
}

/** Signs up through the page and lands on the chat list. */
export async function signUp(page: Page, url: string, username: string, nickname: string, password: string) {
  await page.goto(url);
  await page.click('text=Create an account');
  await page.fill('form.signup input[name=username]', username);
  await page.fill('form.signup input[name=nickname]', nickname);
  await page.fill('form.signup input[name=password]', password);
  await page.click('form.signup button[type=submit]');
  await waitText(page, '#me', `@${username}`);
}
