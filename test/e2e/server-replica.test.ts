// The server process as a Raft replica (src/server/replica.ts, main.ts): a leader that gets SIGTERM
// hands leadership over before it exits 0, and a joiner whose --peers nobody answers exits non-zero with
// one line and leaves its data dir fresh for the next attempt.
import * as fs from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { type Harness, startCluster } from './harness.js';
import { describeWithServer, withReport } from './support/checks.js';

describeWithServer('server: Raft replica start and stop', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('a leader that gets SIGTERM hands over first, then exits 0', async () => {
    h = await startCluster({ size: 3 });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const lead = await c.waitForLeader();
        await c.kill(lead.node_id, 'SIGTERM', { timeoutMs: 15_000 });
        expect(c.get(lead.node_id).lastExit).toEqual({ code: 0, signal: null });
        const log = fs.readFileSync(c.get(lead.node_id).stderrPath, 'utf8');
        expect(log).toMatch(/"outcome":"ok".*leadership handed over before stopping/);
        const next = await c.waitForLeader({ not: lead.node_id });
        expect(next.term).toBeGreaterThan(lead.term);
      },
    );
  });

  it('a joiner that reaches no peer exits non-zero with one line and keeps its data dir fresh', async () => {
    h = await startCluster({ size: 2, bootOnly: true });
    const c = h;
    await withReport(
      () => h,
      async () => {
        await c.kill('server1', 'SIGKILL');
        const joiner = c.get('server2');
        c.start('server2');
        await joiner.exited;
        expect(joiner.lastExit?.code).toBe(1);
        const err = fs.readFileSync(joiner.stderrPath, 'utf8').trim().split('\n');
        const reasons = err.filter((l) => l.startsWith('quorum-chat: '));
        expect(reasons).toHaveLength(1);
        expect(reasons[0]).toMatch(
          /^quorum-chat: cannot join: none of the peers .* answered within \d+ s( \(last: .+\))?$/,
        );
        expect(err.filter((l) => /^\s+at /.test(l))).toEqual([]);
        expect(fs.existsSync(joiner.spec.dataDir)).toBe(false);
      },
    );
  }, 120_000);
});
