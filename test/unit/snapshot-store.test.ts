// FileSnapshotStore: Raft's snapshot files hold metadata and opaque bytes. Whatever bytes a state
// machine writes come back unchanged (local take, chunked transfer, restart); a transfer is durable
// before it is acknowledged, and a crash at any point leaves the previous snapshot usable.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SnapshotMeta } from '../../machines/protocol.js';
import { FileSnapshotStore, type FileSnapshotStoreOptions } from '../../src/raft/snapshot-store.js';
import { BytesStateMachine } from '../support/bytes-state-machine.js';

let dir: string;
const closers: (() => void)[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-snap-'));
});
afterEach(() => {
  for (const c of closers.splice(0).reverse()) c();
  fs.rmSync(dir, { recursive: true, force: true });
});

const config = { members: [{ id: 'n1', address: '127.0.0.1:5555', voter: true }] };

function snapshotStore(sub: string, opts?: FileSnapshotStoreOptions): FileSnapshotStore {
  const s = new FileSnapshotStore(join(dir, sub), opts);
  closers.push(() => s.close());
  return s;
}

/** Install `bytes` as `store`'s latest snapshot at `meta` (a local take). */
function put(store: FileSnapshotStore, meta: SnapshotMeta, bytes: Uint8Array): void {
  const file = join(dir, `put-${meta.index}-${meta.term}.tmp`);
  fs.writeFileSync(file, bytes);
  store.install(meta, file);
}

/** Stream `from`'s latest snapshot into `to` in chunks of `size`; returns the receiver's last answer. */
function transfer(from: FileSnapshotStore, to: FileSnapshotStore, size: number): number {
  const meta = from.latest();
  let offset = 0;
  for (let i = 0; i < 100_000; i++) {
    const { chunk, done } = from.read(offset, size);
    const next = to.receive(meta, offset, chunk, done);
    if (done) return next;
    offset = next;
  }
  throw new Error('transfer did not finish');
}

const whole = (s: FileSnapshotStore) => {
  const p = s.payload();
  return p ? Buffer.from(p.read(0, p.byteLength)) : undefined;
};

