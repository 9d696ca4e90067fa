// Issue 4, fault test "Leader crash": kill -9 the leader under load, twice in a row, restarting the
// first between kills. Writes resume, every acknowledged message is present exactly once, and the
// restarted replica catches up.
import { afterEach, expect, it } from 'vitest';
import { type Harness, startCluster } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

describeWithServer('fault: leader crash (kill -9 twice)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('keeps acknowledging writes across two leader crashes and loses or duplicates nothing', async () => {
    h = await startCluster({ size: 5 });
    const c = h;
    await withReport(
      () => h,
      async () => {
        // Driven by ChatClient, the library the bundled clients use: its failover and retries (same key)
        // are part of what this test exercises.
        const w = c.workload({ clients: 8, client: 'chatclient' });
        await w.setup();
        w.start();
        await w.waitForAcks(40, { what: 'writes before the first kill' });

        const first = await c.waitForLeader();
        await c.kill(first.node_id, 'SIGKILL');
        const second = await c.waitForLeader({ not: first.node_id });
        expect(second.term).toBeGreaterThan(first.term);
        await w.waitForAcks(40, { what: 'writes after the first kill' });

        // The first victim comes back and catches up with what was committed while it was down.
        await c.restart(first.node_id);
        const commit = (await c.waitForLeader()).commit_index;
        await c.waitForApplied(commit, [first.node_id]);

        const current = await c.waitForLeader();
        await c.kill(current.node_id, 'SIGKILL');
        const third = await c.waitForLeader({ not: current.node_id });
        expect(third.term).toBeGreaterThan(current.term);
        await w.waitForAcks(40, { what: 'writes after the second kill' });

        await c.restart(current.node_id);
        await w.waitForAcks(20, { what: 'writes after the second restart' });
        await expectHealthyEnd(c, w);
      },
    );
  });
});
