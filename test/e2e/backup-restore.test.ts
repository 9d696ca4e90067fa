// Issue 11, item 4: backup under load, then restore into a new cluster.
// 1. A 3-replica cluster runs the chat workload. `quorum-chat backup` copies a FOLLOWER's state (its
//    own applied state) while writes keep coming; Backup needs the cluster secret (missing and wrong
//    are told apart) and streams chunks of at most 64 KiB with contiguous offsets.
// 2. `quorum-chat restore` turns the file into a new one-member cluster: its state_digest is the
//    backup's, a workload user logs in there and reads their chat's history (every message
//    acknowledged before the backup started is in it), and a brand-new replica joins it with --peers.
// 3. A truncated copy of the file is refused with one line and leaves no data dir.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { ChatCaller, PARTY_PASSWORD } from '../../src/bench/rpc.js';
import type { BackupChunk as Chunk } from '../../src/client/backup.js';
import { launcherPath } from '../../src/server/local-cluster.js';
import { Harness, Status, codeOf, startCluster, testTimers } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

function run(args: string[]) {
  const r = spawnSync(launcherPath, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `quorum-chat backup` of one replica into `out`. */
function backupCli(address: string, out: string, secretFile: string) {
  return run(['backup', '--server', address, '--out', out, '--cluster-secret-file', secretFile]);
}

/** A raw Backup call: every chunk, or the error it ended with. */
function rawBackup(client: grpc.Client, md: grpc.Metadata): Promise<Chunk[]> {
  return new Promise((resolve, reject) => {
    const chunks: Chunk[] = [];
    const call = (
      client as unknown as { Backup(r: object, md: grpc.Metadata): grpc.ClientReadableStream<Chunk> }
    ).Backup({}, md);
    call.on('data', (c: Chunk) => chunks.push(c));
    call.on('error', reject);
    call.on('end', () => resolve(chunks));
  });
}

async function refusedWith(p: Promise<unknown>): Promise<{ code?: number; details: string }> {
  try {
    await p;
  } catch (err) {
    return { code: codeOf(err), details: (err as grpc.ServiceError).details };
  }
  throw new Error('the call succeeded');
}

describeWithServer('backup under load, restore into a new cluster', () => {
  let h: Harness | undefined;
  let restored: Harness | undefined;
  const roots: string[] = [];
  afterEach(async () => {
    await h?.destroy();
    await restored?.destroy();
    h = restored = undefined;
    for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
  });

  it('copies one index of a follower under load; the restored cluster has its digest, its users and history, and grows', async () => {
    h = await startCluster({ size: 3 });
    const c = h;
    const work = fs.mkdtempSync(join(os.tmpdir(), 'qc-backup-e2e-'));
    roots.push(work);
    const secretFile = join(c.opts.root, 'cluster.secret');
    const file = join(work, 'chat.qcb');
    await withReport(
      () => restored ?? h,
      async () => {
        const w = c.workload({ clients: 6 });
        await w.setup();
        w.start();
        await w.waitForAcks(30, { what: 'writes before the backup' });

        // Every message acknowledged by now is committed at or below the leader's commit index; once
        // the follower has applied that far, its backup holds them all.
        // (Acks first: one that arrives after the commit index is read may lie above it.)
        const ackedBefore = [...w.acked];
        const lead = await c.waitForLeader();
        const follower = c.ids().find((id) => id !== lead.node_id) as string;
        await c.waitForApplied(lead.commit_index, [follower]);

        // The secret: none, then a wrong one, each said as such.
        const none = await refusedWith(rawBackup(c.clusterClient(follower), new grpc.Metadata()));
        expect(none.code).toBe(Status.UNAUTHENTICATED);
        expect(none.details).toMatch(/none was given/);
        const wrongFile = join(work, 'wrong.secret');
        fs.writeFileSync(wrongFile, 'not-the-secret\n');
        const wrong = backupCli(c.get(follower).address, file, wrongFile);
        expect(wrong.code).not.toBe(0);
        expect(wrong.stderr.trim().split('\n').at(-1)).toMatch(
          /^quorum-chat: backup: UNAUTHENTICATED: The cluster secret given to Backup is wrong/,
        );
        expect(fs.existsSync(file) || fs.existsSync(`${file}.tmp`)).toBe(false);

        // The raw stream (on the leader, under load): chunks of at most 64 KiB, contiguous, one done.
        const md = new grpc.Metadata();
        md.set('authorization', `Bearer ${fs.readFileSync(secretFile, 'utf8').trim()}`);
        const chunks = await rawBackup(c.clusterClient(lead.node_id), md);
        let offset = 0;
        for (const [i, ch] of chunks.entries()) {
          expect(ch.offset).toBe(offset);
          expect(ch.data.length).toBeLessThanOrEqual(64 * 1024);
          expect(ch.done).toBe(i === chunks.length - 1);
          expect(ch.last_applied).toBe(chunks[0].last_applied);
          offset += ch.data.length;
        }
        expect(chunks.at(-1)?.state_digest).toMatch(/^[0-9a-f]{64}$/);

        // The backup itself, through the CLI, of the follower, while the workload keeps writing.
        const acksAtBackup = w.acked.length;
        const b = backupCli(c.get(follower).address, file, secretFile);
        expect(b.code, b.stderr).toBe(0);
        const lastApplied = Number(/^last_applied: (\d+)$/m.exec(b.stdout)?.[1]);
        const digest = /^state_digest: ([0-9a-f]{64})$/m.exec(b.stdout)?.[1];
        expect(lastApplied).toBeGreaterThanOrEqual(lead.commit_index);
        expect(digest).toBeDefined();
        // Not a terminal: plain progress lines on stderr, ending at 100%.
        expect(b.stderr).toMatch(/^backup: \[#+\] 100% /m);
        expect(fs.existsSync(`${file}.tmp`)).toBe(false);
        await w.waitForAcks(10, { what: 'writes after the backup' });
        expect(w.acked.length).toBeGreaterThan(acksAtBackup);
        await expectHealthyEnd(c, w);

        // A truncated copy is refused with one line, and leaves no data dir (nor its parent).
        const cut = join(work, 'cut.qcb');
        const bytes = fs.readFileSync(file);
        fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
        const target = join(work, 'from-cut', 'r9');
        const bad = run(['restore', '--from', cut, '--id', 'r9', '--port', '1', '--data-dir', target]);
        expect(bad.code).not.toBe(0);
        expect(bad.stdout).toBe('');
        expect(bad.stderr).toMatch(
          /^quorum-chat: restore: .*cut\.qcb: the backup is truncated: \d+ bytes of the \d+ its header announces\n$/,
        );
        expect(fs.existsSync(join(work, 'from-cut'))).toBe(false);

        // A port in use (here: a replica's) is refused before anything is built.
        const busy = run([
          'restore',
          '--from',
          file,
          '--id',
          'r8',
          '--port',
          String(c.get(follower).spec.port),
          '--data-dir',
          join(work, 'busy', 'r8'),
        ]);
        expect(busy.code).not.toBe(0);
        expect(busy.stderr).toMatch(
          /^quorum-chat: restore: port \d+ on 127\.0\.0\.1 is in use; choose another --port\n$/,
        );
        expect(fs.existsSync(join(work, 'busy'))).toBe(false);

        // Restore into a new cluster (its own temp root, so its own new cluster secret).
        restored = new Harness(fs.mkdtempSync(join(os.tmpdir(), 'qc-restored-')), { serverArgs: testTimers });
        const r2 = restored;
        const first = await r2.define('restored1');
        await r2.define('joiner', { peers: [first.address] });
        r2.start('restored1', { restoreFrom: file });
        const alone = await r2.waitForVoters(['restored1']);
        expect(alone.members.map((m) => m.id)).toEqual(['restored1']);
        expect((await r2.status('restored1'))?.state_digest).toBe(digest);
        expect(fs.readFileSync(join(r2.opts.root, 'cluster.secret'), 'utf8')).not.toBe(
          fs.readFileSync(secretFile, 'utf8'),
        );

        // A workload user logs in on the restored cluster and pages through the history of their chat.
        const me = w.party(0);
        const caller = new ChatCaller([first.address], { attemptMs: 3000, totalMs: 20_000 });
        try {
          const login = await caller.call<{ token: string }>('Login', {
            username: me.username,
            password: PARTY_PASSWORD,
          });
          const contents = new Set<string>();
          let before = 0;
          for (let page = 0; page < 1000; page++) {
            const got = await caller.call<{
              messages: { message_id: number; content: string }[];
              has_more: boolean;
            }>(
              'GetMessages',
              { chat_id: me.chatId, before_id: before, limit: 200 },
              { token: login.value.token },
            );
            for (const m of got.value.messages) contents.add(m.content);
            if (!got.value.has_more || got.value.messages.length === 0) break;
            before = Math.min(...got.value.messages.map((m) => m.message_id));
          }
          // GetMessages shows a user's own messages and those they have read: every message client 0
          // had acknowledged before the backup is in its history.
          const mine = ackedBefore.filter((a) => a.client === 0).map((a) => a.content);
          expect(mine.length).toBeGreaterThan(0);
          for (const content of mine)
            expect(
              contents.has(content),
              `${content} among ${contents.size}: ${[...contents].slice(0, 5)}`,
            ).toBe(true);
        } finally {
          caller.close();
        }

        // Another replica joins the restored one as usual, and converges on the same state.
        r2.start('joiner');
        await r2.waitForVoters(['restored1', 'joiner']);
        const converged = await r2.waitForConvergence({ timeoutMs: 30_000 });
        expect(converged.map((s) => s.state_digest)).toEqual([digest, digest]);
      },
    );
  }, 110_000);
});
