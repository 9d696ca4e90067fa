// Shared pieces of the browser tests: Debian's Chromium through playwright-core (never a downloaded
// browser), real `quorum-chat server` processes through the e2e harness, and condition waits.
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Browser,
  type BrowserContext,
  type Page,
  type Request,
  type Response,
  chromium,
} from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { bootCluster, freePort, portIsFree, projectRoot } from '../../src/server/local-cluster.js';
import { Harness, defineCluster, serverMissingReason, testTimers, waitFor } from '../e2e/harness.js';

export const chromiumPath = '/usr/bin/chromium';
/** Screenshots go to docs/ when QC_SCREENSHOTS=1 (to refresh the README's pictures), else to a temp dir. */
export const screenshotDir =
  process.env.QC_SCREENSHOTS === '1' ? join(projectRoot, 'docs') : join(tmpdir(), 'qc-screenshots');

/**
 * Throws (so the suite FAILS, never skips) when the browser tests cannot reach what they test: Debian's
 * Chromium, or the built server that serves the page.
 */
export function requireBrowserAndServer(): void {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing (apt-get install chromium)`);
  const server = serverMissingReason();
  if (server) throw new Error(`${server}; run npm run build first`);
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
  /** The web client's URL: the replica's own HTTP server. */
  url: string;
  stop(): Promise<void>;
}

/** One real server process; the page is served by the replica's own HTTP server on --http-port. */
export async function startSingleServer(): Promise<Backend> {
  requireBrowserAndServer();
  const harness = await defineCluster({ size: 1 });
  const replica = harness.get('server1');
  try {
    harness.start('server1');
    await harness.waitForVoters(['server1']);
    const own = `http://127.0.0.1:${replica.spec.httpPort}`;
    await waitFor(async () => ((await healthz(own)) ? true : undefined), {
      timeoutMs: 10_000,
      what: `the replica to serve ${own}/healthz`,
    });
    return { harness, url: own, stop: () => harness.destroy() };
  } catch (err) {
    await harness.destroy();
    throw err;
  }
}

const PASSWORD = 'correct-horse-1';

/**
 * One server and one browser context, for tests that hold the page's calls with `context.route`: bob
 * signed up on `page` (his chat list open), alice's token, and the chat she started with him.
 */
export interface RoutedPage {
  backend: Backend;
  context: BrowserContext;
  page: Page;
  alice: string;
  chat_id: string;
}

/** Starts a RoutedPage before the file's tests and stops it after them. */
export function useRoutedPage(): () => RoutedPage {
  let backend: Backend | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let run: RoutedPage | undefined;
  beforeAll(async () => {
    backend = await startSingleServer();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1000, height: 720 } });
    const page = await context.newPage();
    await signUp(page, backend.url, 'bob', 'Bob', PASSWORD);
    await api(backend.url, 'Signup', { username: 'alice', nickname: 'Alice', password: PASSWORD });
    const { token } = await api<{ token: string }>(backend.url, 'Login', {
      username: 'alice',
      password: PASSWORD,
    });
    const { chat_id } = await api<{ chat_id: string }>(backend.url, 'StartChat', { username: 'bob' }, token);
    run = { backend, context, page, alice: token, chat_id };
  });
  afterAll(async () => {
    // A call still held in a route when the browser closes would otherwise fail the run (it did in
    // CI): the page keeps refreshing its chat list.
    await context?.unrouteAll({ behavior: 'ignoreErrors' });
    await browser?.close();
    await backend?.stop();
  });
  return () => {
    if (!run) throw new Error('the routed page did not start');
    return run;
  };
}

/**
 * Alice sends `content` and waits until the page has seen it, whether or not it shows it: the typing
 * event she sends next comes on the same stream, after it.
 */
export async function sendSeenLive(
  page: Page,
  base: string,
  alice: string,
  chat_id: string,
  content: string,
) {
  await api(base, 'SendMessage', { chat_id, content }, alice);
  await api(base, 'SetTyping', { chat_id, typing: true }, alice);
  await page.waitForSelector('#typing:not([hidden])', { timeout: WAIT_MS });
}

async function healthz(base: string): Promise<boolean> {
  try {
    return (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(500) })).ok;
  } catch {
    return false;
  }
}

// Generous: a loaded CI machine can stall elections and scrypt; the page itself retries for 30 s.
const WAIT_MS = 40_000;

// Every waitForFunction in the browser tests polls on a 100 ms timer. Playwright's default polls on
// requestAnimationFrame, and headless Chromium sometimes stops drawing a page's frames: the condition
// was then checked once, before the page changed, and the wait ran out with the page long right (the
// logout notice, shown 80 ms after the click and gone 8 s later, failed two runs so).

