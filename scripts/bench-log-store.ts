// Micro-benchmark of SqliteLogStore (figures only, never assertions).
//
//   npx tsx scripts/bench-log-store.ts [--dir DIR] [--seconds 2] [--payload 200]
//
// 1. Group commit: batches of 1, 16 and 256 entries, each batch written and flushed ('sync' mode), so
//    every batch costs one transaction and one fsync. Reports entries/s and fsyncs/s.
// 2. Merged flushes: 16 single-entry write+flush pairs per event-loop tick (what a follower does with
//    one RaftBatch of 16 AppendEntries), 'sync' versus 'deferred' mode.
// 3. The LogView hot path: termAt and entries() on recent (cached) entries.
//
// DIR defaults to the OS temp dir; pass a directory on the disk the replicas will use, since fsync
// cost is a property of the disk.

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../machines/protocol.js';
import { SqliteLogStore } from '../src/raft/sqlite-log-store.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const root = fs.mkdtempSync(join(arg('dir', tmpdir()), 'qc-bench-log-'));
const seconds = Number(arg('seconds', '2'));
const payload = 'x'.repeat(Number(arg('payload', '200')));
let n = 0;

function fresh(mode: 'sync' | 'deferred'): SqliteLogStore {
  return new SqliteLogStore({ db: join(root, `b${n++}.db`), nodeId: 'bench', flushMode: mode });
}

function batch(from: number, size: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < size; i++) out.push({ index: from + i, term: 1, kind: 'command', data: payload });
  return out;
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US').padStart(10);
}

function groupCommit(size: number): void {
  const s = fresh('sync');
  s.write({ hardState: { term: 1, votedFor: null } });
  const start = performance.now();
  const until = start + seconds * 1000;
  let next = 1;
  while (performance.now() < until) {
    s.write({ entries: batch(next, size) });
    next += size;
    s.flush(() => {});
  }
  const secs = (performance.now() - start) / 1000;
  const { commits, entriesWritten } = s.stats();
  console.log(
    `batch ${String(size).padStart(3)}: ${fmt(entriesWritten / secs)} entries/s ${fmt(commits / secs)} fsyncs/s`,
  );
  s.close();
}

async function mergedFlushes(mode: 'sync' | 'deferred', perTick: number): Promise<void> {
  const s = fresh(mode);
  s.write({ hardState: { term: 1, votedFor: null } });
  const start = performance.now();
  const until = start + seconds * 1000;
  let next = 1;
  while (performance.now() < until) {
    let pending = perTick;
    await new Promise<void>((resolve) => {
      for (let i = 0; i < perTick; i++) {
        s.write({ entries: batch(next++, 1) });
        s.flush(() => {
          if (--pending === 0) resolve();
        });
      }
    });
  }
  const secs = (performance.now() - start) / 1000;
  const { commits, entriesWritten } = s.stats();
  console.log(
    `${mode.padEnd(8)} ${perTick}/tick: ${fmt(entriesWritten / secs)} entries/s ${fmt(commits / secs)} fsyncs/s`,
  );
  s.close();
}

function hotPath(): void {
  const s = fresh('sync');
  s.write({ hardState: { term: 1, votedFor: null }, entries: batch(1, 10_000) });
  s.flush(() => {});
  const ops = 1_000_000;
  let sink = 0;
  let t = performance.now();
  for (let i = 0; i < ops; i++) sink += s.termAt(9_000 + (i % 1000)) ?? 0;
  const termAt = ops / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < ops / 10; i++) sink += s.entries(9_000 + (i % 900), 10_000, 64).length;
  const entries = ops / 10 / ((performance.now() - t) / 1000);
  console.log(
    `termAt: ${fmt(termAt)} calls/s; entries(64 from cache): ${fmt(entries)} calls/s (${sink > 0 ? 'ok' : ''})`,
  );
  s.close();
}

console.log(`SqliteLogStore benchmark: ${seconds}s per case, ${payload.length}-byte entries, dir ${root}`);
for (const size of [1, 16, 256]) groupCommit(size);
await mergedFlushes('sync', 16);
await mergedFlushes('deferred', 16);
hotPath();
fs.rmSync(root, { recursive: true, force: true });
