// The end-of-test checks every fault test shares: every acknowledged message present exactly once,
// no stale read, nothing went backwards, and all live replicas converge.
import { beforeAll, describe, expect } from 'vitest';
import type { Harness } from '../harness.js';
import { serverMissingReason } from '../harness.js';
import type { Workload } from './workload.js';

/**
 * `describe` for tests of the built server: without the build they FAIL (in beforeAll) with the reason,
 * never skip, so a missing build cannot pass for a green run.
 */
export function describeWithServer(title: string, body: () => void): void {
  describe(title, () => {
    beforeAll(() => {
      const missing = serverMissingReason();
      if (missing) throw new Error(`${missing}; run npm run build first`);
    });
    body();
  });
}

/** Run a test body; if it throws, append the cluster's state (roles, indices, temp root) to the error. */
export async function withReport(h: () => Harness | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const harness = h();
    if (harness && err instanceof Error)
      err.message = `${err.message}\n--- cluster ---\n${await harness.report()}`;
    throw err;
  }
}

/** Stop the workload, verify it, then wait for convergence of all live replicas. */
export async function expectHealthyEnd(h: Harness, w: Workload): Promise<void> {
  await w.stop();
  const v = await w.verify();
  expect(v.missing, 'acknowledged messages missing').toEqual([]);
  expect(v.duplicated, 'messages present more than once').toEqual([]);
  expect(v.unknown, 'messages nobody sent').toEqual([]);
  expect(v.idMismatch, 'messages whose id changed after acknowledgement').toEqual([]);
  expect(v.found).toBeGreaterThanOrEqual(w.acked.length);
  expect(w.staleReads, 'reads that missed an earlier acknowledged write').toEqual([]);
  await expectConverged(h);
}

export async function expectConverged(h: Harness): Promise<void> {
  const converged = await h.waitForConvergence({ timeoutMs: 30_000 });
  expect(converged.length).toBe(h.live().length);
  expect(new Set(converged.map((s) => s.state_digest)).size).toBe(1);
  expect(h.monotonicViolations, 'term, commit or applied index went backwards').toEqual([]);
}