/** Waits until `selector` exists and its text contains `text`. */
export async function waitText(page: Page, selector: string, text: string, timeout = WAIT_MS): Promise<void> {
  await page
    .waitForFunction(
      ([sel, want]) =>
        Array.from(document.querySelectorAll(sel)).some((el) => el.textContent?.includes(want)),
      [selector, text] as const,
      { polling: 100, timeout },
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
  await page.waitForFunction((sel) => document.querySelector(sel) === null, selector, {
    polling: 100,
    timeout,
  });
}

/** A JSON call to the page's own gateway, as a second session of the same user would make it. */
export async function api<T>(base: string, rpc: string, body: object, token?: string): Promise<T> {
  const res = await fetch(`${base}/api/${rpc}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const data = (await res.json()) as T & { message?: string };
  if (!res.ok) throw new Error(`${rpc}: HTTP ${res.status} ${data.message}`);
  return data;
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
      { polling: 100, timeout },
    )
    .catch(async (err: Error) => {
      throw new Error(
        `messages ${JSON.stringify(await messageTexts(page))}, want ${JSON.stringify(want)}: ${err.message}`,
      );
    });
}

/**
 * A 1400×900 page that records its uncaught errors, and the scripts, styles, images or connections
 * the server's Content-Security-Policy blocked (Chromium reports them on the console), into `errors`.
 */
export async function pageWithErrors(browser: Browser, errors: string[]): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  return page;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, name) });
}

/**
 * Clicks "Log out" and waits for the page to say so. If it does not, the failure says what the page
 * saw of its Logout call and its event stream, and where it is (that is how the wait's polling, below,
 * was found out).
 */
export async function logOut(page: Page): Promise<void> {
  const start = Date.now();
  const seen: string[] = [];
  const onResponse = (r: Response) => {
    if (/\/api\/(Logout|events)/.test(r.url()))
      seen.push(`${r.status()} ${r.url()} at +${Date.now() - start} ms`);
  };
  const onFailed = (r: Request) => {
    if (/\/api\//.test(r.url()))
      seen.push(`failed ${r.url()} (${r.failure()?.errorText}) at +${Date.now() - start} ms`);
  };
  page.on('response', onResponse);
  page.on('requestfailed', onFailed);
  try {
    await page.click('#logout');
    await waitText(page, '#notice', 'logged out').catch(async (err: Error) => {
      const where = await page.evaluate(
        () => `${location.hash}, #me ${document.getElementById('me')?.textContent}`,
      );
      throw new Error(`${err.message}; page at ${where}; its calls since the click: ${JSON.stringify(seen)}`);
    });
  } finally {
    page.off('response', onResponse);
    page.off('requestfailed', onFailed);
  }
}

/** Signs up through the page and lands on the chat list. */
export async function signUp(page: Page, url: string, username: string, nickname: string, password: string) {
  await page.goto(url);
  await page.click('text=Create an account');
  await page.fill('form.signup input[name=username]', username);
  await page.fill('form.signup input[name=nickname]', nickname);
  await page.fill('form.signup input[name=password]', password);
  await page.click('form.signup button[type=submit]');
  await waitText(page, '#me', `@${username}`).catch(async (err: Error) => {
    const said = await page.locator('form.signup .error, #notice').allTextContents();
    throw new Error(
      `sign-up of ${username} did not finish (page says ${JSON.stringify(said)}): ${err.message}`,
    );
  });
}

export interface WebCluster {
  harness: Harness;
  /** Replica id → the URL of its web client (gRPC port + 1000, the default the pages fail over by). */
  urls: Map<string, string>;
  /** kill -9 the replica. */
  kill(id: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `size` replicas booted as a user would (the first bootstraps, the rest join with --peers), each with
 * its HTTP port at the default gRPC port + 1000 so that pages find the other members' gateways.
 */
export async function startWebCluster(size: number, opts: { supervise?: boolean } = {}): Promise<WebCluster> {
  requireBrowserAndServer();
  // `supervise`: the replicas may ask this harness to restart one, as they ask `quorum-chat cluster`.
  const harness = new Harness(mkdtempSync(join(tmpdir(), 'qc-browser-')), {
    serverArgs: testTimers,
    supervise: opts.supervise,
  });
  try {
    let first: string | undefined;
    for (let i = 1; i <= size; i++) {
      const port = await portWithHttpTwin();
      const r = await harness.define(`server${i}`, {
        port,
        httpPort: 'default',
        peers: first ? [first] : [],
      });
      first ??= r.address;
    }
    await bootCluster(harness, harness.ids());
    const urls = new Map(
      harness.ids().map((id) => [id, `http://127.0.0.1:${harness.get(id).spec.port + 1000}`]),
    );
    for (const [id, url] of urls) {
      await waitFor(async () => ((await healthz(url)) ? true : undefined), {
        timeoutMs: 10_000,
        what: `${id} to serve ${url}/healthz`,
      });
    }
    return {
      harness,
      urls,
      kill: (id) => harness.kill(id, 'SIGKILL'),
      stop: () => harness.destroy(),
    };
  } catch (err) {
    await harness.destroy();
    throw err;
  }
}

/** A free port p with p + 1000 free too (bounded tries). */
async function portWithHttpTwin(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p + 1000 <= 65535 && (await portIsFree(p + 1000))) return p;
  }
  throw new Error('no free port pair (p, p + 1000) found');
}
