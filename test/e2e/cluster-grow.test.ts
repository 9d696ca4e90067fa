// Issue 5, fault test "Grow": start one server, add four more one by one with --peers (as the README
// does), and confirm that writes committed before each join are present on the joiner: it applies
// past the commit index of the moment it joined, and its state digest equals the others'.
import { afterEach, expect, it } from 'vitest';
import { type Harness, startCluster } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

describeWithServer('cluster: grow from one server to five with --peers', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('each joiner becomes a voter holding every write committed before it joined', async () => {
    h = await startCluster({ size: 5, bootOnly: true });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const w = c.workload({ clients: 4 });
        await w.setup();
        const members = ['server1'];
        for (let k = 2; k <= 5; k++) {
          w.start();
          await w.waitForAcks(15, { what: `writes before server${k} joins` });
          await w.stop();
          const lead = await c.waitForLeader();
          const committed = lead.commit_index;

          const joiner = `server${k}`;
          expect(c.get(joiner).spec.peers).toEqual([c.get('server1').address]);
          c.start(joiner);
          members.push(joiner);
          await c.waitForVoters(members);
          await c.waitForApplied(committed, [joiner]);
          const converged = await c.waitForConvergence();
          expect(converged.map((s) => s.node_id).sort()).toEqual([...members].sort());
          const mine = converged.find((s) => s.node_id === joiner)!;
          expect(mine.last_applied).toBeGreaterThanOrEqual(committed);
          expect(
            mine.members
              .filter((m) => m.voter)
              .map((m) => m.id)
              .sort(),
          ).toEqual([...members].sort());
        }
        w.start();
        await w.waitForAcks(10);
        await expectHealthyEnd(c, w);
      },
    );
  });
});
