// Issue 5, fault test "Bounded log": under a steady write load, every replica's on-disk log stays
// within the configured bound (snapshots every N applied entries, compaction behind them).
// Scaled down for CI; the full run of the issue is
//   QC_BOUNDED_MESSAGES=50000 QC_SNAPSHOT_EVERY=5000 npx vitest run --project e2e test/e2e/snapshot-bounded-log.test.ts
import * as fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../src/server/replica.js';
import { type Harness, startCluster, testTimers } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';
import { snapshotFlagMissing } from './support/snapshot-flag.js';

const MESSAGES = Number(process.env.QC_BOUNDED_MESSAGES ?? 1200);
const EVERY = Number(process.env.QC_SNAPSHOT_EVERY ?? 200);
// A snapshot starts every EVERY entries and keeps a fifth of that behind it; entries applied while
// one is being taken come on top. Twice EVERY is a generous bound that still fails without compaction.
const BOUND = 2 * EVERY + Math.min(1000, Math.floor(EVERY / 5));

/** Rows in the `log` table of a replica's database file, read through a read-only connection. */
function logRows(dataDir: string): number {
  const file = join(dataDir, DB_FILE);
  if (!fs.existsSync(file)) throw new Error(`no database ${file}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT count(*) FROM log').pluck().get() as number;
  } finally {
    db.close();
  }
}

describeWithServer('fault: bounded log (snapshots and compaction)', () => {
  const missing = snapshotFlagMissing();
  describe.skipIf(missing !== undefined)(missing ? `[skipped: ${missing}]` : 'with --snapshot-every', () => {
    let h: Harness | undefined;
    afterEach(async () => {
      await h?.destroy();
      h = undefined;
    });

    it(`after ${MESSAGES} messages the log of every replica stays within ${BOUND} entries`, async () => {
      h = await startCluster({ size: 3, serverArgs: [...testTimers, '--snapshot-every', String(EVERY)] });
      const c = h;
      await withReport(
        () => h,
        async () => {
          const w = c.workload({ clients: 16 });
          await w.setup();
          w.start();
          let maxSeen = 0;
          for (let acked = 0; acked < MESSAGES; acked += Math.min(200, MESSAGES - acked)) {
            await w.waitForAcks(Math.min(200, MESSAGES - acked), { timeoutMs: 600_000 });
            for (const s of (await c.statuses()).values()) {
              maxSeen = Math.max(maxSeen, s.last_log_index - s.snapshot_index);
            }
          }
          await expectHealthyEnd(c, w);
          expect(maxSeen).toBeLessThanOrEqual(BOUND);
          for (const s of (await c.statuses()).values()) {
            expect(s.last_applied).toBeGreaterThanOrEqual(MESSAGES);
            expect(s.snapshot_index, `${s.node_id} never compacted`).toBeGreaterThan(0);
            expect(s.last_log_index - s.snapshot_index).toBeLessThanOrEqual(BOUND);
          }
          for (const id of c.ids()) {
            const rows = logRows(c.get(id).spec.dataDir);
            expect(rows, `${id}: rows in the on-disk log`).toBeLessThanOrEqual(BOUND);
          }
        },
      );
    });
  });
});
