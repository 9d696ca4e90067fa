// Issue 4, fault test "Outsiders": a Raft RPC without the cluster secret (or with a wrong one) is
// refused with UNAUTHENTICATED, whatever term it claims, and the cluster's state is unchanged. The
// same holds for a membership change (API.md §2: AddMember needs the secret).
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { services } from '../../src/proto.js';
import { unary } from '../../src/server/local-cluster.js';
import { type ClusterStatus, type Harness, Status, codeOf, startCluster } from './harness.js';
import { describeWithServer, expectConverged, withReport } from './support/checks.js';

const hugeTerm = 1_000_000;

/** Batches an intruder might send: votes, appends, a forced election, a snapshot, all in a huge term. */
function hostileBatches(target: string, leader: string, from: string): object[] {
  const envelope = (body: object) => ({
    messages: [{ from, to: target, term: hugeTerm, ...body }],
    from_address: '127.0.0.1:1',
  });
  return [
    envelope({
      request_vote: { last_log_index: 1e9, last_log_term: hugeTerm, pre_vote: false, transfer: true },
    }),
    envelope({ request_vote: { last_log_index: 1e9, last_log_term: hugeTerm, pre_vote: true } }),
    envelope({
      append_entries: {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: [{ index: 1, term: hugeTerm, kind: 'ENTRY_KIND_COMMAND', data: '{"type":"intrusion"}' }],
        leader_commit: 1e9,
      },
    }),
    envelope({ timeout_now: {} }),
    envelope({
      install_snapshot: {
        last_included_index: 1e9,
        last_included_term: hugeTerm,
        config: { members: [{ id: from, address: '127.0.0.1:1', voter: true }] },
        offset: 0,
        chunk: Buffer.from('not a snapshot'),
        done: true,
      },
    }),
    // Impersonating the real leader changes nothing either.
    {
      messages: [{ from: leader, to: target, term: hugeTerm, timeout_now: {} }],
      from_address: '127.0.0.1:1',
    },
  ];
}

function essentials(s: ClusterStatus | undefined) {
  if (!s) return undefined;
  return {
    role: s.role,
    term: s.term,
    leader_id: s.leader_id,
    commit_index: s.commit_index,
    last_applied: s.last_applied,
    last_log_index: s.last_log_index,
    members: s.members,
    state_digest: s.state_digest,
  };
}

describeWithServer('fault: outsiders without the cluster secret', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.destroy();
    h = undefined;
  });

  it('refuses Raft and membership calls without valid proof and changes no state', async () => {
    h = await startCluster({ size: 5 });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const w = c.workload({ clients: 2 });
        await w.setup();
        w.start();
        await w.waitForAcks(10);
        await w.stop();
        await c.waitForConvergence();
        const lead = await c.waitForLeader();
        const before = new Map([...(await c.statuses())].map(([id, s]) => [id, essentials(s)]));

        const { RaftService, ClusterService } = services();
        expect(RaftService, 'proto/raft.proto must define RaftService').toBeDefined();
        const noProof = new grpc.Metadata();
        const wrongProof = new grpc.Metadata();
        wrongProof.set('authorization', 'Bearer not-the-cluster-secret');
        const refusals: string[] = [];
        for (const r of c.live()) {
          const raft = new RaftService(r.address, grpc.credentials.createInsecure());
          const cluster = new ClusterService(r.address, grpc.credentials.createInsecure());
          try {
            for (const md of [noProof, wrongProof]) {
              for (const [i, batch] of hostileBatches(r.spec.id, lead.node_id, 'intruder').entries()) {
                const code = await unary(raft, 'Send', batch, { metadata: md, deadlineMs: 3000 }).then(
                  () => 'accepted',
                  (err: unknown) => codeOf(err),
                );
                expect(code, `${r.spec.id} batch ${i}`).toBe(Status.UNAUTHENTICATED);
                refusals.push(`${r.spec.id}/${i}`);
              }
              const add = await unary(
                cluster,
                'AddMember',
                { id: 'intruder', address: '127.0.0.1:1' },
                { metadata: md },
              ).then(
                () => 'accepted',
                (err: unknown) => codeOf(err),
              );
              expect(add, `${r.spec.id} AddMember`).toBe(Status.UNAUTHENTICATED);
              const transfer = await unary(
                cluster,
                'TransferLeadership',
                { to_id: r.spec.id },
                { metadata: md },
              ).then(
                () => 'accepted',
                (err: unknown) => codeOf(err),
              );
              expect(transfer, `${r.spec.id} TransferLeadership`).toBe(Status.UNAUTHENTICATED);
            }
          } finally {
            raft.close();
            cluster.close();
          }
        }
        expect(refusals.length).toBe(5 * 2 * 6);

        // Nothing changed: same roles, terms, leader, indices, membership and digest on every replica.
        const after = new Map([...(await c.statuses())].map(([id, s]) => [id, essentials(s)]));
        expect(after).toEqual(before);
        await expectConverged(c);
      },
    );
  });
});
