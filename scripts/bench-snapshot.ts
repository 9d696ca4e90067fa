// Benchmark of snapshots on a realistic replica (figures only, never assertions).
//
//   npx tsx scripts/bench-snapshot.ts [--messages 100000] [--load 20000] [--dir DIR]
//
// 1. Take: a replica with `messages` chat messages (ChatStore and SqliteLogStore in one SQLite file)
//    takes a snapshot in the background (FileSnapshotStore.takeInSteps, with the chat side writing the
//    bytes: src/chat/snapshots.ts); reports the total time, the longest single step (how long it holds
//    the event loop) and the size.
// 2. Install: the snapshot is streamed in 64 KiB chunks into a second replica's FileSnapshotStore
//    (write, fsync, the chat side's check, commit), then the chat store restores its tables from the
//    bytes (ChatStore.restore) and its log is reset. Each part is one synchronous stretch of the event
//    loop in a replica (the receive of the last chunk, then the restore).
// 3. Apply latency on a leader: a one-member RaftNode on the same database serves `load` proposals
//    (32 in flight) twice: without snapshots, then with the Snapshotter taking one every 5,000
//    entries. Reports propose-to-applied latency p50/p99/max and the event loop's worst delay.

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { ClusterConfig, Entry } from '../machines/protocol.js';
import { type Command, encodeCommand } from '../src/chat/commands.js';
import { checkChatSnapshot } from '../src/chat/snapshots.js';
import { ChatStore } from '../src/chat/store.js';
import { tokenHash } from '../src/chat/tokens.js';
import type { SnapshotPayload } from '../src/raft/interfaces.js';
import { RaftNode } from '../src/raft/node.js';
import { FileSnapshotStore } from '../src/raft/snapshot-store.js';
import { Snapshotter } from '../src/raft/snapshotter.js';
import { SqliteLogStore } from '../src/raft/sqlite-log-store.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const root = fs.mkdtempSync(join(arg('dir', tmpdir()), 'qc-bench-snap-'));
const MESSAGES = Number(arg('messages', '100000'));
const LOAD = Number(arg('load', '20000'));
const config: ClusterConfig = { members: [{ id: 'n1', address: '127.0.0.1:1', voter: true }] };
const ms = (x: number) => `${x.toFixed(1)} ms`;

let verifyMs = 0;
function openReplica(name: string) {
  fs.mkdirSync(join(root, name), { recursive: true });
  const file = join(root, name, 'replica.db');
  const db = new Database(file);
  const log = new SqliteLogStore({ db, nodeId: 'n1', flushMode: 'deferred' });
  const chat = new ChatStore(db);
  const snaps = new FileSnapshotStore(join(root, name, 'snapshots'), {
    verify: (f, meta) => {
      const t0 = performance.now();
      const ok = checkChatSnapshot(f, meta.index);
      verifyMs += performance.now() - t0;
      return ok;
    },
  });
  return { file, db, log, chat, snaps };
}

const T0 = Date.now();
const leader = openReplica('leader');
let index = 0;
function applyBatch(cmds: Command[]): void {
  const entries: Entry[] = cmds.map((c) => ({
    index: ++index,
    term: 1,
    kind: 'command',
    data: encodeCommand(c),
  }));
  leader.log.write({ hardState: { term: 1, votedFor: 'n1' }, entries });
  leader.chat.apply(entries);
}
const token = 'bench-token-0123456789abcdef';
const actor = tokenHash(token);
applyBatch([
  { type: 'signup', at: T0, username: 'alice', nickname: 'A', passwordHash: 'scrypt$bench' },
  { type: 'signup', at: T0, username: 'bob', nickname: 'B', passwordHash: 'scrypt$bench' },
]);
const userId = leader.db.prepare("SELECT id FROM users WHERE username_key = 'alice'").pluck().get() as number;
applyBatch([{ type: 'login', at: T0, username: 'alice', userId, tokenHash: actor, ttlMs: 365 * 86_400_000 }]);
applyBatch([{ type: 'startChat', at: T0, actor, username: 'bob' }]);
const chatId = leader.db.prepare('SELECT id FROM chats').pluck().get() as string;
const message = (n: number): Command => ({
  type: 'sendMessage',
  at: T0 + n,
  actor,
  chatId,
  content: `message ${n} ${'lorem ipsum '.repeat(8)}`,
  idempotencyKey: `k${n}`,
});
let built = performance.now();
for (let n = 0; n < MESSAGES; n += 1000) {
  applyBatch(Array.from({ length: Math.min(1000, MESSAGES - n) }, (_, i) => message(n + i)));
  // Keep the log short while building (this is set-up, not measured).
  leader.log.compact({ index, term: 1, config });
}
leader.log.compact({ index, term: 1, config });
built = performance.now() - built;
console.log(
  `set-up: ${MESSAGES} messages applied in ${ms(built)}; file ${fs.statSync(leader.file).size} bytes`,
);

