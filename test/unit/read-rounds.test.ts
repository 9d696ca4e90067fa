// The leader's ReadIndex rounds (machines/replication/progress.ts), the batching rules that keep reads
// linearizable (docs/design/follower-reads.md, "Batching"):
//   - every read queued before a round starts shares that round (one heartbeat per peer for all);
//   - a read that arrives while a round is in flight does NOT use it: it waits for the next round,
//     whose read index is taken after it arrived;
//   - only acknowledgements of a heartbeat stamped with the round (or a later one) confirm it: an
//     answer to a heartbeat sent before the round started proves nothing about leadership after it;
//   - no round before this term's first entry committed (the commit index may lag before that).

import { describe, expect, it } from 'vitest';
import type { AppendEntries, AppendEntriesResponse } from '../../machines/protocol.js';
import {
  type Output,
  type ReplicationContext,
  emptyOutput,
  initialReplicationContext,
  onAppendResponse,
  onReadIndex,
  onSelfPersisted,
} from '../../machines/replication/progress.js';

const PEERS = ['n2', 'n3', 'n4', 'n5'];

/** A leader of term 2 whose log holds its noop at index 1, committed unless `committed` is false. */
function leader(committed = true): ReplicationContext {
  const c = initialReplicationContext({
    id: 'n1',
    term: 2,
    snapshotIndex: 0,
    snapshotTerm: 0,
    termRuns: [{ index: 1, term: 2 }],
    config: { members: ['n1', ...PEERS].map((id) => ({ id, address: `${id}:1`, voter: true })) },
    commitIndex: committed ? 1 : 0,
    lastIndex: 1,
    termStartIndex: 1,
    selfMatch: committed ? 1 : 0,
    timing: { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 },
  });
  for (const id of PEERS) {
    c.peers[id].match = committed ? 1 : 0;
    c.peers[id].mode = 'pipeline';
  }
  return c;
}

function heartbeats(out: Output): AppendEntries[] {
  return out.messages.map((o) => o.message).filter((m): m is AppendEntries => m.type === 'AppendEntries');
}

function ack(c: ReplicationContext, from: string, readRound: number): Output {
  const out = emptyOutput();
  const m: AppendEntriesResponse = {
    type: 'AppendEntriesResponse',
    from,
    to: c.id,
    term: c.term,
    success: true,
    matchIndex: 1,
    conflictIndex: 0,
    conflictTerm: 0,
    readRound,
  };
  onAppendResponse(c, m, out);
  return out;
}

function read(c: ReplicationContext, requestId: string, from = 'n1'): Output {
  const out = emptyOutput();
  onReadIndex(c, { requestId, from }, out);
  return out;
}

describe('ReadIndex rounds on the leader', () => {
  it('reads queued before a round starts share it: one heartbeat per peer, one answer for all', () => {
    const c = leader();
    const first = read(c, 'a');
    const round = heartbeats(first)[0].readRound;
    expect(heartbeats(first).map((m) => m.to)).toEqual(PEERS);
    // b and c arrive during round 1: queued, no heartbeat of their own.
    expect(heartbeats(read(c, 'b', 'n2'))).toEqual([]);
    expect(heartbeats(read(c, 'c', 'n3'))).toEqual([]);
    expect(ack(c, 'n2', round).reads).toEqual([]);
    const done = ack(c, 'n3', round);
    // Round 1 (a) is confirmed by a quorum (n1, n2, n3); b and c start round 2 together.
    expect(done.reads).toEqual([{ requests: [{ requestId: 'a', from: 'n1' }], index: 1 }]);
    const second = heartbeats(done);
    expect(second.map((m) => m.to)).toEqual(PEERS);
    expect(second[0].readRound).toBe(round + 1);
    ack(c, 'n4', round + 1);
    expect(ack(c, 'n5', round + 1).reads).toEqual([
      {
        requests: [
          { requestId: 'b', from: 'n2' },
          { requestId: 'c', from: 'n3' },
        ],
        index: 1,
      },
    ]);
  });

  it('a read that arrives after a round started never uses that round', () => {
    const c = leader();
    const round = heartbeats(read(c, 'early'))[0].readRound;
    read(c, 'late');
    ack(c, 'n2', round);
    const out = ack(c, 'n3', round);
    // Only `early` is answered by the round it started; `late` waits for a round of its own.
    expect(out.reads.flatMap((r) => r.requests.map((q) => q.requestId))).toEqual(['early']);
    expect(c.readInflight?.requests.map((q) => q.requestId)).toEqual(['late']);
    expect(c.readInflight?.round).toBe(round + 1);
    // Late acks of the old round do not confirm the new one.
    expect(ack(c, 'n4', round).reads).toEqual([]);
    expect(ack(c, 'n5', round).reads).toEqual([]);
    expect(c.readInflight?.requests.map((q) => q.requestId)).toEqual(['late']);
  });

  it('an answer to a heartbeat sent before the round started does not confirm it', () => {
    const c = leader();
    // Round 1 completes; round 2 starts for the next read.
    const first = heartbeats(read(c, 'a'))[0].readRound;
    ack(c, 'n2', first);
    ack(c, 'n3', first);
    const round = heartbeats(read(c, 'b'))[0].readRound;
    expect(round).toBe(first + 1);
    // Responses stamped with round 1 (late answers to its heartbeats) or none are no evidence of
    // leadership after round 2 began.
    expect(ack(c, 'n4', first).reads).toEqual([]);
    expect(ack(c, 'n5', first).reads).toEqual([]);
    expect(ack(c, 'n2', 0).reads).toEqual([]);
    expect(c.readInflight?.acks).toEqual(['n1']);
    // A later round's stamp counts (the peer saw a heartbeat sent after this round began).
    ack(c, 'n2', round);
    expect(ack(c, 'n3', round + 1).reads).toEqual([{ requests: [{ requestId: 'b', from: 'n1' }], index: 1 }]);
  });

  it('no round starts before this term’s first entry committed; then the queue goes in one round', () => {
    const c = leader(false);
    expect(heartbeats(read(c, 'a'))).toEqual([]);
    expect(heartbeats(read(c, 'b', 'n4'))).toEqual([]);
    expect(c.readInflight).toBeNull();
    // The noop commits (a quorum of followers matched it, then the leader's own write is durable).
    for (const id of PEERS.slice(0, 2)) c.peers[id].match = 1;
    const out = emptyOutput();
    onSelfPersisted(c, 1, out);
    expect(out.commitIndex).toBe(1);
    expect(c.readInflight?.index).toBe(1);
    expect(c.readInflight?.requests.map((q) => q.requestId)).toEqual(['a', 'b']);
    expect(
      heartbeats(out)
        .filter((m) => m.readRound === c.readRound)
        .map((m) => m.to),
    ).toEqual(PEERS);
  });
});
