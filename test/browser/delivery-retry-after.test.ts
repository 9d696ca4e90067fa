// A refusal that says how long to wait is believed. The write rate limit answers RESOURCE_EXHAUSTED
// with `retry-after-ms`; the gateway passes it on as `retry_after_ms` (and HTTP's Retry-After), and the
// page's automatic delivery must not come back sooner, though its own back-off would start at 1 s.
// Here the first ReadMessages is refused with a wait of 3.5 s: the second attempt must come no earlier
// (a lower bound, which a loaded machine only makes easier to meet), and it delivers.
import type { Route } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../e2e/harness.js';
import { api, useRoutedPage, waitMessages } from './support.js';

const WAIT_MS = 3500;

describe('web client: a rate limit’s wait', () => {
  const setup = useRoutedPage();

  it('retries a refused delivery only after the retry_after_ms it was given', async () => {
    const { backend, context: bob, page, alice, chat_id } = setup();
    const askedAt: number[] = [];
    await bob.route('**/api/ReadMessages', async (route: Route) => {
      askedAt.push(Date.now());
      if (askedAt.length > 1) return route.continue();
      await route.fulfill({
        status: 429,
        headers: { 'retry-after': String(Math.ceil(WAIT_MS / 1000)) },
        json: {
          code: 'RESOURCE_EXHAUSTED',
          message: 'Too many writes; try again in 3.5 s.',
          retry_after_ms: WAIT_MS,
        },
      });
    });
    await api(backend.url, 'SendMessage', { chat_id, content: 'first' }, alice);
    await page.goto(`${backend.url}/#/chat/${encodeURIComponent(chat_id)}`);

    await waitMessages(page, ['first'], 20_000);
    await waitFor(async () => (askedAt.length >= 2 ? true : undefined), {
      timeoutMs: 5000,
      what: 'the delivery that succeeded',
    });
    // The timer may fire a little early against this process's clock; 10% of slack.
    const gap = askedAt[1] - askedAt[0];
    expect(gap, `gap ${gap} ms`).toBeGreaterThanOrEqual(WAIT_MS * 0.9);
  });
});
