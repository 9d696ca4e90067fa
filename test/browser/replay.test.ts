// The simulator replay page against a real replica's HTTP server: a trace of a seed with a planted bug
// (vote-twice) loads from a file, steps event by event, reaches the failing moment, and the page says
// the invariant that failed, with its mark on the timeline. A garbled file is refused in one sentence.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotsForSeed } from '../../src/raft/sim/run-seed.js';
import { runSeedToFile } from '../../src/raft/sim/trace-file.js';
import { parseTrace } from '../../src/raft/sim/trace-format.js';
import { type Backend, launchBrowser, screenshot, startSingleServer, waitText } from './support.js';

/** The first seed that the planted bug makes fail (the run is deterministic, so it fails every time). */
async function failingTrace(dir: string): Promise<{ path: string; seed: number; message: string }> {
  for (let seed = 1; seed <= 30; seed++) {
    // As `make sim QC_SIM_PLANTED_BUG=vote-twice` runs it (snapshots on even seeds).
    const { result, path } = await runSeedToFile(
      seed,
      { plantedBug: 'vote-twice', snapshots: snapshotsForSeed(seed) },
      dir,
    );
    // The page says the checker's sentence without its own time stamp (it gives the run's moment).
    if (!result.ok) return { path, seed, message: result.failure!.replace(/^t=[\d.]+ms: /, '') };
    rmSync(path);
  }
  throw new Error('no seed in 1..30 fails with the planted bug vote-twice: the planted bug is not planted');
}

describe('simulator replay page', () => {
  let backend: Backend;
  let browser: Browser | undefined;
  let page: Page;
  let dir: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qc-replay-'));
    backend = await startSingleServer();
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads a planted-bug trace, steps to the failing moment, and shows the failed invariant', async () => {
    const { path, seed, message } = await failingTrace(dir);
    const trace = parseTrace(readFileSync(path, 'utf8'));
    const failAt = trace.events.indexOf(trace.failure!);
    await page.goto(`${backend.url}/cluster/replay`);
    await page.setInputFiles('#file', path);
    await waitText(page, '#summary', `seed ${seed}`);
    await waitText(page, '#summary', 'FAILED');
    expect(await page.locator('.card').count()).toBe(5);
    // Before its moment the failure is announced, not reached.
    expect(await page.locator('#failure').getAttribute('data-reached')).toBe('false');
    expect(await page.locator('#timeline .failure-mark').isVisible()).toBe(true);

    // Step through the first events, one at a time.
    for (let i = 1; i <= 3; i++) {
      await page.click('#step');
      expect(await page.locator('#position').getAttribute('data-index')).toBe(String(i));
    }
    // Go to the failure, one step back (not reached yet), then step onto it.
    await page.click('#to-failure');
    await page.click('#back');
    expect(await page.locator('#position').getAttribute('data-index')).toBe(String(failAt - 1));
    expect(await page.locator('#failure').getAttribute('data-reached')).toBe('false');
    await page.click('#step');
    expect(await page.locator('#position').getAttribute('data-index')).toBe(String(failAt));
    expect(await page.locator('#failure').getAttribute('data-reached')).toBe('true');
    const said = await page.locator('#failure').textContent();
    expect(said).toContain('Invariant failed at');
    expect(said).toContain(message);
    expect(await page.locator('#event').textContent()).toContain('INVARIANT FAILED');
    // The vote-twice failure happens in an election: some card shows a candidate at that moment.
    const roles = await page.$$eval('.card', (cs) => cs.map((c) => (c as HTMLElement).dataset.role));
    expect(roles.some((r) => r === 'candidate' || r === 'leader' || r === 'pre-candidate')).toBe(true);
    await screenshot(page, 'replay-failure.png');

    // Scrubbing back to the start and playing moves forward.
    await page.click('#back');
    await page.click('#play');
    await page.waitForFunction(
      (at) => Number(document.querySelector('#position')?.getAttribute('data-index')) > at,
      failAt - 1,
      { polling: 100, timeout: 10_000 },
    );
    expect(pageErrors).toEqual([]);
  });

  it('refuses a truncated file in one sentence', async () => {
    const { path } = await failingTrace(dir);
    const cut = join(dir, 'cut.jsonl');
    const text = readFileSync(path, 'utf8');
    writeFileSync(cut, text.slice(0, Math.floor(text.length / 2)));
    await page.goto(`${backend.url}/cluster/replay`);
    await page.setInputFiles('#file', cut);
    await waitText(page, '#load-error', 'The trace is truncated');
    expect(await page.locator('#player').isHidden()).toBe(true);
  });
});
