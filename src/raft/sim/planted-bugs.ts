// Planted bugs, for testing the tests: a replica host that breaks Raft on purpose, so that a seed fails
// an invariant deterministically and the failure tooling (trace files, the replay page) has a red
// seed to show. Test-only: nothing in the server or its flags reaches this; the simulator takes it
// from runSeed's `plantedBug` option, and `make sim` from QC_SIM_PLANTED_BUG (documented as test-only).
//
// Each bug rewrites what a replica sends, never the machine, so the production code stays intact:
// - vote-twice: a voter that refuses a real (not pre-) vote grants it anyway. The first split vote
//   makes it grant two candidates in one term (election safety).
// - commit-without-quorum: a leader takes every AppendEntries it sends as acknowledged at once (it
//   hears a success from the peer before the peer has the entries), so it commits and applies
//   entries no quorum holds. A leader cut off in a minority, or one that crashes, then commits
//   entries that the next leader does not have (leader completeness, state machine safety).

import type { AppendEntriesResponse, RaftMessage } from '../../../machines/protocol.js';
import type { ReplicaFactory } from './replica-host.js';

export const PLANTED_BUGS = ['vote-twice', 'commit-without-quorum'] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

export function isPlantedBug(name: string): name is PlantedBug {
  return (PLANTED_BUGS as readonly string[]).includes(name);
}

/** What `bug` makes a replica send instead of `m`. */
export function plant(bug: PlantedBug, m: RaftMessage): RaftMessage {
  if (bug === 'vote-twice' && m.type === 'RequestVoteResponse' && !m.preVote && !m.granted)
    return { ...m, granted: true };
  return m;
}

/** commit-without-quorum: the acknowledgement the leader imagines for `m`, before `m` arrived anywhere. */
export function imaginedAck(bug: PlantedBug, m: RaftMessage): AppendEntriesResponse | undefined {
  if (bug !== 'commit-without-quorum' || m.type !== 'AppendEntries' || m.entries.length === 0)
    return undefined;
  return {
    type: 'AppendEntriesResponse',
    from: m.to,
    to: m.from,
    term: m.term,
    success: true,
    matchIndex: m.prevLogIndex + m.entries.length,
    conflictIndex: 0,
    conflictTerm: 0,
    readRound: m.readRound,
  };
}

/** `factory` with every replica's outgoing messages (and what it hears back) bent by `bug`. */
export function withPlantedBug(bug: PlantedBug, factory: ReplicaFactory): ReplicaFactory {
  return (deps) => {
    const transport = deps.transport;
    let handler: ((m: RaftMessage) => void) | undefined;
    // Each entry is imagined acknowledged once per peer and term: the real refusals that follow make
    // the leader resend, and imagining those acks too would loop at network speed.
    const imagined = new Map<string, { term: number; index: number }>();
    return factory({
      ...deps,
      transport: {
        send: (m) => {
          transport.send(plant(bug, m));
          const ack = imaginedAck(bug, m);
          const seen = ack && imagined.get(ack.from);
          if (!ack || (seen && seen.term === ack.term && seen.index >= ack.matchIndex)) return;
          imagined.set(ack.from, { term: ack.term, index: ack.matchIndex });
          deps.defer(() => handler?.(ack));
        },
        listen: (h) => {
          handler = h;
          transport.listen(h);
        },
        setPeers: (members) => transport.setPeers(members),
        close: () => {
          handler = undefined;
          transport.close();
        },
      },
    });
  };
}
