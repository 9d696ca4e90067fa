// The replication actor: invoked by the replica's `leader` state, so it exists exactly while this replica
// leads and is stopped the moment leadership is lost. It owns per-peer progress, heartbeats,
// check-quorum, commit computation, ReadIndex rounds and transfer catch-up, and reports to the replica
// with sendParent; the replica turns reports into emitted effects.
//
// It knows the leader's log by terms only (plain data, like the replica): its AppendEntries name the
// range of entries to carry, and the host's Ready executor attaches them as it sends. The replica's
// first `appended` event (the new leader's noop) starts it.

import { enqueueActions, setup } from 'xstate';
import type { AppendEntriesResponse, ClusterConfig, InstallSnapshotResponse, NodeId } from '../protocol.js';
import type { ReplicationReport } from '../replica/types.js';
import {
  type Output,
  type ReplicationContext,
  type ReplicationInput,
  draft,
  emptyOutput,
  hasOutput,
  initialReplicationContext,
  onAppendResponse,
  onAppended,
  onCompacted,
  onConfig,
  onHeartbeatTick,
  onReadIndex,
  onSelfPersisted,
  onSnapshotResponse,
  onTransfer,
  quorumActive,
  resetActivity,
} from './progress.js';

/** Events the replica sends to the replication actor (sendTo). */
export type ReplicationEvent =
  /** Entries were appended to the leader's log through `lastIndex`. */
  | { type: 'appended'; lastIndex: number }
  /** The leader's own log is durable through `index`. */
  | { type: 'selfPersisted'; index: number }
  /** The host compacted the leader's log through `index` (whose entry has `term`). */
  | { type: 'compacted'; index: number; term: number }
  /** The effective configuration changed. */
  | { type: 'config'; config: ClusterConfig }
  /** A read to confirm: `from` is the replica that asked (this leader, or a follower's ReadIndexRequest). */
  | { type: 'readIndex'; requestId: string; from: NodeId }
  | { type: 'transfer'; to: NodeId | null }
  | { type: 'transferAbort' }
  | AppendEntriesResponse
  | InstallSnapshotResponse;

type Step = (c: ReplicationContext, out: Output, event: ReplicationEvent) => void;

/** The part of XState's action enqueuer a step needs. */
interface Enqueue {
  assign(c: ReplicationContext): void;
  sendParent(report: ReplicationReport): void;
}

function report(q: Enqueue, out: Output): void {
  if (hasOutput(out)) {
    q.sendParent({
      type: 'replication.output',
      messages: out.messages,
      snapshots: out.snapshots,
      commitIndex: out.commitIndex,
      reads: out.reads,
    });
  }
  if (out.transferReady !== null) q.sendParent({ type: 'replication.transferReady', to: out.transferReady });
}

/** Run one engine step on a draft, assign it, and report the output to the replica in one event. */
function runStep(context: ReplicationContext, event: ReplicationEvent, enqueue: unknown, fn: Step): void {
  const q = enqueue as Enqueue;
  const c = draft(context);
  const out = emptyOutput();
  fn(c, out, event);
  q.assign(c);
  report(q, out);
}

export const replicationMachine = setup({
  types: {
    context: {} as ReplicationContext,
    events: {} as ReplicationEvent,
    input: {} as ReplicationInput,
  },
  delays: {
    heartbeat: ({ context }) => context.timing.heartbeatMs,
    /**
     * A leader that has not heard from a quorum within an election timeout steps down. The window is the
     * longest election timeout, not the shortest: followers wait 150-300 ms before they campaign, so a
     * leader that gave up after 150 ms would be the first to quit when the event loop is merely slow
     * (measured: 20-240 ms scheduling delays on a loaded 2-core machine caused leader churn). Safety does
     * not depend on this window; only availability does.
     */
    checkQuorum: ({ context }) => context.timing.electionMaxMs,
  },
  guards: {
    quorumActive: ({ context }) => quorumActive(context),
  },
  actions: {
    heartbeatTick: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out) => onHeartbeatTick(c, out)),
    ),
    resetActivity: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c) => resetActivity(c)),
    ),
    reportQuorumLost: enqueueActions(({ enqueue }) => {
      enqueue.sendParent({ type: 'replication.quorumLost' } satisfies ReplicationReport);
    }),
    appended: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out, e) => {
        if (e.type === 'appended') onAppended(c, e.lastIndex, out);
      }),
    ),
    selfPersisted: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out, e) => {
        if (e.type === 'selfPersisted') onSelfPersisted(c, e.index, out);
      }),
    ),
    compacted: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, _out, e) => {
        if (e.type === 'compacted') onCompacted(c, e.index, e.term);
      }),
    ),
    config: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out, e) => {
        if (e.type === 'config') onConfig(c, e.config, out);
      }),
    ),
    readIndex: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out, e) => {
        if (e.type === 'readIndex') onReadIndex(c, { requestId: e.requestId, from: e.from }, out);
      }),
    ),
    appendResponse: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out, e) => {
        if (e.type === 'AppendEntriesResponse') onAppendResponse(c, e, out);
      }),
    ),
    snapshotResponse: enqueueActions(({ context, event, enqueue }) =>
      runStep(context, event, enqueue, (c, out, e) => {
        if (e.type === 'InstallSnapshotResponse') onSnapshotResponse(c, e, out);
      }),
    ),
    transfer: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'transfer') return;
      const q = enqueue as unknown as Enqueue;
      const c = draft(context);
      const out = emptyOutput();
      const ok = onTransfer(c, event.to, out);
      q.assign(c);
      if (!ok) q.sendParent({ type: 'replication.transferFailed' });
      else report(q, out);
    }),
    transferAbort: enqueueActions(({ enqueue }) => {
      enqueue.assign({ transfer: null });
    }),
  },
}).createMachine({
  id: 'replication',
  context: ({ input }) => initialReplicationContext(input),
  type: 'parallel',
  on: {
    appended: { actions: 'appended' },
    selfPersisted: { actions: 'selfPersisted' },
    compacted: { actions: 'compacted' },
    config: { actions: 'config' },
    readIndex: { actions: 'readIndex' },
    transfer: { actions: 'transfer' },
    transferAbort: { actions: 'transferAbort' },
    AppendEntriesResponse: { actions: 'appendResponse' },
    InstallSnapshotResponse: { actions: 'snapshotResponse' },
  },
  states: {
    heartbeats: {
      initial: 'waiting',
      states: {
        waiting: {
          after: { heartbeat: { target: 'waiting', reenter: true, actions: 'heartbeatTick' } },
        },
      },
    },
    quorum: {
      initial: 'watching',
      states: {
        watching: {
          after: {
            checkQuorum: [
              { guard: 'quorumActive', target: 'watching', reenter: true, actions: 'resetActivity' },
              { target: 'lost', actions: 'reportQuorumLost' },
            ],
          },
        },
        /** Reported; the replica stops this actor as it steps down. */
        lost: {},
      },
    },
  },
});