// 1. Take --------------------------------------------------------------------------------------------
const metaAt = (i: number) => ({ index: i, term: 1, config });
let t = performance.now();
const meta = await leader.snaps.takeInSteps(leader.chat, { metaAt });
const take = leader.snaps.lastTake;
const pct = (xs: number[] | undefined) => {
  const v = [...(xs ?? [])].sort((a, b) => a - b);
  const q = (p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? 0;
  return `p50 ${ms(q(0.5))} / p99 ${ms(q(0.99))} / max ${ms(v[v.length - 1] ?? 0)}`;
};
console.log(
  `take (background, steps): ${ms(performance.now() - t)} total, ${take?.steps} steps; event-loop hold ` +
    `per step: wall ${pct(take?.stepMs)}, cpu ${pct(take?.stepCpuMs)}; ${take?.bytes} bytes, index ${meta?.index}`,
);
// 2. Install -----------------------------------------------------------------------------------------
const follower = openReplica('follower');
t = performance.now();
let offset = 0;
for (let i = 0; i < 1e6; i++) {
  const { chunk, done } = leader.snaps.read(offset, 64 * 1024);
  offset = follower.snaps.receive(leader.snaps.latest(), offset, chunk, done);
  if (done) break;
}
const received = performance.now() - t;
t = performance.now();
follower.chat.restore(follower.snaps.payload() as SnapshotPayload);
const restored = performance.now() - t;
t = performance.now();
follower.log.resetToSnapshot(leader.snaps.latest());
const reset = performance.now() - t;
const same = follower.chat.stateDigest() === leader.chat.stateDigest();
console.log(
  `install: receive+fsync+check+commit ${ms(received)} (of which the chat side's check ${ms(verifyMs)}), ` +
    `restore tables ${ms(restored)}, reset log ${ms(reset)}; ` +
    `total ${ms(received + restored + reset)}; digests equal: ${same}`,
);
follower.snaps.close();
follower.log.close();
follower.db.close();

// 3. Apply latency on a leader -----------------------------------------------------------------------
leader.log.flush(() => {});
await new Promise((r) => setImmediate(r));
const node = new RaftNode({
  id: 'n1',
  logStore: leader.log,
  stateMachine: leader.chat,
  transport: { send: () => {}, listen: () => {}, setPeers: () => {}, close: () => {} },
  clock: {
    setTimeout: (fn, d) => setTimeout(fn, d),
    clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
    now: Date.now,
  },
  timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
  seed: 1,
  snapshots: leader.snaps,
});
node.start();
for (let i = 0; i < 200 && node.status().role !== 'leader'; i++) await new Promise((r) => setTimeout(r, 10));
if (node.status().role !== 'leader') throw new Error('the one-member node did not become leader');

let next = MESSAGES;
async function load(label: string): Promise<void> {
  const lat: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const started = performance.now();
  let sent = 0;
  const worker = async () => {
    while (sent < LOAD) {
      sent++;
      const t0 = performance.now();
      await node.propose('command', encodeCommand(message(next++)));
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  loop.disable();
  const total = performance.now() - started;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  console.log(
    `${label}: ${LOAD} writes in ${ms(total)} (${Math.round((LOAD / total) * 1000)}/s); apply latency ` +
      `p50 ${ms(q(0.5))}, p99 ${ms(q(0.99))}, max ${ms(lat[lat.length - 1])}; event-loop delay max ` +
      `${ms(loop.max / 1e6)}, p99 ${ms(loop.percentile(99) / 1e6)}; log entries ${node.status().lastLogIndex - leader.log.snapshot().index}`,
  );
}
await load('leader without snapshots');
const snapshotter = new Snapshotter({
  host: node,
  logStore: leader.log,
  snapshots: leader.snaps,
  source: leader.chat,
  every: 5000,
  keep: 1000,
});
snapshotter.start();
await load('leader with snapshots every 5000');
await snapshotter.idle();
console.log(
  `snapshots taken during the run: ${snapshotter.stats.taken}; last: ${ms(snapshotter.stats.lastMs)} total, ` +
    `longest step ${ms(snapshotter.stats.lastMaxStepMs)}, ${snapshotter.stats.lastBytes} bytes`,
);
snapshotter.stop();
node.stop();
leader.snaps.close();
leader.log.close();
leader.db.close();
fs.rmSync(root, { recursive: true, force: true });
