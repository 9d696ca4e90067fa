// Shared pieces of the browser tests: Debian's Chromium through playwright-core (never a downloaded
// browser), real `quorum-chat server` processes through the e2e harness, and condition waits.
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type Browser, type Page, chromium } from 'playwright-core';
import { ChatClient } from '../../src/client/client.js';
import { bootCluster, freePort, portIsFree, projectRoot } from '../../src/server/local-cluster.js';
import { chatApiFromClient } from '../../src/web/client-api.js';
import { startHttpServer } from '../../src/web/http-server.js';
import { Harness, defineCluster, serverMissingReason, testTimers, waitFor } from '../e2e/harness.js';

export const chromiumPath = '/usr/bin/chromium';
/** Screenshots go to docs/ when QC_SCREENSHOTS=1 (to refresh the README's pictures), else to a temp dir. */
export const screenshotDir =
  process.env.QC_SCREENSHOTS === '1' ? join(projectRoot, 'docs') : join(tmpdir(), 'qc-screenshots');

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

// Generous: a loaded CI machine can stall elections and scrypt; the page itself retries for 30 s.
const WAIT_MS = 40_000;

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
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, name) });
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
  standIn: boolean;
  /** kill -9 the replica (and its stand-in gateway, which lives and dies with it). */
  kill(id: string): Promise<void>;
  stop(): Promise<void>;
}

/** Thrown when the server build cannot form a cluster yet (it refuses --peers). */
export class ClusterUnsupported extends Error {}

/**
 * `size` replicas booted as a user would (the first bootstraps, the rest join with --peers), each with
 * its HTTP port at the default gRPC port + 1000 so that pages find the other members' gateways. As in
 * startSingleServer, in-process stand-in gateways serve the pages while the server has no HTTP server.
 */
export async function startWebCluster(size: number, opts: { supervise?: boolean } = {}): Promise<WebCluster> {
  // `supervise`: the replicas may ask this harness to restart one, as they ask `quorum-chat cluster`.
  const harness = new Harness(mkdtempSync(join(tmpdir(), 'qc-browser-')), {
    serverArgs: testTimers,
    supervise: opts.supervise,
  });
  const standIns = new Map<string, { close(): Promise<void> }>();
  const stop = async () => {
    for (const s of standIns.values()) await s.close();
    standIns.clear();
    await harness.destroy();
  };
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
    await bootCluster(harness, harness.ids()).catch((err: Error) => {
      const tails = harness
        .ids()
        .map((id) => harness.tail(id, 5))
        .join('\n');
      if (/not supported by this build/.test(tails))
        throw new ClusterUnsupported('the server cannot join clusters yet');
      throw err;
    });
    const urls = new Map(
      harness.ids().map((id) => [id, `http://127.0.0.1:${harness.get(id).spec.port + 1000}`]),
    );
    const firstUrl = urls.get('server1')!;
    const serves = await waitFor(async () => ((await healthz(firstUrl)) ? true : undefined), {
      timeoutMs: 3000,
      what: 'the replicas to serve /healthz',
    }).catch(() => false);
    if (!serves) {
      for (const id of harness.ids()) {
        const r = harness.get(id);
        const others = harness.addresses().filter((a) => a !== r.address);
        // Like the server would: its own replica first, then the other members.
        const root = new ChatClient([r.address, ...others]);
        const api = chatApiFromClient(root);
        const http = await startHttpServer({
          host: '127.0.0.1',
          port: r.spec.port + 1000,
          gateway: api,
          logger: pino({ level: 'silent' }),
        });
        standIns.set(id, {
          close: async () => {
            await http.close();
            api.close();
            root.close();
          },
        });
      }
    }
    return {
      harness,
      urls,
      standIn: !serves,
      kill: async (id) => {
        await harness.kill(id, 'SIGKILL');
        await standIns.get(id)?.close();
        standIns.delete(id);
      },
      stop,
    };
  } catch (err) {
    await stop();
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

export interface TwoGateways {
  harness: Harness;
  urls: [string, string];
  /** Stops gateway `i` at once, dropping its connections, as if its process died. */
  kill(i: 0 | 1): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The page's failover mechanism without Raft: one real replica behind two gateways that name each
 * other as members, so a page on the first learns the second and must move there when the first dies.
 */
export async function startTwoGateways(): Promise<TwoGateways> {
  const harness = await defineCluster({ size: 1 });
  const gateways: { close(): Promise<void> }[] = [];
  const stop = async () => {
    for (const g of gateways.splice(0)) await g.close();
    await harness.destroy();
  };
  try {
    harness.start('server1');
    await harness.waitForVoters(['server1']);
    const address = harness.get('server1').address;
    const urls: string[] = [];
    const pseudo = ['gateway-a:1', 'gateway-b:2'];
    const closers: (() => Promise<void>)[] = [];
    for (let i = 0; i < 2; i++) {
      const root = new ChatClient([address]);
      const api = chatApiFromClient(root);
      const http = await startHttpServer({
        host: '127.0.0.1',
        port: 0,
        gateway: { ...api, members: () => pseudo },
        httpUrlFor: (a) => urls[pseudo.indexOf(a)],
        logger: pino({ level: 'silent' }),
      });
      urls.push(http.url);
      const close = async () => {
        await http.close();
        api.close();
        root.close();
      };
      closers.push(close);
      gateways.push({ close });
    }
    return {
      harness,
      urls: [urls[0], urls[1]],
      kill: async (i) => {
        const close = closers[i];
        closers[i] = async () => {};
        await close();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
