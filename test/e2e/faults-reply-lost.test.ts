// Issue 4, fault test "Retry after the reply is lost": crash the leader between commit and reply, and
// let the client retry with the same idempotency key. Exactly one message results.
//
// The write goes to the leader alone; the test polls every replica's commit index and kill -9s the
// leader the moment any replica reports the entry committed, then retries the same call, same key,
// through the other replicas (so the retry is decided by the new leader from the replicated dedup table).
import { afterEach, expect, it } from 'vitest';
import { ChatCaller, grpcCode, newKey } from '../../src/bench/rpc.js';
import { type Harness, startCluster, waitFor } from './harness.js';
import { describeWithServer, expectHealthyEnd, withReport } from './support/checks.js';

interface Message {
  message_id: number;
  content: string;
}

describeWithServer('fault: retry after the reply is lost', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('applies a retried send exactly once after the leader dies between commit and reply', async () => {
    h = await startCluster({ size: 5 });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const w = c.workload({ clients: 2 });
        await w.setup();
        const p = w.party(0);
        for (let trial = 1; trial <= 3; trial++) {
          const lead = await c.waitForLeader();
          const start = await c.status(lead.node_id);
          const before = start!.last_log_index;
          const key = newKey();
          const content = `reply-lost-${trial}-${key}`;
          w.noteSent(content);
          const pinned = new ChatCaller([lead.address]);
          const others = new ChatCaller(
            c.addresses().filter((a) => a !== lead.address),
            { totalMs: 30_000 },
          );
          try {
            const first = pinned
              .call<Message>(
                'SendMessage',
                { chat_id: p.chatId, content },
                { token: p.token, key, only: lead.address, attemptMs: 5000 },
              )
              .then(
                (r) => ({ ok: true as const, id: r.value.message_id }),
                (err: unknown) => ({ ok: false as const, code: grpcCode(err) }),
              );
            // Kill as soon as some replica shows the entry committed.
            await waitFor(
              async () => {
                const all = await c.statuses(200);
                return [...all.values()].some((s) => s.commit_index > before);
              },
              { timeoutMs: 10_000, intervalMs: 1, what: 'the entry to commit' },
            );
            await c.kill(lead.node_id, 'SIGKILL');
            const original = await first;

            const retry = await others.call<Message>(
              'SendMessage',
              { chat_id: p.chatId, content },
              { token: p.token, key },
            );
            if (original.ok) expect(retry.value.message_id).toBe(original.id);

            // The party's own message: in its history (a pure read, no key), within the newest 200.
            const read = await others.call<{ messages: Message[] }>(
              'GetMessages',
              { chat_id: p.chatId, limit: 200 },
              { token: p.token },
            );
            const copies = read.value.messages.filter((m) => m.content === content);
            expect(copies.map((m) => m.message_id)).toEqual([retry.value.message_id]);
          } finally {
            pinned.close();
            others.close();
          }
          await c.restart(lead.node_id);
          await c.waitForConvergence();
        }
        w.start();
        await w.waitForAcks(20);
        await expectHealthyEnd(c, w);
      },
    );
  });
});
