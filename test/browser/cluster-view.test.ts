// The live cluster view against 5 real replicas: /cluster shows 5 cards with exactly one leader (the
// one the replicas themselves name), the log strips show each replica's commit index as GetStatus
// does, a cut link is drawn broken and its heal drawn too, and after kill -9 of the leader a new leader
// and its term show within 2 s (cards, strips and network), with the election in its feed, the active
// state highlighted in its chart, and its term change on the timeline saying why it happened.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../e2e/harness.js';
import { withReport } from '../e2e/support/checks.js';
import { type WebCluster, launchBrowser, screenshot, startWebCluster } from './support.js';

const healthProto = createRequire(import.meta.url).resolve('grpc-health-check/proto/health/v1/health.proto');

/** grpc.health.v1.Health/Check for the whole server (''). */
function healthOf(address: string): Promise<string> {
  const pkg = grpc.loadPackageDefinition(loadSync(healthProto, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    (client as unknown as { Check: (...a: unknown[]) => void }).Check(
      { service: '' },
      { deadline: Date.now() + 3000 },
      (err: Error | null, res: { status: string | number }) => {
        client.close();
        if (err) reject(err);
        else resolve(String(res.status));
      },
    );
  });
}

/** Ids of the cards that are up and say they lead. */
function leaders(page: Page): Promise<string[]> {
  return page.$$eval('.card[data-up="true"][data-role="leader"]', (cards) =>
    cards.map((c) => (c as HTMLElement).dataset.id ?? ''),
  );
}

