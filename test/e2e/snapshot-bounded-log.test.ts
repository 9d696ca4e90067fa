// Issue 5, fault test "Bounded log": after 50,000 messages, every replica's on-disk log stays within
// the bound of the server's default compaction settings (a snapshot every 5000 applied entries, 1000
// kept behind it): under 10,000 entries. A quicker variant for development:
//   QC_BOUNDED_MESSAGES=1200 QC_SNAPSHOT_EVERY=200 npx vitest run --project e2e test/e2e/snapshot-bounded-log.test.ts
import * as fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../src/server/replica.js';
import { type Harness, startCluster, testTimers } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

const MESSAGES = Number(process.env.QC_BOUNDED_MESSAGES ?? 50_000);
/** --snapshot-every for the servers; unset: the server's default (5000). */
const EVERY = process.env.QC_SNAPSHOT_EVERY ? Number(process.env.QC_SNAPSHOT_EVERY) : undefined;
// A snapshot starts every EVERY entries and keeps a fifth of that (at most 1000) behind it; entries
// applied while one is being taken come on top. With the defaults the bound is 10,000; for a
// smaller EVERY, twice EVERY is a generous bound that still fails without compaction.
const BOUND = EVERY === undefined ? 10_000 : 2 * EVERY + Math.min(1000, Math.floor(EVERY / 5));

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
  describe(EVERY === undefined
    ? 'default compaction (a snapshot every 5000 entries, 1000 kept)'
    : `--snapshot-every ${EVERY}`, () => {
    let h: Harness | undefined;
    afterEach(async () => {
      await h?.destroy();
      h = undefined;
    });

    it(`after ${MESSAGES} messages the log of every replica stays within ${BOUND} entries`, async () => {
      const flags = EVERY === undefined ? [] : ['--snapshot-every', String(EVERY)];
      h = await startCluster({ size: 3, serverArgs: [...testTimers, ...flags] });
      const c = h;
      await withReport(
        () => h,
        async () => {
          // Mostly writes: the log is what this test is about (reads deliver up to 1000 messages each).
          const w = c.workload({ clients: 32, readEvery: 100 });
          const started = performance.now();
          await w.setup();
          w.start();
          let maxSeen = 0;
          for (let acked = 0; acked < MESSAGES; acked += Math.min(200, MESSAGES - acked)) {
            await w.waitForAcks(Math.min(200, MESSAGES - acked), { timeoutMs: 60_000 });
            for (const s of (await c.statuses()).values()) {
              maxSeen = Math.max(maxSeen, s.last_log_index - s.snapshot_index);
            }
          }
          const seconds = (performance.now() - started) / 1000;
          console.log(
            `bounded log: ${w.acked.length} messages in ${seconds.toFixed(0)} s, longest log seen ${maxSeen} entries (bound ${BOUND})`,
          );
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
    }, 900_000);
  });
});
