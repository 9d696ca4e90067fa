// Issue 13, finding 1: an outsider without the cluster secret sends 2 MiB RaftService calls (the bytes
// 0a 00 repeated: a million empty RaftMessages) to every replica of a 3-replica cluster. Before the
// fix, grpc-js read and decoded the whole batch before the handler looked at the metadata: the leader's
// event loop stalled for about a second, the followers elected a new leader, and the refusal took 1 s.
// Now the call is refused as soon as its metadata arrives, and the cluster does not notice it.
//
// The Stream variant held before the fix too (its handler saw the metadata first); it stays here so
// that both RaftService methods are held to the same bound.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Outcome, rawClient, rawClientStream, rawUnary } from '../unit/raw-grpc.js';
import { type Harness, Status, startCluster } from './harness.js';
import { describeWithServer, expectConverged, withReport } from './support/checks.js';

const MiB = 1 << 20;

/** 2 MiB of 0a 00: field 1 (messages) with length 0, over and over. */
function hostileBody(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 2) b[i] = 0x0a;
  return b;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describeWithServer('fault: outsiders flooding RaftService without the cluster secret', () => {
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startCluster({ size: 3 });
  }, 120_000);
  afterAll(async () => {
    await h?.destroy();
    h = undefined;
  });

  /**
   * Five unauthenticated calls (leader, followers, leader again...), each must be refused with
   * UNAUTHENTICATED; then one second (over three election timeouts) in which every replica keeps
   * answering GetStatus with the same term and the same leader. Returns the calls' times.
   */
  async function floodAndWatch(call: (address: string) => Promise<Outcome>): Promise<number[]> {
    const c = h!;
    await expectConverged(c);
    const lead = await c.waitForLeader();
    const followers = c.live().filter((r) => r.spec.id !== lead.node_id);
    const leader = c.get(lead.node_id);
    const targets = [leader, followers[0], followers[1], leader, followers[0]];
    const times: number[] = [];
    for (const target of targets) {
      const out = await call(target.address);
      expect(out.code, `${target.spec.id}: ${out.details}`).toBe(Status.UNAUTHENTICATED);
      times.push(out.ms);
    }
    const watchUntil = Date.now() + 1000;
    for (let i = 0; i < 100 && Date.now() < watchUntil; i++) {
      const all = await c.statuses(500);
      for (const r of c.live()) {
        const s = all.get(r.spec.id);
        expect(s, `${r.spec.id} answers GetStatus within 500 ms`).toBeDefined();
        expect(s?.term, `${r.spec.id}'s term`).toBe(lead.term);
        expect(s?.leader_id, `${r.spec.id}'s leader`).toBe(lead.node_id);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return times;
  }

  it('refuses an unauthenticated 2 MiB RaftService Send within 100 ms, and neither term nor leader moves', async () => {
    const body = hostileBody(2 * MiB);
    await withReport(
      () => h,
      async () => {
        const times = await floodAndWatch(async (address) => {
          const client = await rawClient(address);
          try {
            return await rawUnary(client, '/quorumchat.v1.RaftService/Send', body);
          } finally {
            client.close();
          }
        });
        // The median of five: one call's time on this shared machine also holds the client's own
        // scheduling; before the fix every call took about a second.
        expect(median(times), `refusal times ${times.map(Math.round).join(', ')} ms`).toBeLessThan(100);
      },
    );
  });

  it('refuses an unauthenticated 2 MiB RaftService Stream within 100 ms, and neither term nor leader moves', async () => {
    const body = hostileBody(2 * MiB);
    await withReport(
      () => h,
      async () => {
        const times = await floodAndWatch(async (address) => {
          const client = await rawClient(address);
          try {
            return await rawClientStream(client, '/quorumchat.v1.RaftService/Stream', [body]);
          } finally {
            client.close();
          }
        });
        expect(median(times), `refusal times ${times.map(Math.round).join(', ')} ms`).toBeLessThan(100);
      },
    );
  });
});
