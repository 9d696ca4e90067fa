// Issue 4, fault test "Full restart": kill -9 all five replicas (under load) and restart them. All
// acknowledged data is present, terms have not gone backwards, and digests are equal.
import { afterEach, expect, it } from 'vitest';
import { type Harness, startCluster } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

describeWithServer('fault: full restart (kill -9 all five)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('restarts from disk with every acknowledged message, no term going backwards, equal digests', async () => {
    h = await startCluster({ size: 5 });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const w = c.workload({ clients: 8 });
        await w.setup();
        w.start();
        await w.waitForAcks(60, { what: 'writes before the crash' });

        const before = await c.statuses();
        expect(before.size).toBe(5);
        await Promise.all(c.ids().map((id) => c.kill(id, 'SIGKILL')));
        const ackedAtCrash = w.acked.length;

        await Promise.all(c.ids().map((id) => c.restart(id)));
        const lead = await c.waitForLeader({ timeoutMs: 30_000 });
        expect(lead.term).toBeGreaterThanOrEqual(Math.max(...[...before.values()].map((s) => s.term)));
        await w.waitForAcks(30, { what: 'writes after the restart', timeoutMs: 30_000 });
        expect(w.acked.length).toBeGreaterThan(ackedAtCrash);

        await expectHealthyEnd(c, w);
        const after = await c.statuses();
        for (const [id, s] of before) {
          expect(after.get(id)?.term, `${id} term`).toBeGreaterThanOrEqual(s.term);
          expect(after.get(id)?.last_applied, `${id} last_applied`).toBeGreaterThanOrEqual(s.last_applied);
        }
      },
    );
  });
});