describe('cluster view', () => {
  let cluster: WebCluster;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // The servers inherit the environment: development mode, as `make run` starts them.
    process.env.QC_DEV = '1';
    // Supervised, as `make run` supervises its replicas: the page can restart one.
    cluster = await startWebCluster(5, { supervise: true });
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // The page works under the server's Content-Security-Policy: Chromium reports every blocked
    // script, style, image or connection on the console.
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  });

  afterAll(async () => {
    Reflect.deleteProperty(process.env, 'QC_DEV');
    await browser?.close();
    await cluster?.stop();
  });

  it('serves /metrics and gRPC health on every replica (a leader with four peers, all SERVING)', async () => {
    const { harness, urls } = cluster;
    const leader = await harness.waitForLeader({ timeoutMs: 20_000 });
    const text = await (await fetch(`${urls.get(leader.node_id)}/metrics`)).text();
    expect(text).toContain('# TYPE qc_raft_peer_match_lag gauge');
    const peers = [...text.matchAll(/^qc_raft_peer_match_lag\{peer="([^"]+)"\} \d+$/gm)]
      .map((m) => m[1])
      .sort();
    expect(peers).toEqual(harness.ids().filter((id) => id !== leader.node_id));
    // The replicas' term may move on between the two reads, never back.
    const term = Number(/^qc_raft_term (\d+)$/m.exec(text)?.[1]);
    expect(term).toBeGreaterThanOrEqual(leader.term);
    for (const id of harness.ids()) {
      const body = await (await fetch(`${urls.get(id)}/metrics`)).text();
      expect(body).toMatch(/^qc_raft_role\{role="(leader|follower)"\} 1$/m);
      expect(body).toMatch(/^qc_raft_leader_known 1$/m);
      expect(await healthOf(harness.get(id).address)).toBe('SERVING');
    }
  });

  it('transfers leadership from the page, with the cluster secret (development mode)', async () => {
    const { harness, urls } = cluster;
    // The leader may still change right after start-up on a busy machine: find the leader, open another
    // replica's page, and wait for that leader's card; if leadership moved meanwhile, look again
    // (bounded: three tries).
    let before = await harness.waitForLeader({ timeoutMs: 20_000 });
    for (let attempt = 1; ; attempt++) {
      await page.goto(`${urls.get(harness.ids().find((id) => id !== before.node_id)!)}/cluster`);
      const shown = await page
        .waitForSelector(
          `.card[data-id="${before.node_id}"][data-role="leader"] button.transfer:not([disabled])`,
          { timeout: 20_000 },
        )
        .then(
          () => true,
          (err: unknown) => {
            if (attempt >= 3) throw err;
            return false;
          },
        );
      if (shown) break;
      before = await harness.waitForLeader({ timeoutMs: 20_000 });
    }
    const button = page.locator(`.card[data-id="${before.node_id}"] button.transfer`);
    await page.fill('#secret', 'not-the-secret');
    await button.click();
    await page.waitForFunction(
      () => document.querySelector('#dev-notice')?.textContent?.includes('The cluster secret given is wrong'),
      undefined,
      { polling: 100 },
    );

    await page.fill('#secret', readFileSync(join(harness.root, 'cluster.secret'), 'utf8').trim());
    await button.click();
    await page.waitForFunction(
      () => document.querySelector('#dev-notice')?.textContent?.includes('handed leadership over'),
      undefined,
      { polling: 100, timeout: 10_000 },
    );
    // On failure, the cluster's state and the replicas' last log lines say why leadership did not move.
    let after!: Awaited<ReturnType<typeof harness.waitForLeader>>;
    await withReport(
      () => harness,
      async () => {
        after = await harness.waitForLeader({ not: before.node_id, timeoutMs: 10_000 });
      },
    );
    await page.waitForSelector(`.card[data-id="${after.node_id}"][data-role="leader"]`, { timeout: 10_000 });
    // The secret stayed in the page's memory: nothing in the origin's storage.
    expect(await page.evaluate(() => [sessionStorage.length, localStorage.length])).toEqual([0, 0]);
    // The page carries the server's headers.
    const res = await page.goto(page.url());
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(res?.headers()['x-frame-options']).toBe('DENY');
    expect(pageErrors).toEqual([]);
  });

  it('restarts a replica from the page (kill -9, then start), and starts one that was stopped', async () => {
    const { harness, urls } = cluster;
    const lead = await harness.waitForLeader({ timeoutMs: 20_000 });
    const [host, victim] = harness.ids().filter((id) => id !== lead.node_id);
    await page.goto(`${urls.get(host)}/cluster`);
    await page.fill('#secret', readFileSync(join(harness.root, 'cluster.secret'), 'utf8').trim());
    const card = `.card[data-id="${victim}"]`;
    await page.waitForSelector(`${card}[data-up="true"] button.restart:not([disabled])`, { timeout: 20_000 });
    const pid = harness.get(victim).pid;

    await page.click(`${card} button.restart`);
    await page.waitForFunction(
      (id) => document.querySelector('#dev-notice')?.textContent?.includes(`${id} is restarting`),
      victim,
      { polling: 100, timeout: 10_000 },
    );
    await waitFor(() => harness.get(victim).starts === 2 && harness.get(victim).alive, {
      timeoutMs: 20_000,
      what: `${victim} started again by the launcher`,
    });
    expect(harness.get(victim).lastExit?.signal).toBe('SIGKILL');
    expect(harness.get(victim).pid).not.toBe(pid);
    await harness.waitForConvergence({ timeoutMs: 30_000 });
    await page.waitForSelector(`${card}[data-up="true"]`, { timeout: 20_000 });

    // Stop it (a graceful stop by the replica itself): its card goes grey and offers "Start", which a
    // live member passes on to the launcher.
    await page.click(`${card} button.stop`);
    await waitFor(() => !harness.get(victim).alive, { timeoutMs: 20_000, what: `${victim} to exit` });
    expect(harness.get(victim).lastExit?.code).toBe(0);
    await page.waitForSelector(`${card}[data-up="false"] button.restart:not([disabled])`, {
      timeout: 20_000,
    });
    expect(await page.locator(`${card} button.restart`).textContent()).toBe('Start');
    await page.click(`${card} button.restart`);
    await page.waitForFunction(
      (id) => document.querySelector('#dev-notice')?.textContent?.includes(`${id} is starting`),
      victim,
      { polling: 100, timeout: 10_000 },
    );
    await waitFor(() => harness.get(victim).starts === 3 && harness.get(victim).alive, {
      timeoutMs: 20_000,
      what: `${victim} started by the launcher`,
    });
    await page.waitForSelector(`${card}[data-up="true"]`, { timeout: 20_000 });
    expect(await page.locator(`${card} button.restart`).textContent()).toBe('Restart');
    await harness.waitForConvergence({ timeoutMs: 30_000 });
    expect(pageErrors).toEqual([]);
  });

  it('shows on the log strips the commit index that GetStatus reports, on every replica', async () => {
    const { harness, urls } = cluster;
    const lead = await harness.waitForLeader({ timeoutMs: 20_000 });
    await page.goto(`${urls.get(lead.node_id)}/cluster`);
    await page.waitForFunction(
      () => document.querySelectorAll('#strips .strip[data-up="true"]').length === 5,
      undefined,
      { polling: 100, timeout: 20_000 },
    );
    // The cluster is idle, so both settle; compare them as they are at the same moment.
    const agreed = await waitFor(
      async () => {
        const shown = await page.$$eval('#strips .strip', (rows) =>
          rows.map(
            (r) => [(r as HTMLElement).dataset.id, Number((r as HTMLElement).dataset.commit)] as const,
          ),
        );
        const said = await Promise.all(
          harness.ids().map(async (id) => [id, (await harness.status(id))?.commit_index] as const),
        );
        return JSON.stringify(shown) === JSON.stringify(said) ? shown : undefined;
      },
      { timeoutMs: 15_000, what: 'the strips and GetStatus to show the same commit indexes' },
    );
    expect(agreed).toHaveLength(5);
    for (const [, commit] of agreed) expect(commit).toBeGreaterThan(0);
    // The leader's row is marked, and each follower's row shows the match index the leader sees.
    const status = await harness.status(lead.node_id);
    expect(await page.locator(`#strips .strip[data-id="${lead.node_id}"]`).getAttribute('data-role')).toBe(
      'leader',
    );
    await page.waitForFunction(
      (last) =>
        Array.from(document.querySelectorAll<HTMLElement>('#strips .strip[data-role="follower"]')).every(
          (r) => Number(r.dataset.match) === last,
        ),
      status?.last_log_index,
      { polling: 100, timeout: 10_000 },
    );
    expect(
      await page.locator(`#strips .strip[data-id="${lead.node_id}"] .strip-marks`).textContent(),
    ).toContain(`commit ${status?.commit_index}`);
    expect(pageErrors).toEqual([]);
  });

  it('draws log strips of 100,000 entries within a frame, scrolled anywhere (the window only)', async () => {
    const { urls } = cluster;
    await page.goto(`${urls.get('server1')}/cluster`);
    // A string, so that the test runner does not rewrite the page's import() as its own.
    await page.evaluate("import('/cluster-draw.js').then((m) => { window.qcDraw = m; })");
    const out = await page.evaluate(() => {
      const draw = (window as unknown as { qcDraw: { drawStrips: (...a: unknown[]) => void } }).qcDraw;
      const box = document.createElement('div');
      box.style.width = '900px';
      document.body.append(box);
      // Five replicas with 100,000 entries over 256 terms; one lags, one has a snapshot.
      const runs = Array.from({ length: 256 }, (_, i) => ({
        fromIndex: 1 + Math.floor((i * 100_000) / 256),
        toIndex: Math.floor(((i + 1) * 100_000) / 256),
        term: i + 1,
      }));
      const replicas: Record<string, unknown> = {};
      for (let i = 1; i <= 5; i++) {
        const last = i === 5 ? 99_000 : 100_000;
        replicas[`r${i}`] = {
          id: `r${i}`,
          up: true,
          role: i === 1 ? 'leader' : 'follower',
          state: 'follower',
          term: 256,
          leaderId: 'r1',
          commitIndex: 99_990,
          lastApplied: 99_980,
          lastLogIndex: last,
          snapshotIndex: i === 4 ? 50_000 : 0,
          firstIndex: i === 4 ? 50_001 : 1,
          runs: runs
            .filter((r) => r.fromIndex <= last)
            .map((r) => ({ ...r, toIndex: Math.min(r.toIndex, last) })),
          match: i === 1 ? { r2: 100_000, r3: 100_000, r4: 100_000, r5: 99_000 } : undefined,
        };
      }
      const state = { at: 0, replicas, links: {}, messages: [], feed: [] };
      const n = 200;
      const time = (s: unknown, step: number) => {
        const t0 = performance.now();
        for (let k = 0; k < n; k++) draw.drawStrips(box, s, { back: k * step, cellPx: 4 });
        return (performance.now() - t0) / n;
      };
      // The same drawing for a log of 100 entries: the window alone costs, not the log's length.
      const small = {
        ...state,
        replicas: Object.fromEntries(
          Object.entries(replicas).map(([id, r]) => [
            id,
            {
              ...(r as object),
              lastLogIndex: 100,
              commitIndex: 90,
              lastApplied: 90,
              snapshotIndex: 0,
              runs: [{ fromIndex: 1, toIndex: 100, term: 1 }],
            },
          ]),
        ),
      };
      const smallMs = time(small, 0);
      const ms = time(state, 500);
      // Scrolled 60,000 back, the leader's row is painted (term colours, not blank).
      draw.drawStrips(box, state, { back: 60_000, cellPx: 4 });
      const canvas = box.querySelector('.strip[data-id="r1"] canvas') as HTMLCanvasElement;
      const px = canvas.getContext('2d')!.getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
      const rows = Array.from(box.querySelectorAll('.strip')).map(
        (r) => (r as HTMLElement).dataset.match ?? '-',
      );
      box.remove();
      return { ms, smallMs, painted: px[3] > 0, rows };
    });
    expect(out.painted).toBe(true);
    expect(out.rows).toEqual(['-', '100000', '100000', '100000', '99000']);
    // One 60 Hz frame is 16.7 ms: five strips of 100,000 entries fit in it, at about the cost of
    // five strips of 100 (only the window is drawn).
    expect(out.ms, JSON.stringify(out)).toBeLessThan(16);
    expect(out.ms, JSON.stringify(out)).toBeLessThan(Math.max(3 * out.smallMs, 2));
  });

  it('draws a cut link as broken (its messages dropped), and the heal', async () => {
    const { harness, urls } = cluster;
    const lead = await harness.waitForLeader({ timeoutMs: 20_000 });
    const other = harness.ids().find((id) => id !== lead.node_id)!;
    await page.goto(`${urls.get(other)}/cluster`);
    await page.fill('#secret', readFileSync(join(harness.root, 'cluster.secret'), 'utf8').trim());
    await page.waitForFunction(() => document.querySelectorAll('#network g.link').length === 10, undefined, {
      polling: 100,
      timeout: 20_000,
    });
    const [a, b] = [lead.node_id, other].sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
    const link = `#network g.link[data-a="${a}"][data-b="${b}"]`;
    // Heartbeats flow on the link, and it is whole.
    await page.waitForSelector(`${link}[data-broken="false"] .rate:text-matches("[1-9]")`, {
      timeout: 10_000,
    });
    await page.selectOption('#cut-a', a);
    await page.selectOption('#cut-b', b);
    await page.click('#cut');
    await page.waitForFunction(
      ([x, y]) => document.querySelector('#dev-notice')?.textContent === `The link ${x} ↔ ${y} is cut.`,
      [a, b],
      { polling: 100, timeout: 10_000 },
    );
    await page.waitForSelector(`${link}.broken`, { timeout: 5000 });
    // Broken by the traffic too, not only by the fault: the leader's transport drops its heartbeats.
    await page.waitForFunction(
      (sel) => document.querySelector(`${sel} title`)?.textContent?.includes('cut'),
      link,
      { polling: 100, timeout: 5000 },
    );
    const faults = await (await fetch(`${urls.get(lead.node_id)}/cluster/status`)).json();
    expect(faults.faults.cut).toEqual([other]);
    const drops = await waitFor(
      async () => {
        const n = await page.$eval(link, (g) => Number((g as HTMLElement).dataset.drops));
        return n > 0 ? n : undefined;
      },
      { timeoutMs: 5000, what: 'dropped messages counted on the cut link' },
    );
    expect(drops).toBeGreaterThan(0);
    // Only that link: the others are whole.
    expect(await page.$$eval('#network g.link.broken', (gs) => gs.length)).toBe(1);

    await page.click('#heal');
    await page.waitForFunction(
      () => document.querySelector('#dev-notice')?.textContent?.startsWith('All links healed'),
      undefined,
      { polling: 100, timeout: 10_000 },
    );
    await page.waitForSelector(`${link}[data-broken="false"]`, { timeout: 5000 });
    expect(await page.$$eval('#network g.link.broken', (gs) => gs.length)).toBe(0);
    const healed = await (await fetch(`${urls.get(lead.node_id)}/cluster/status`)).json();
    expect(healed.faults.cut).toEqual([]);
    await harness.waitForConvergence({ timeoutMs: 30_000 });
    expect(pageErrors).toEqual([]);
  });

  it('draws a paused follower as pre-candidate (its pre-votes go nowhere) with every link broken, then whole', async () => {
    const { harness, urls } = cluster;
    const lead = await harness.waitForLeader({ timeoutMs: 20_000 });
    const victim = harness.ids().find((id) => id !== lead.node_id)!;
    await page.goto(`${urls.get(lead.node_id)}/cluster`);
    await page.fill('#secret', readFileSync(join(harness.root, 'cluster.secret'), 'utf8').trim());
    const card = `.card[data-id="${victim}"]`;
    await page.waitForSelector(`${card}[data-up="true"] button.pause:not([disabled])`, { timeout: 20_000 });
    await page.click(`${card} button.pause`);
    // Cut off, it times out and asks for pre-votes that never arrive: GetStatus says candidate, the
    // page says what it is.
    await page.waitForSelector(`${card}[data-role="pre-candidate"]`, { timeout: 5000 });
    expect(await page.locator(`${card} .role`).textContent()).toBe('pre-candidate');
    expect((await harness.status(victim))?.role).toBe('candidate');
    await page.waitForSelector(`#network g.node[data-id="${victim}"][data-role="pre-candidate"]`, {
      timeout: 5000,
    });
    // Its four links drop messages (at its end), and only those.
    await page.waitForFunction(
      (id) => {
        const broken = Array.from(document.querySelectorAll<HTMLElement>('#network g.link.broken'));
        return broken.length === 4 && broken.every((g) => g.dataset.a === id || g.dataset.b === id);
      },
      victim,
      { polling: 100, timeout: 5000 },
    );
    // The pause (5 s) ends: it follows the leader again and its links are whole.
    await page.waitForSelector(`${card}[data-role="follower"]`, { timeout: 15_000 });
    await page.waitForFunction(
      () => document.querySelectorAll('#network g.link.broken').length === 0,
      undefined,
      { polling: 100, timeout: 10_000 },
    );
    await harness.waitForConvergence({ timeoutMs: 30_000 });
    expect(pageErrors).toEqual([]);
  });

  it('starts its timeline when the page opens, so a term change in its first moments gets a mark', async () => {
    // The first frame used to be recorded one tick (250 ms) after the script ran: a leader killed
    // just after the page showed it started an election before the timeline's first frame, and its
    // term never got a mark (the kill test below failed so, in about one run in six). The script
    // runs before DOMContentLoaded (a module) and the first tick comes a quarter second after it.
    await page.goto(`${cluster.urls.get('server1')}/cluster`);
    // The timeline is drawn (its range starts at the first frame kept).
    await page.waitForFunction(
      () => Number(document.querySelector<HTMLInputElement>('#timeline input[type=range]')?.min) > 0,
      undefined,
      { polling: 100, timeout: 5000 },
    );
    const { first, loaded } = await page.evaluate(() => {
      const range = document.querySelector<HTMLInputElement>('#timeline input[type=range]')!;
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return { first: Number(range.min), loaded: performance.timeOrigin + nav.domContentLoadedEventEnd };
    });
    // Both are the page's clock; the slack is for rounding, far under the quarter second it was late.
    expect(first).toBeLessThanOrEqual(loaded + 100);
  });

  it('shows 5 replicas with one leader, and a new leader within 2 s after the leader is killed', async () => {
    const { harness, urls } = cluster;
    const first = await harness.waitForLeader({ timeoutMs: 20_000 });
    // The page is served by a replica that survives the kill.
    const host = harness.ids().find((id) => id !== first.node_id)!;
    await page.goto(`${urls.get(host)}/cluster`);

    await page.waitForFunction(
      () => {
        const up = document.querySelectorAll('.card[data-up="true"]');
        const lead = document.querySelectorAll('.card[data-up="true"][data-role="leader"]');
        return up.length === 5 && lead.length === 1;
      },
      undefined,
      { polling: 100, timeout: 20_000 },
    );
    expect(await page.locator('.card').count()).toBe(5);
    // What the page shows is what the replicas say over gRPC (compared as both are now: a busy
    // machine can see a spare election while the cluster settles).
    const leaderId = await waitFor(
      async () => {
        const status = await harness.waitForLeader({ timeoutMs: 5000 });
        const shown = await leaders(page);
        return shown.length === 1 && shown[0] === status.node_id ? status.node_id : undefined;
      },
      { timeoutMs: 10_000, what: 'the page and the replicas to name the same leader' },
    );
    const leaderCard = page.locator(`.card[data-id="${leaderId}"]`);
    expect(await leaderCard.locator('.state').textContent()).toBe('leader.active');
    // The chart highlights the active state: the leader.active node inside the leader cluster.
    expect(await leaderCard.locator('.chart g.node.active > title').allTextContents()).toEqual([
      'leader_active',
    ]);
    expect(await leaderCard.locator('.chart g.cluster.active > title').allTextContents()).toEqual([
      'cluster_leader',
    ]);
    const follower = page.locator('.card[data-up="true"][data-role="follower"]').first();
    const state = (await follower.getAttribute('data-state')) ?? '';
    expect(await follower.locator('.chart g.node.active > title').allTextContents()).toEqual([state]);
    expect(['follower', 'preCandidate']).toContain(state);

    const oldTerm = Number(await leaderCard.getAttribute('data-term'));
    const killedAt = Date.now();
    await cluster.kill(leaderId);
    const left = Math.max(1, 2000 - (Date.now() - killedAt));
    // The new leader and its (higher) term, on its card, its log strip and its node in the network.
    await page
      .waitForFunction(
        ([old, term]) => {
          const lead = Array.from(
            document.querySelectorAll<HTMLElement>('.card[data-up="true"][data-role="leader"]'),
          );
          if (lead.length !== 1 || lead[0].dataset.id === old) return false;
          const id = lead[0].dataset.id;
          const t = Number(lead[0].dataset.term);
          const node = document.querySelector<HTMLElement>(`#network g.node[data-id="${id}"]`);
          const strip = document.querySelector<HTMLElement>(`#strips .strip[data-id="${id}"]`);
          return (
            t > term &&
            node?.dataset.role === 'leader' &&
            Number(node.dataset.term) === t &&
            strip?.dataset.role === 'leader'
          );
        },
        [leaderId, oldTerm] as const,
        { polling: 100, timeout: left },
      )
      .catch(async (err: Error) => {
        const cards = await page.$$eval('.card', (cs) =>
          cs.map(
            (c) =>
              `${(c as HTMLElement).dataset.id}:${(c as HTMLElement).dataset.up}:${(c as HTMLElement).dataset.role}`,
          ),
        );
        throw new Error(
          `no new leader on the page 2 s after the kill (cards ${cards.join(' ')}): ${err.message}`,
        );
      });
    const [newLeader] = await leaders(page);
    expect(newLeader).not.toBe(leaderId);
    const newCard = page.locator(`.card[data-id="${newLeader}"]`);
    await screenshot(page, 'cluster-view.png');

    // The killed replica's card is greyed out, and the new leader's feed tells how it won.
    // (Its stream's end reaches the page on its own time; on a loaded machine the election can be quicker.)
    await page.waitForSelector(`.card[data-id="${leaderId}"][data-up="false"]`, { timeout: 5000 });
    const feed = await newCard.locator('.feed .text').allTextContents();
    expect(
      feed.some((t) => /^candidate → leader\.active \(/.test(t)),
      feed.join(' | '),
    ).toBe(true);
    expect(
      feed.some((t) => /^preCandidate → candidate \(/.test(t)),
      feed.join(' | '),
    ).toBe(true);
    // The page and the replicas agree on the leader (a loaded machine may see a second election
    // right after the first, so compare the two as they are now, not the first one the page saw).
    const agreed = await waitFor(
      async () => {
        const status = await harness.waitForLeader({ not: leaderId, timeoutMs: 5000 });
        const shown = await leaders(page);
        return shown.length === 1 && shown[0] === status.node_id ? status.node_id : undefined;
      },
      { timeoutMs: 10_000, what: 'the page and the replicas to name the same leader' },
    );
    expect(agreed).not.toBe(leaderId);
    expect(await page.locator('#summary').getAttribute('data-leaders')).toBe('1');

    // Time travel: the timeline marks the new term; clicking it says why, and scrubs back to then.
    const newTerm = Number(await newCard.getAttribute('data-term'));
    const mark = page.locator(`#timeline .term-mark[data-term="${newTerm}"]`);
    await mark.waitFor({ timeout: 5000 }).catch(async (err: Error) => {
      const marks = await page.$$eval('#timeline .term-mark', (bs) =>
        bs.map((b) => `${(b as HTMLElement).dataset.term}@${(b as HTMLElement).dataset.at}`),
      );
      const cards = await page.$$eval('.card', (cs) =>
        cs.map((c) => {
          const e = c as HTMLElement;
          const feed = Array.from(e.querySelectorAll('.feed li'), (li) => li.textContent).join(' | ');
          return `${e.dataset.id} up=${e.dataset.up} ${e.dataset.role} t${e.dataset.term}: ${feed}`;
        }),
      );
      const range = await page.$eval('#timeline input[type=range]', (r) => {
        const i = r as HTMLInputElement;
        return `${i.min}..${i.max} (now ${Date.now()})`;
      });
      throw new Error(
        `no mark for term ${newTerm} (page errors ${JSON.stringify(pageErrors)}; timeline ${range}; marks ${marks.join(' ')}; cards\n${cards.join('\n')}): ${err.message}`,
      );
    });
    await mark.click();
    const why = (await page.locator('#why').textContent()) ?? '';
    expect(why).toMatch(
      new RegExp(`^Term ${newTerm}: server\\d+ started an election because its election timeout fired`),
    );
    await page.waitForSelector('#timeline[data-live="false"]', { timeout: 2000 });
    // Back then, when the timeout fired, nobody had the new term yet: every replica is drawn as it was,
    // at an older term (with pre-vote, the term moves only once the pre-vote is won).
    const terms = await page.$$eval('#network g.node', (gs) =>
      gs.map((g) => Number((g as HTMLElement).dataset.term)),
    );
    expect(terms).toHaveLength(5);
    for (const t of terms) expect(t).toBeLessThan(newTerm);
    expect(Number(await newCard.getAttribute('data-term'))).toBeLessThan(newTerm);
    await page.click('#live');
    await page.waitForSelector('#timeline[data-live="true"]', { timeout: 2000 });
    expect(pageErrors).toEqual([]);
  });
});