describe('FileSnapshotStore', () => {
  it('starts with no snapshot', () => {
    const s = snapshotStore('a');
    expect(s.latest()).toEqual({ index: 0, term: 0, config: { members: [] } });
    expect(s.path()).toBeUndefined();
    expect(s.payload()).toBeUndefined();
    expect(s.read(0, 10)).toEqual({ chunk: new Uint8Array(0), done: true });
  });

  it('round-trips arbitrary bytes: local install, restart, and chunked transfer', () => {
    const bytes = randomBytes(50_000);
    const meta: SnapshotMeta = { index: 42, term: 3, config };
    const leader = snapshotStore('leader');
    put(leader, meta, bytes);
    expect(leader.latest()).toEqual(meta);
    expect(leader.byteLength()).toBe(bytes.length);
    expect(whole(leader)?.equals(bytes)).toBe(true);
    expect(fs.readFileSync(leader.payload()?.file as string).equals(bytes)).toBe(true);

    // A restart reads it back from the directory alone.
    leader.close();
    const again = snapshotStore('leader');
    expect(again.latest()).toEqual(meta);
    expect(whole(again)?.equals(bytes)).toBe(true);

    // Chunks of odd sizes arrive whole; the follower holds the same bytes and metadata.
    const follower = snapshotStore('follower');
    expect(transfer(again, follower, 4093)).toBe(bytes.length);
    expect(follower.latest()).toEqual(meta);
    expect(whole(follower)?.equals(bytes)).toBe(true);
    // A repeated last chunk (its answer was lost) is answered as installed.
    const last = Math.floor((bytes.length - 1) / 4093) * 4093;
    expect(follower.receive(meta, last, again.read(last, 4093).chunk, true)).toBe(bytes.length);
    // Only the metadata and the data file are left.
    expect(fs.readdirSync(join(dir, 'follower')).sort()).toEqual(['snapshot-42-3.data', 'snapshot.meta']);
  });

  it('an empty snapshot is a snapshot too', () => {
    const leader = snapshotStore('leader');
    put(leader, { index: 5, term: 1, config }, new Uint8Array(0));
    const follower = snapshotStore('follower');
    expect(transfer(leader, follower, 100)).toBe(0);
    expect(follower.latest().index).toBe(5);
    expect(follower.payload()?.byteLength).toBe(0);
  });

  it('a newer snapshot replaces the older one and its file', () => {
    const s = snapshotStore('a');
    put(s, { index: 10, term: 1, config }, Buffer.from('old'));
    put(s, { index: 20, term: 2, config }, Buffer.from('new'));
    expect(s.latest().index).toBe(20);
    expect(whole(s)?.toString()).toBe('new');
    s.close();
    const again = snapshotStore('a');
    expect(fs.readdirSync(join(dir, 'a')).sort()).toEqual(['snapshot-20-2.data', 'snapshot.meta']);
    expect(whole(again)?.toString()).toBe('new');
  });

  it('resumes: duplicates and gaps get the expected offset, a new snapshot restarts the transfer', () => {
    const leader = snapshotStore('leader');
    put(leader, { index: 500, term: 2, config }, randomBytes(10_000));
    const meta = leader.latest();
    const f = snapshotStore('follower');
    expect(f.receive(meta, 1000, leader.read(1000, 1000).chunk, false)).toBe(0); // no start seen
    expect(f.receive(meta, 0, leader.read(0, 1000).chunk, false)).toBe(1000);
    expect(f.receive(meta, 0, leader.read(0, 1000).chunk, false)).toBe(1000); // duplicate
    expect(f.receive(meta, 3000, leader.read(3000, 1000).chunk, false)).toBe(1000); // gap
    expect(f.receive({ ...meta, index: 600 }, 1000, leader.read(1000, 1000).chunk, false)).toBe(0); // other snapshot
    expect(f.latest().index).toBe(0);
    expect(transfer(leader, f, 1000)).toBe(leader.byteLength());
    expect(f.latest()).toEqual(meta);
    expect(whole(f)?.equals(whole(leader) as Buffer)).toBe(true);
  });

  it('a crash mid-transfer leaves the old snapshot intact and nothing behind', () => {
    const old = randomBytes(3000);
    const follower = new FileSnapshotStore(join(dir, 'follower'));
    closers.push(() => follower.close()); // after the test: the "crashed" store still holds its files
    put(follower, { index: 100, term: 1, config }, old);
    const leader = snapshotStore('leader');
    put(leader, { index: 300, term: 2, config }, randomBytes(20_000));
    follower.receive(leader.latest(), 0, leader.read(0, 2048).chunk, false);
    // Crash: the store is dropped without close; a new one starts on the same directory.
    const restarted = snapshotStore('follower');
    expect(restarted.latest().index).toBe(100);
    expect(whole(restarted)?.equals(old)).toBe(true);
    expect(fs.readdirSync(join(dir, 'follower')).sort()).toEqual(['snapshot-100-1.data', 'snapshot.meta']);
  });

  it('a crash between writing the new data and committing its metadata keeps the old snapshot', () => {
    const s = new FileSnapshotStore(join(dir, 'a'));
    closers.push(() => s.close());
    put(s, { index: 100, term: 1, config }, Buffer.from('old'));
    // What a crash just before the rename of snapshot.meta leaves: new data, a temporary meta.
    fs.writeFileSync(join(dir, 'a', 'snapshot-200-2.data'), 'new');
    fs.writeFileSync(join(dir, 'a', 'snapshot.meta.tmp'), '{"index":200');
    fs.writeFileSync(join(dir, 'a', 'snapshot.taking'), 'partial');
    const restarted = snapshotStore('a');
    expect(restarted.latest().index).toBe(100);
    expect(whole(restarted)?.toString()).toBe('old');
    expect(fs.readdirSync(join(dir, 'a')).sort()).toEqual(['snapshot-100-1.data', 'snapshot.meta']);
  });

  it('the single-file snapshot of older versions is removed: the store starts empty', () => {
    fs.mkdirSync(join(dir, 'old'));
    fs.writeFileSync(join(dir, 'old', 'snapshot.db'), 'an old SQLite snapshot');
    fs.writeFileSync(join(dir, 'old', 'backup-0a1b.db'), 'not ours');
    const s = snapshotStore('old');
    expect(s.latest().index).toBe(0);
    expect(fs.readdirSync(join(dir, 'old'))).toEqual(['backup-0a1b.db']);
  });

  it('bytes the verifier refuses are not installed, and the leader is asked to start over', () => {
    const seen: SnapshotMeta[] = [];
    const verify = (file: string, meta: SnapshotMeta) => {
      seen.push(meta);
      return fs.readFileSync(file)[0] === 0x51; // the state machine's own check: 'Q' first
    };
    const leader = snapshotStore('leader');
    const follower = snapshotStore('follower', { verify });
    put(leader, { index: 7, term: 1, config }, Buffer.from('Q is fine'));
    expect(transfer(leader, follower, 3)).toBe(9);
    expect(follower.latest().index).toBe(7);
    put(leader, { index: 9, term: 1, config }, Buffer.from('damaged'));
    expect(transfer(leader, follower, 3)).toBe(0);
    expect(follower.latest().index).toBe(7);
    expect(whole(follower)?.toString()).toBe('Q is fine');
    expect(seen.map((m) => m.index)).toEqual([7, 9]);
  });

  it('a refused file on disk at start is an error, not a silent empty store', () => {
    const s = snapshotStore('a');
    put(s, { index: 3, term: 1, config }, Buffer.from('abc'));
    s.close();
    fs.writeFileSync(join(dir, 'a', 'snapshot-3-1.data'), 'abcd'); // not the size recorded
    expect(() => new FileSnapshotStore(join(dir, 'a'))).toThrow(/unreadable/);
  });

  it('takes a snapshot in the background from a state machine whose bytes it never reads', async () => {
    const sm = new BytesStateMachine();
    sm.apply([
      { index: 1, term: 1, kind: 'command', data: 'a\u0000b' },
      { index: 2, term: 1, kind: 'command', data: 'ü' },
    ]);
    const s = snapshotStore('a');
    const meta = await s.takeInSteps(sm, { metaAt: (index) => ({ index, term: 1, config }) });
    expect(meta).toEqual({ index: 2, term: 1, config });
    expect(whole(s)?.equals(Buffer.from(sm.encode()))).toBe(true);
    // Not newer than the latest: abandoned, nothing changes.
    expect(await s.takeInSteps(sm, { metaAt: (index) => ({ index, term: 1, config }) })).toBeUndefined();
    // metaAt knows no such index (compacted away): abandoned.
    sm.apply([{ index: 3, term: 1, kind: 'command', data: 'c' }]);
    expect(await s.takeInSteps(sm, { metaAt: () => undefined })).toBeUndefined();
    expect(s.latest().index).toBe(2);
    expect(fs.readdirSync(join(dir, 'a')).sort()).toEqual(['snapshot-2-1.data', 'snapshot.meta']);
    // The bytes restore another state machine.
    const other = new BytesStateMachine();
    other.restore(s.payload() as NonNullable<ReturnType<FileSnapshotStore['payload']>>);
    expect(other.data).toEqual(['a\u0000b', 'ü']);
    expect(other.index).toBe(2);
  });
});
