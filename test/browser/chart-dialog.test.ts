// The chart dialog of /cluster against 5 real replicas: a click on a replica opens its replica,
// replication and chat charts, every text at a readable size; the lit state is the one the replica
// reports (/cluster/status); a transition is animated on its edge as it fires (a leadership transfer
// to the replica whose dialog is open); and feed lines never break inside a token.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../e2e/harness.js';
import { type WebCluster, launchBrowser, pageWithErrors, screenshot, startWebCluster } from './support.js';

interface Status {
  state: string;
  role: string;
  charts?: { replica: string; replication: string | null; chat: string };
}

async function statusOf(url: string): Promise<Status> {
  return (
    await fetch(`${url}/cluster/status`, { signal: AbortSignal.timeout(3000) })
  ).json() as Promise<Status>;
}

/** The lit state as the dialog draws it: active clusters' and nodes' first texts, outermost first. */
function litState(page: Page): Promise<string> {
  return page.evaluate(() => {
    const svg = document.querySelector('#charts .charts-view svg');
    if (!svg) return '';
    const first = (g: Element) => g.querySelector(':scope > text')?.textContent ?? '';
    const clusters = Array.from(svg.querySelectorAll('g.cluster.active')).map(first);
    const nodes = Array.from(svg.querySelectorAll('g.node.active')).map(first);
    // Parallel regions: one lit node per region, joined as the status joins them.
    if (clusters.length > 1 && nodes.length === clusters.length)
      return clusters.map((c, i) => `${c}.${nodes[i]}`).join(',');
    return [...clusters, ...nodes].join('.');
  });
}

