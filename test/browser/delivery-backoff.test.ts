// A delivery that fails must not be retried at once, again and again. The page used to: a failed
// ReadMessages ends with a chat-list refresh, the list still counts the message unread, and the
// refresh starts the next delivery, about once per round trip. Refused by the write rate limit, the
// page then spends the user's budget as fast as it refills. Here every ReadMessages is answered
// RESOURCE_EXHAUSTED in the browser: the automatic retries must come 1 s, then 2 s apart (lower
// bounds, which a loaded machine only makes easier to meet), and once the refusals stop, the message
// is delivered without a click.
import type { Route } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../e2e/harness.js';
import { api, useRoutedPage, waitMessages } from './support.js';

describe('web client: a failed delivery backs off', () => {
  const setup = useRoutedPage();

  it('retries ReadMessages after 1 s, then 2 s, and delivers once it is no longer refused', async () => {
    const { backend, context: bob, page, alice, chat_id } = setup();
    const refusedAt: number[] = [];
    await bob.route('**/api/ReadMessages', async (route: Route) => {
      refusedAt.push(Date.now());
      await route.fulfill({
        status: 429,
        json: { code: 'RESOURCE_EXHAUSTED', message: 'Too many writes; try again in a moment.' },
      });
    });
    await api(backend.url, 'SendMessage', { chat_id, content: 'first' }, alice);
    await page.goto(`${backend.url}/#/chat/${encodeURIComponent(chat_id)}`);

    await waitFor(async () => (refusedAt.length >= 3 ? true : undefined), {
      timeoutMs: 20_000,
      what: 'three refused deliveries',
    });
    const gaps = [refusedAt[1] - refusedAt[0], refusedAt[2] - refusedAt[1]];
    // The timers may fire a little early against this process's clock; 10% of slack.
    expect(gaps[0], `gaps ${gaps}`).toBeGreaterThanOrEqual(900);
    expect(gaps[1], `gaps ${gaps}`).toBeGreaterThanOrEqual(1800);

    await bob.unroute('**/api/ReadMessages');
    await waitMessages(page, ['first'], 20_000);
  });
});
