// Private files (issue 13, finding 4): a replica's data dir is 0700 and every file in it 0600, even when
// the process runs under umask 022 and never calls restrictUmask (an in-process replica, a tool), and a
// data dir left with loose modes is tightened.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChatStore } from '../../src/chat/store.js';
import { tightenTree } from '../../src/private-files.js';
import { FileSnapshotStore } from '../../src/raft/snapshot-store.js';
import { prepareDataDir } from '../../src/server/data-dir.js';
import { type RunningReplica, startReplica } from '../../src/server/replica.js';
import { waitFor } from './client-fake-server.js';

let root: string;
let oldUmask: number;
const closers: (() => unknown)[] = [];
beforeEach(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'qc-private-'));
  // The umask of a typical shell: without our own modes, files would be 0644 and dirs 0755.
  oldUmask = process.umask(0o022);
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  process.umask(oldUmask);
  fs.rmSync(root, { recursive: true, force: true });
});

const mode = (p: string) => fs.statSync(p).mode & 0o777;

/** Every path under `dir` (itself included) with its permission bits, as `path 0700`. */
function modes(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    out.push(`${p.slice(root.length)} 0${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) visit(join(p, n));
  };
  visit(dir);
  return out;
}

/** The same listing with every directory 0700 and every file 0600. */
function privateModes(dir: string): string[] {
  return modes(dir).map((line) => {
    const path = line.slice(0, line.lastIndexOf(' '));
    return `${path} ${fs.statSync(root + path).isDirectory() ? '0700' : '0600'}`;
  });
}

describe('private data dirs', () => {
  it('a started replica has a 0700 data dir and 0600 database, WAL and SHM files under umask 022', async () => {
    const dir = join(root, 'n1');
    prepareDataDir(dir, 'n1');
    const replica: RunningReplica = await startReplica({
      id: 'n1',
      host: '127.0.0.1',
      port: 0,
      dataDir: dir,
      peers: [],
      clusterSecret: 'secret',
      timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
    });
    closers.push(() => replica.stop());
    await waitFor(() => replica.node.status().role === 'leader' && replica.store.appliedIndex() > 0, 10_000);
    const names = fs.readdirSync(dir).sort();
    // The files this test is about exist (WAL mode keeps -wal and -shm while the database is open).
    expect(names).toEqual(
      expect.arrayContaining([
        'quorum-chat.json',
        'replica.sqlite',
        'replica.sqlite-shm',
        'replica.sqlite-wal',
        'snapshots',
      ]),
    );
    expect(modes(dir)).toEqual(privateModes(dir));
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'replica.sqlite-wal'))).toBe(0o600);
  });

  it('snapshots are 0600 whether installed at once, taken in steps or received from a leader', async () => {
    const dbFile = join(root, 'replica.sqlite');
    const db = new Database(dbFile);
    closers.push(() => db.close());
    db.pragma('journal_mode = WAL');
    const chat = new ChatStore(db);
    db.prepare('UPDATE applied SET idx = 1').run();
    const meta = { index: 1, term: 1, config: { members: [{ id: 'n1', address: 'a:1', voter: true }] } };
    const files = (sub: string) => [
      `/${sub} 0700`,
      `/${sub}/snapshot-1-1.data 0600`,
      `/${sub}/snapshot.meta 0600`,
    ];

    const snaps = join(root, 'snapshots');
    const store = new FileSnapshotStore(snaps);
    closers.push(() => store.close());
    const loose = join(root, 'loose.bin');
    fs.writeFileSync(loose, 'bytes', { mode: 0o644 });
    store.install(meta, loose);
    expect(modes(snaps)).toEqual(files('snapshots'));
    const inSteps = new FileSnapshotStore(join(root, 'steps'));
    closers.push(() => inSteps.close());
    expect(await inSteps.takeInSteps(chat, { metaAt: () => meta })).toBeDefined();
    expect(modes(join(root, 'steps'))).toEqual(files('steps'));

    const receiver = new FileSnapshotStore(join(root, 'received'));
    closers.push(() => receiver.close());
    const { chunk } = inSteps.read(0, inSteps.byteLength());
    receiver.receive(inSteps.latest(), 0, chunk, true);
    expect(modes(join(root, 'received'))).toEqual(files('received'));
  });

  it('an existing empty data dir with mode 0755 becomes 0700', () => {
    const dir = join(root, 'n1');
    fs.mkdirSync(dir, { mode: 0o755 });
    expect(mode(dir)).toBe(0o755);
    prepareDataDir(dir, 'n1');
    expect(modes(dir)).toEqual(['/n1 0700', '/n1/quorum-chat.json 0600']);
  });

  it('tightenTree makes a loose tree private, reports what it changed, and leaves symlinks alone', () => {
    const dir = join(root, 'n1');
    fs.mkdirSync(join(dir, 'snapshots'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(join(dir, 'replica.sqlite'), 'x', { mode: 0o644 });
    fs.writeFileSync(join(dir, 'snapshots', 'snapshot.db'), 'x', { mode: 0o666 });
    fs.writeFileSync(join(dir, 'already.db'), 'x', { mode: 0o600 });
    const outside = join(root, 'outside.txt');
    fs.writeFileSync(outside, 'not ours', { mode: 0o644 });
    fs.symlinkSync(outside, join(dir, 'link'));
    // Explicit chmods: the umask (022) would have trimmed the modes given at creation.
    fs.chmodSync(join(dir, 'snapshots', 'snapshot.db'), 0o666);
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(join(dir, 'snapshots'), 0o775);

    const changed = tightenTree(dir).map((c) => `${c.path.slice(root.length)} ${c.was.toString(8)}`);
    expect(changed.sort()).toEqual(
      ['/n1 755', '/n1/replica.sqlite 644', '/n1/snapshots 775', '/n1/snapshots/snapshot.db 666'].sort(),
    );
    expect(modes(dir).filter((l) => !l.startsWith('/n1/link'))).toEqual(
      privateModes(dir).filter((l) => !l.startsWith('/n1/link')),
    );
    // The link's target is outside the data dir: not ours to change.
    expect(mode(outside)).toBe(0o644);
    // A second pass finds nothing left to do.
    expect(tightenTree(dir)).toEqual([]);
  });
});