describe('chart dialog', () => {
  let cluster: WebCluster;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    process.env.QC_DEV = '1';
    cluster = await startWebCluster(5);
    browser = await launchBrowser();
    page = await pageWithErrors(browser, pageErrors);
  });

  afterAll(async () => {
    Reflect.deleteProperty(process.env, 'QC_DEV');
    await browser?.close();
    await cluster?.stop();
  });

  it('opens a replica’s charts with the active state lit, as /cluster/status names it, and readable', async () => {
    const { harness, urls } = cluster;
    await harness.waitForLeader({ timeoutMs: 20_000 });
    await page.goto(`${urls.get(harness.ids()[0]!)}/cluster`);
    // The leader as the page shows it (leadership can move on a loaded machine after a gRPC look).
    const leaderId = String(
      await (
        await page.waitForFunction(
          () => {
            const lead = document.querySelectorAll<HTMLElement>('.card[data-up="true"][data-role="leader"]');
            return lead.length === 1 ? lead[0]!.dataset.id : null;
          },
          undefined,
          { polling: 100, timeout: 30_000 },
        )
      ).jsonValue(),
    );
    const leader = { node_id: leaderId };
    // A click on the replica (its chart thumbnail) opens the dialog.
    await page.click(`.card[data-id="${leader.node_id}"] .chart`);
    await page.waitForSelector(`#charts[open][data-replica="${leader.node_id}"]`, { timeout: 5000 });

    for (const level of ['reference', 'overview'] as const) {
      await page.click(`#charts .charts-level[data-level="${level}"]`);
      for (const machine of ['replica', 'replication', 'chat'] as const) {
        await page.click(`#charts .charts-tab[data-machine="${machine}"]`);
        await page.waitForSelector(
          `#charts[data-machine="${machine}"][data-level="${level}"] .charts-view svg g.active`,
          { timeout: 10_000 },
        );
        // The lit state is what the replica reports now (compared until both agree: leadership can
        // move on a loaded machine between the two reads).
        const want = await waitFor(
          async () => {
            const s = await statusOf(urls.get(leader.node_id)!);
            const st =
              machine === 'replica' ? s.state : machine === 'chat' ? s.charts?.chat : s.charts?.replication;
            if (!st) return undefined;
            // The overview folds the leader's inner states into the role.
            const shown = level === 'overview' && machine === 'replica' ? st.split('.')[0] : st;
            return (await litState(page)) === shown ? shown : undefined;
          },
          { timeoutMs: 10_000, what: `the ${level} ${machine} chart to light the reported state` },
        );
        expect(await page.getAttribute('#charts', 'data-state')).toContain(want.split('.')[0]);
        // Every state and event name can be read at the size the dialog opens with.
        const small = await page.$$eval('#charts .charts-view svg text', (ts) =>
          ts
            .map((t) => ({ text: t.textContent ?? '', h: t.getBoundingClientRect().height }))
            .filter((t) => t.text.trim() !== '' && t.h < 11),
        );
        expect(small, `${level} ${machine}: texts drawn under 11 px`).toEqual([]);
      }
    }
    // Zoom works both ways; the reference replica chart is larger than the window, so it scrolls.
    await page.click('#charts .charts-tab[data-machine="replica"]');
    await page.click('#charts .charts-level[data-level="reference"]');
    const width = () => page.$eval('#charts .charts-view svg', (s) => s.getBoundingClientRect().width);
    const at100 = await width();
    await page.click('#charts .zoom-in');
    expect(await width()).toBeGreaterThan(at100 * 1.1);
    await page.click('#charts .zoom-reset');
    expect(Math.abs((await width()) - at100)).toBeLessThan(2);
    expect(
      await page.$eval(
        '#charts .charts-view',
        (v) => v.scrollHeight > v.clientHeight || v.scrollWidth > v.clientWidth,
      ),
    ).toBe(true);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#charts[open]', { state: 'detached' });
    expect(pageErrors).toEqual([]);
  });

  it('animates a transition as it fires: a leadership transfer to the replica whose charts are open', async () => {
    const { harness, urls } = cluster;
    const secret = readFileSync(join(harness.root, 'cluster.secret'), 'utf8').trim();
    // Open a follower's charts, then ask the leader to hand over to it. On a loaded machine leadership
    // can move between finding the leader and asking it: then look again (bounded: three tries).
    let target = '';
    for (let attempt = 1; ; attempt++) {
      const leader = await harness.waitForLeader({ timeoutMs: 20_000 });
      target = harness.ids().find((id) => id !== leader.node_id)!;
      await page.goto(`${urls.get(target)}/cluster`);
      await page.waitForSelector(`.card[data-id="${target}"][data-up="true"]`, { timeout: 20_000 });
      await page.click(`.card[data-id="${target}"] button.charts-open`);
      await page.waitForSelector(
        `#charts[open][data-replica="${target}"][data-level="overview"] svg g.active`,
      );
      const res = await fetch(`${urls.get(leader.node_id)}/cluster/control`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'transfer', to: target }),
      });
      if (res.status === 200) break;
      if (attempt >= 3) throw new Error(`the transfer to ${target} failed: ${await res.text()}`);
    }
    // The edge that won it fired (candidate → leader; the dialog keeps the last edges it animated).
    await page.waitForFunction(
      () => (document.querySelector('#charts')?.getAttribute('data-fired') ?? '').includes('->leader'),
      undefined,
      { polling: 100, timeout: 10_000 },
    );
    await screenshot(page, 'chart-dialog.png');
    // The lit state follows the replica: what it reports now (on a loaded machine it may already have
    // moved on from leader.active; the feed below keeps the record).
    await waitFor(
      async () => {
        const s = await statusOf(urls.get(target)!);
        return (await page.getAttribute('#charts', 'data-state')) === s.state ? true : undefined;
      },
      { timeoutMs: 10_000, what: `the dialog to light the state ${target} reports` },
    );
    // The dialog's feed says it in plain words.
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll('#charts .charts-feed .text')).some((t) =>
          /^candidate → leader\.active \(/.test(t.textContent ?? ''),
        ),
      undefined,
      { polling: 100, timeout: 10_000 },
    );
    const feed = await page.locator('#charts .charts-feed .text').allTextContents();
    expect(
      feed.some((t) => /^candidate → leader\.active \(/.test(t)),
      feed.join(' | '),
    ).toBe(true);
    expect(
      feed.some((t) => t.includes('timeout now (transfer)')),
      feed.join(' | '),
    ).toBe(true);
    expect(feed.join(' ')).not.toContain('xstate.');
    await page.keyboard.press('Escape');
    expect(pageErrors).toEqual([]);
  });

  it('never breaks a feed line inside a token, only between tokens', async () => {
    const { urls, harness } = cluster;
    await page.goto(`${urls.get(harness.ids()[0]!)}/cluster`);
    await page.waitForSelector('.card .feed');
    // The page's own module, imported in the page (a string: the test's bundler must not rewrite it).
    await page.evaluate("import('/charts.js').then((m) => { window.qcFeedText = m.feedText; })");
    const lines = await page.evaluate(() => {
      const feedText = (window as unknown as { qcFeedText: (t: string) => HTMLElement }).qcFeedText;
      const feed = document.querySelector('.card .feed') as HTMLElement;
      const li = document.createElement('li');
      li.append(
        feedText(
          'preCandidate → candidate.campaigning.waitingForVotes (AppendEntriesResponse pre-candidate)',
        ),
      );
      feed.prepend(li);
      // A card this narrow must wrap the line several times.
      (feed.closest('.card') as HTMLElement).style.width = '190px';
      const toks = Array.from(li.querySelectorAll('.tok'));
      const range = document.createRange();
      const split = toks.filter((t) => {
        range.selectNodeContents(t);
        const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
        return tops.size !== 1;
      });
      range.selectNodeContents(li.querySelector('.text')!);
      const rows = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top))).size;
      return { tokens: toks.length, split: split.map((t) => t.textContent), rows };
    });
    expect(lines.tokens).toBe(5);
    expect(lines.rows).toBeGreaterThan(1);
    expect(lines.split).toEqual([]);
  });
});
