// Backup and restore below the CLI: BackupSource makes a copy consistent with one applied index (its
// digest is the live store's at that index, even while entries keep being applied), and
// restoreDataDir turns a backup file into a data dir whose chat state has that digest, whose log starts
// after that index, and whose only voter is the new replica. A bad file leaves no data dir.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupWriter, HEADER_BYTES } from '../../src/backup/format.js';
import { ChatStore } from '../../src/chat/store.js';
import { clusterIdFromSecret } from '../../src/raft/cluster-secret.js';
import { SqliteLogStore } from '../../src/raft/sqlite-log-store.js';
import { type BackupCopy, BackupSource } from '../../src/server/backup-source.js';
import { restoreDataDir } from '../../src/server/restore.js';
import { UserError } from '../../src/user-error.js';
import { type Stack, makeStack, userCtx } from './chat-fixture.js';

let dir: string;
let stack: Stack | undefined;
beforeEach(() => {
  dir = fs.mkdtempSync(join(tmpdir(), 'qc-backup-'));
});
afterEach(() => {
  stack?.store.close();
  stack = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A replica-like database file with two users, a chat and `n` messages. */
async function populated(n: number): Promise<{ s: Stack; dbFile: string; send: () => Promise<unknown> }> {
  const dbFile = join(dir, 'source.sqlite');
  const s = makeStack(dbFile);
  stack = s;
  const alice = await userCtx(s, 'alice');
  await userCtx(s, 'bob');
  const chat = await s.service.startChat({ username: 'bob' }, alice);
  let k = 0;
  const send = () => s.service.sendMessage({ chat_id: chat.chat_id, content: `m${k++}` }, alice);
  for (let i = 0; i < n; i++) await send();
  return { s, dbFile, send };
}

async function toFile(copy: BackupCopy, file: string): Promise<void> {
  const w = await BackupWriter.create(file);
  for (let at = 0; at < copy.size; at += 65_536) await w.append(await copy.read(at, 65_536));
  await w.finish({ lastApplied: copy.lastApplied, stateDigest: copy.stateDigest });
  await copy.close();
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('restore succeeded');
}

describe('BackupSource', () => {
  it('copies the state of one applied index, with that index’s digest, while entries keep coming', async () => {
    const { s, dbFile, send } = await populated(300);
    const snapshots = join(dir, 'snapshots');
    fs.mkdirSync(snapshots);
    const index = s.store.appliedIndex();
    // The digest at every index the store passes through while the copy runs.
    const digests = new Map([[index, s.store.stateDigest()]]);
    const unsubscribe = s.store.onApplied(() => digests.set(s.store.appliedIndex(), s.store.stateDigest()));
    // Writes while the copy runs (it yields between steps) do not leak into it.
    const racing = Promise.all(Array.from({ length: 20 }, () => send()));
    const copy = await new BackupSource({ dbFile, dir: snapshots }).take();
    await racing;
    unsubscribe();
    expect(s.store.appliedIndex()).toBeGreaterThan(index);
    expect(copy.lastApplied).toBeGreaterThanOrEqual(index);
    expect(copy.stateDigest).toBe(digests.get(copy.lastApplied));
    // The temporary file is gone from the directory as soon as it is open for streaming.
    expect(fs.readdirSync(snapshots)).toEqual([]);
    const file = join(dir, 'b.qcb');
    await toFile(copy, file);
    const restored = await restoreDataDir({
      from: file,
      id: 'r1',
      host: '127.0.0.1',
      port: 7000,
      dataDir: join(dir, 'new', 'r1'),
    });
    const db = new ChatStore(join(restored.dataDir, 'replica.sqlite'));
    try {
      expect(db.appliedIndex()).toBe(copy.lastApplied);
      expect(db.stateDigest()).toBe(copy.stateDigest);
    } finally {
      db.close();
    }
  });

  it('with no writes meanwhile, copies exactly the live state: same index, same digest', async () => {
    const { s, dbFile } = await populated(50);
    fs.mkdirSync(join(dir, 'snapshots'));
    const copy = await new BackupSource({ dbFile, dir: join(dir, 'snapshots') }).take();
    expect(copy.lastApplied).toBe(s.store.appliedIndex());
    expect(copy.stateDigest).toBe(s.store.stateDigest());
    await copy.close();
  });

  it('computes the digest in steps exactly as GetStatus does in one piece', async () => {
    const { s } = await populated(40);
    let pauses = 0;
    const stepped = await s.store.stateDigestInSteps({
      rowsPerStep: 7,
      pause: async () => {
        pauses++;
      },
    });
    expect(pauses).toBeGreaterThan(5);
    expect(stepped).toBe(s.store.stateDigest());
  });

  it('runs one backup at a time, and removes copies a crash left behind', async () => {
    const { dbFile } = await populated(5);
    const snapshots = join(dir, 'snapshots');
    fs.mkdirSync(snapshots);
    fs.writeFileSync(join(snapshots, 'backup-leftover.db'), 'x');
    fs.writeFileSync(join(snapshots, 'snapshot.db'), 'not ours');
    const source = new BackupSource({ dbFile, dir: snapshots });
    expect(fs.readdirSync(snapshots)).toEqual(['snapshot.db']);
    const first = await source.take();
    await expect(source.take()).rejects.toMatchObject({ code: 8 /* RESOURCE_EXHAUSTED */ });
    await first.close();
    const second = await source.take();
    await second.close();
  });
});

describe('restoreDataDir', () => {
  async function backupFile(): Promise<{ file: string; copy: { lastApplied: number; stateDigest: string } }> {
    const { dbFile } = await populated(20);
    fs.mkdirSync(join(dir, 'snapshots'));
    const copy = await new BackupSource({ dbFile, dir: join(dir, 'snapshots') }).take();
    const file = join(dir, 'b.qcb');
    const state = { lastApplied: copy.lastApplied, stateDigest: copy.stateDigest };
    await toFile(copy, file);
    return { file, copy: state };
  }

  it('builds a new one-member cluster: chat state, log after the index, this replica the only voter', async () => {
    const { file, copy } = await backupFile();
    const target = join(dir, 'new', 'r1');
    const r = await restoreDataDir({ from: file, id: 'r1', host: '127.0.0.1', port: 7001, dataDir: target });
    expect(r.header).toMatchObject(copy);
    expect(fs.readdirSync(target).sort()).toEqual(['quorum-chat.json', 'replica.sqlite', 'snapshots']);
    // The new cluster's secret, created beside the data dir as a bootstrapping server does.
    const secret = fs.readFileSync(join(dir, 'new', 'cluster.secret'), 'utf8').trim();
    const log = new SqliteLogStore({
      db: join(target, 'replica.sqlite'),
      nodeId: 'r1',
      clusterId: clusterIdFromSecret(secret),
    });
    try {
      expect(log.snapshot()).toEqual({
        index: copy.lastApplied,
        term: 1,
        config: { members: [{ id: 'r1', address: '127.0.0.1:7001', voter: true }] },
      });
      expect(log.lastIndex()).toBe(copy.lastApplied);
      expect(log.hardState()).toEqual({ term: 1, votedFor: null });
    } finally {
      log.close();
    }
    // Nothing else is left next to it.
    expect(fs.readdirSync(join(dir, 'new')).sort()).toEqual(['cluster.secret', 'r1']);
  });

  it('refuses a data dir that is not empty, before reading the file', async () => {
    const target = join(dir, 'busy');
    fs.mkdirSync(target);
    fs.writeFileSync(join(target, 'x'), '');
    expect(
      await refusal(
        restoreDataDir({ from: join(dir, 'none'), id: 'r1', host: '127.0.0.1', port: 7002, dataDir: target }),
      ),
    ).toMatch(/is not empty/);
  });

  it('refuses a truncated or corrupt file and leaves no data dir, no temporary dir and no secret', async () => {
    const { file } = await backupFile();
    const whole = fs.readFileSync(file);
    const parent = join(dir, 'restored');
    const target = join(parent, 'r1');
    const cases: [Buffer, RegExp][] = [
      [whole.subarray(0, whole.length - 100), /truncated/],
      [whole.subarray(0, 40), /truncated/],
      [Buffer.concat([Buffer.from('XX'), whole.subarray(2)]), /bad magic/],
    ];
    for (const [bytes, why] of cases) {
      fs.writeFileSync(file, bytes);
      expect(
        await refusal(
          restoreDataDir({ from: file, id: 'r1', host: '127.0.0.1', port: 7003, dataDir: target }),
        ),
      ).toMatch(why);
      expect(fs.existsSync(parent)).toBe(false);
    }
  });

  it('refuses a file whose checksum holds but whose chat state is not what its header says', async () => {
    const { file, copy } = await backupFile();
    // A well-formed file with a different digest in its header: the writer checksums what it is given.
    const payload = fs.readFileSync(file).subarray(HEADER_BYTES);
    const w = await BackupWriter.create(file);
    await w.append(payload);
    await w.finish({ lastApplied: copy.lastApplied, stateDigest: 'cd'.repeat(32) });
    const parent = join(dir, 'restored');
    fs.mkdirSync(parent);
    const why = await refusal(
      restoreDataDir({ from: file, id: 'r1', host: '127.0.0.1', port: 7004, dataDir: join(parent, 'r1') }),
    );
    expect(why).toMatch(/chat state has digest .*, its header says cdcdcdcdcdcd/);
    // The parent existed: it stays, empty (no data dir, no temporary dir, no secret created for nothing).
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});
