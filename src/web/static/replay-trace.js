// A simulator trace (src/raft/sim/trace-format.ts: a header line, JSON Lines of records at simulated
// ms, an end record), read in the browser with that module's parseTrace and turned into the view
// states of cluster-model.js, so the replay page draws a recorded run with the live view's drawing
// functions. No DOM here.
//
// Times: the view state's clock runs SCALE view-ms per simulated ms. The live view animates a message
// over FLIGHT_MS (700) of its clock; a simulated message takes 1 to 8 ms, so at SCALE 100 a dot crosses
// its link in about the time the message really took.

import { FLIGHT_MS, MAX_MESSAGES, applyDown, applyStatus, emptyState } from './cluster-model.js';
// The compiled src/raft/sim/trace-format.ts, copied here by the build (scripts/copy-assets.mjs).
import { parseTrace } from './trace-format.js';

export { parseTrace };

export const SCALE = 100;

const kindOf = (m) =>
  ({
    AppendEntries: m.entries ? 'append' : 'heartbeat',
    AppendEntriesResponse: 'appendResponse',
    RequestVote: m.pre ? 'preVote' : 'vote',
    RequestVoteResponse: m.pre ? 'preVoteResponse' : 'voteResponse',
    InstallSnapshot: 'snapshot',
    InstallSnapshotResponse: 'snapshotResponse',
    TimeoutNow: 'timeoutNow',
    ReadIndexRequest: 'readIndex',
    ReadIndexResponse: 'readIndexResponse',
  })[m.type] ?? m.type;

/** Machine events in plain words for the feed (the rest keep their message type). */
const eventWords = {
  'xstate.after.electionTimeout': 'election timeout',
  'xstate.after.heartbeat': 'heartbeat timer',
  persisted: 'log written',
  'xstate.init': 'start',
};
const plain = (e) => eventWords[e] ?? (e.startsWith('xstate.after.') ? `${e.slice(13)} timer` : e);
const roleWords = { preCandidate: 'pre-candidate' };

/**
 * The replay of a parsed trace: `frames[i]` is the view state just after event i (replicas, cut links),
 * `messages` every message with its send and arrival times, `feed` every transition as a feed entry.
 * stateAt(i) builds the full view state of event i for the drawing functions.
 */
export function buildReplay(trace) {
  const state = emptyState(0);
  for (const id of trace.header.nodes) applyDown(state, id, 0);
  let cuts = [];
  const frames = [];
  const messages = [];
  const byId = new Map();
  const feed = [];
  let seq = 0;
  for (const e of trace.events) {
    const at = e.t * SCALE;
    if (e.k === 'status') {
      if (e.role === 'down') applyDown(state, e.node, at);
      else
        applyStatus(
          state,
          {
            id: e.node,
            role: roleWords[e.role] ?? e.role,
            state: e.state,
            term: e.term,
            leaderId: e.leader,
            commitIndex: e.commit,
            lastApplied: e.applied,
            lastLogIndex: e.last,
            snapshotIndex: e.snap,
            match: e.match,
            runs: e.runs.map(([from, term], i) => ({
              fromIndex: from,
              toIndex: i + 1 < e.runs.length ? e.runs[i + 1][0] - 1 : e.last,
              term,
            })),
          },
          at,
        );
    } else if (e.k === 'send' || e.k === 'duplicate') {
      const sent = e.k === 'send' ? e : { ...byId.get(e.id), id: e.id };
      const m = {
        id: e.id,
        from: sent.from,
        to: sent.to,
        kind: kindOf(sent),
        term: sent.term,
        entries: sent.entries,
        text: sent.text,
        at,
        arrives: null,
        dropped: false,
      };
      byId.set(e.id, m);
      messages.push(m);
    } else if (e.k === 'deliver' || e.k === 'drop') {
      const m = byId.get(e.id);
      if (m) {
        m.arrives = at;
        m.dropped = e.k === 'drop';
        m.why = e.why;
      }
    } else if (e.k === 'fault' && e.cuts) cuts = e.cuts;
    else if (e.k === 'transition') {
      const r = state.replicas[e.node];
      feed.push({
        id: e.node,
        seq: ++seq,
        at,
        from: e.from,
        to: e.to,
        cause: e.event,
        term: e.term,
        leaderId: r?.leaderId ?? null,
        commitIndex: r?.commitIndex ?? 0,
        appliedIndex: r?.lastApplied ?? 0,
        text: `${e.from} → ${e.to} (${plain(e.event)})`,
      });
    }
    state.at = Math.max(state.at, at);
    frames.push({
      at,
      replicas: { ...state.replicas },
      cuts,
      feedLength: feed.length,
      messages: messages.length,
    });
  }
  return { trace, frames, messages, feed, stateAt: (i) => stateAt(frames, messages, feed, i) };
}

/** The view state at event i: its replicas, the cut links as faults, the messages still in flight. */
function stateAt(frames, messages, feed, i) {
  const f = frames[Math.max(0, Math.min(i, frames.length - 1))];
  if (!f) return emptyState(0);
  const replicas = {};
  for (const [id, r] of Object.entries(f.replicas)) {
    const cut = f.cuts.filter((c) => c.startsWith(`${id}>`)).map((c) => c.slice(id.length + 1));
    replicas[id] = cut.length > 0 ? { ...r, faults: { cut } } : r;
  }
  // Messages sent within the last flight, as the live view keeps them; a dropped one is drawn so.
  const inFlight = [];
  for (let k = f.messages - 1; k >= 0 && inFlight.length < MAX_MESSAGES; k--) {
    const m = messages[k];
    if (f.at - m.at > FLIGHT_MS) break;
    inFlight.push({ ...m, dropped: m.dropped && m.arrives !== null && m.arrives <= f.at });
  }
  inFlight.reverse();
  // Link rates over the last 100 simulated ms, in messages per simulated second.
  const links = {};
  const window = 100 * SCALE;
  for (let k = f.messages - 1; k >= 0; k--) {
    const m = messages[k];
    if (f.at - m.at > window) break;
    const key = `${m.from}>${m.to}`;
    if (!links[key])
      links[key] = {
        from: m.from,
        to: m.to,
        perSecond: 0,
        dropsPerSecond: 0,
        kinds: {},
        broken: false,
        at: f.at,
      };
    const l = links[key];
    l.perSecond += 10;
    l.kinds[m.kind] = (l.kinds[m.kind] ?? 0) + 10;
    if (m.dropped && m.arrives !== null && m.arrives <= f.at) l.dropsPerSecond += 10;
  }
  for (const c of f.cuts) {
    const [from, to] = c.split('>');
    links[c] = {
      ...(links[c] ?? { from, to, perSecond: 0, dropsPerSecond: 0, kinds: {}, at: f.at }),
      broken: true,
    };
  }
  return { at: f.at, replicas, links, messages: inFlight, feed: feed.slice(0, f.feedLength) };
}

/** The index of the last event at or before view time `at` (frames are in time order). */
export function eventAt(frames, at) {
  let lo = 0;
  let hi = frames.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (frames[mid].at <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
