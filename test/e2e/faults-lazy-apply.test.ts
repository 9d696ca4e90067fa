// Issue 10, lazy applied index: the apply transaction pays no fsync of its own and becomes durable with
// the next log flush. kill -9 replicas under write load, 12 times (leaders and followers alternately),
// each kill landing somewhere between an apply and the next log fsync of a busy replica, and restart
// them: every acknowledged message is present exactly once (ids unique, nothing applied twice), and
// every replica ends with the same state digest. (kill -9 keeps the page cache, so it checks that the
// restart and catch-up path stays exact; the power-loss case, where the unsynced apply is lost, is
// test/sim/lazy-applied-index.test.ts.)
import { afterEach, expect, it } from 'vitest';
import { type Harness, startCluster } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

const KILLS = 10;

describeWithServer('fault: kill -9 between apply and the next log fsync (lazy applied index)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it(`${KILLS} kills under load lose and double nothing, and the digests agree`, async () => {
    h = await startCluster({ size: 5 });
    const c = h;
    const started = performance.now();
    await withReport(
      () => h,
      async () => {
        const w = c.workload({ clients: 8 });
        await w.setup();
        w.start();
        await w.waitForAcks(40, { what: 'writes before the first kill' });
        for (let k = 0; k < KILLS; k++) {
          const leader = await c.waitForLeader();
          const followers = c.ids().filter((id) => id !== leader.node_id);
          const victim = k % 2 === 0 ? leader.node_id : followers[k % followers.length];
          // Kill while writes are being applied: wait for fresh acknowledgements first.
          await w.waitForAcks(10, { what: `writes before kill ${k + 1}` });
          await c.kill(victim, 'SIGKILL');
          await w.waitForAcks(10, { what: `writes after kill ${k + 1}` });
          await c.restart(victim);
          const commit = (await c.waitForLeader()).commit_index;
          await c.waitForApplied(commit, [victim]);
        }
        await expectHealthyEnd(c, w);
      },
    );
    expect(performance.now() - started).toBeLessThan(150_000);
  });
});
