// Issue 4, fault test "Two failures": kill -9 two followers (then the leader and one follower) under
// load; the cluster keeps accepting writes. Kill a third: writes fail with UNAVAILABLE or
// DEADLINE_EXCEEDED and nothing is acknowledged. Restart all: nothing acknowledged is lost.
import { afterEach, expect, it } from 'vitest';
import { ChatCaller, grpcCode, newKey } from '../../src/bench/rpc.js';
import { type Harness, Status, startCluster } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

describeWithServer('fault: two failures, then a third', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('serves with any two of five down, acknowledges nothing with three down, and loses nothing', async () => {
    h = await startCluster({ size: 5 });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const w = c.workload({ clients: 8 });
        await w.setup();
        w.start();
        await w.waitForAcks(30, { what: 'writes before any kill' });

        // Two followers down.
        const lead = await c.waitForLeader();
        const followers = c.ids().filter((id) => id !== lead.node_id);
        const [f1, f2] = followers;
        await Promise.all([c.kill(f1, 'SIGKILL'), c.kill(f2, 'SIGKILL')]);
        await w.waitForAcks(30, { what: 'writes with two followers down' });
        await Promise.all([c.restart(f1), c.restart(f2)]);
        await c.waitForApplied((await c.waitForLeader()).commit_index, [f1, f2]);

        // The leader and a follower down.
        const lead2 = await c.waitForLeader();
        const f3 = c.ids().find((id) => id !== lead2.node_id)!;
        await Promise.all([c.kill(lead2.node_id, 'SIGKILL'), c.kill(f3, 'SIGKILL')]);
        await c.waitForLeader({ not: lead2.node_id });
        await w.waitForAcks(30, { what: 'writes with the leader and a follower down' });

        // A third failure: only two of five remain, so nothing can commit.
        await w.stop();
        const ackedBefore = w.acked.length;
        const third = c.live()[0].spec.id;
        await c.kill(third, 'SIGKILL');
        const survivors = c.live().map((r) => r.address);
        expect(survivors).toHaveLength(2);
        const p = w.party(0);
        const outcomes: (number | undefined)[] = [];
        const caller = new ChatCaller(survivors, { attemptMs: 1500, totalMs: 4000 });
        try {
          const probes = [
            ...survivors.map((address) => ({ only: address, attemptMs: 3000 })),
            { totalMs: 4000 }, // with the client's own retries across both survivors
          ];
          for (const [i, opts] of probes.entries()) {
            const content = `no-quorum-${i}`;
            w.noteSent(content);
            const r = await caller
              .call('SendMessage', { chat_id: p.chatId, content }, { token: p.token, key: newKey(), ...opts })
              .then(() => 'acknowledged' as const)
              .catch((err: unknown) => grpcCode(err));
            expect(r, `probe ${i} must not be acknowledged without a quorum`).not.toBe('acknowledged');
            outcomes.push(r as number | undefined);
          }
        } finally {
          caller.close();
        }
        for (const code of outcomes) expect([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]).toContain(code);
        expect(w.acked.length).toBe(ackedBefore);

        // Everyone back: nothing acknowledged is lost, and writes flow again.
        await Promise.all(
          c
            .ids()
            .filter((id) => !c.get(id).alive)
            .map((id) => c.restart(id)),
        );
        await c.waitForLeader({ timeoutMs: 30_000 });
        w.start();
        await w.waitForAcks(20, { what: 'writes after restarting all', timeoutMs: 30_000 });
        await expectHealthyEnd(c, w);
      },
    );
  });
});
