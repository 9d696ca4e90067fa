// The cluster view's model: one plain object, the view state, that every drawing function of
// cluster-draw.js reads and nothing else. A data source builds it: the live one (cluster.js) from each
// replica's /cluster/events stream; a replay can build the same object from recorded states and hand
// it to the same drawing functions. No DOM here (it runs under node in the unit tests too).
//
// ViewState = {
//   at: number,                      // ms (wall clock for live, the trace's clock for a replay)
//   replicas: {                      // by id, one per member
//     [id]: {
//       id, up: boolean,
//       role: 'leader' | 'follower' | 'pre-candidate' | 'candidate' | 'learner' | 'unreachable',
//       state: string,               // machine state, dotted ('leader.active')
//       term, leaderId, commitIndex, lastApplied, lastLogIndex, snapshotIndex, firstIndex,
//       runs: [{ fromIndex, toIndex, term }],   // the log as term runs, oldest first
//       match: { [peer]: index } | undefined,   // the leader's view of its followers
//       faults: { cut: [peer], pausedMs } | undefined,
//     }
//   },
//   links: {                         // by `${from}>${to}`, as the replicas at either end report them
//     [key]: { from, to, perSecond, dropsPerSecond, kinds: { [kind]: perSecond }, broken, at }
//   },
//   messages: [{ from, to, kind, term, entries?, ok?, dropped, at }],  // sampled, newest last
//   feed: [{ id, seq, at, from, to, cause, term, leaderId, commitIndex, appliedIndex, text }],
// }
//
// A History keeps frames (copies of the view state) for the last few minutes: the timeline scrubs them
// and reads the term changes, and whyElection answers "why was there an election?" from the feed.

/** How long messages stay in the view state (the drawing animates them within this). */
export const FLIGHT_MS = 700;
/** Messages kept at once: enough to show the flow, few enough to draw at 60 frames a second. */
export const MAX_MESSAGES = 150;
/** Feed entries kept (all replicas). */
export const FEED_MAX = 3000;
/** A link report older than this no longer counts (its reporter went quiet). */
export const LINK_STALE_MS = 2000;

export function emptyState(at = 0) {
  return { at, replicas: {}, links: {}, messages: [], feed: [] };
}

/** A replica's status (an SSE `status` or `snapshot` view) replaces what the state had of it. */
export function applyStatus(state, view, at) {
  state.at = Math.max(state.at, at);
  state.replicas[view.id] = {
    id: view.id,
    up: true,
    role: view.role,
    state: view.state,
    term: view.term,
    leaderId: view.leaderId ?? null,
    commitIndex: view.commitIndex,
    lastApplied: view.lastApplied,
    lastLogIndex: view.lastLogIndex,
    snapshotIndex: view.snapshotIndex,
    firstIndex: view.firstIndex ?? view.snapshotIndex + 1,
    runs: view.runs ?? [],
    match: view.match,
    faults: view.faults,
    loopLagP99Ms: view.loopLagP99Ms,
    fsyncP99Ms: view.fsyncP99Ms,
  };
}

/** A replica that stopped answering: kept with its last log, marked down. */
export function applyDown(state, id, at) {
  state.at = Math.max(state.at, at);
  const r = state.replicas[id];
  if (r) state.replicas[id] = { ...r, up: false, role: 'unreachable' };
  else
    state.replicas[id] = {
      id,
      up: false,
      role: 'unreachable',
      state: '–',
      term: 0,
      leaderId: null,
      commitIndex: 0,
      lastApplied: 0,
      lastLogIndex: 0,
      snapshotIndex: 0,
      firstIndex: 1,
      runs: [],
    };
}

/** Forget a member that left the configuration. */
export function removeReplica(state, id) {
  delete state.replicas[id];
  for (const k of Object.keys(state.links))
    if (k.startsWith(`${id}>`) || k.endsWith(`>${id}`)) delete state.links[k];
}

/**
 * One replica's traffic frame (an SSE `traffic` event). A link's rate is its sender's count; its drops
 * and brokenness come from either end (a cut drops at the end that cut it, a pause at the paused one).
 */
export function applyTraffic(state, reporter, frame, at) {
  state.at = Math.max(state.at, at);
  for (const l of frame.links) {
    const key = `${l.from}>${l.to}`;
    const cur = state.links[key] ?? { from: l.from, to: l.to, reports: {} };
    cur.reports = { ...cur.reports, [reporter]: { ...l, at } };
    state.links[key] = merged(cur, at);
  }
  // A link this reporter stopped mentioning (quiet for a while) is no longer broken by its word.
  for (const [key, cur] of Object.entries(state.links)) {
    const r = cur.reports?.[reporter];
    if (r && r.at !== at && (key.startsWith(`${reporter}>`) || key.endsWith(`>${reporter}`))) {
      const { [reporter]: _gone, ...rest } = cur.reports;
      state.links[key] = merged({ ...cur, reports: rest }, at);
    }
  }
  const msgs = frame.messages.map((m, i) => ({
    ...m,
    // Spread a frame's messages over its interval, so they do not all leave at once.
    at: at - frame.intervalMs + ((i + 1) * frame.intervalMs) / (frame.messages.length + 1),
  }));
  state.messages = [...state.messages, ...msgs].slice(-MAX_MESSAGES);
}

function merged(cur, at) {
  const reports = Object.values(cur.reports).filter((r) => at - r.at <= LINK_STALE_MS);
  const sender = cur.reports[cur.from];
  return {
    from: cur.from,
    to: cur.to,
    reports: cur.reports,
    perSecond: sender && at - sender.at <= LINK_STALE_MS ? sender.perSecond : 0,
    kinds: sender?.kinds ?? {},
    dropsPerSecond: reports.reduce((n, r) => n + r.dropsPerSecond, 0),
    broken: reports.some((r) => r.broken),
    at,
  };
}

/** Messages older than FLIGHT_MS leave the state (they have arrived, or been dropped, on screen). */
export function expireMessages(state, now) {
  if (state.messages.length > 0 && now - state.messages[0].at > FLIGHT_MS)
    state.messages = state.messages.filter((m) => now - m.at <= FLIGHT_MS);
}

/** One feed entry of replica `id` (an SSE `transition`, or the `snapshot`'s recent feed). */
export function applyTransition(state, id, entry) {
  if (state.feed.some((f) => f.id === id && f.seq === entry.seq && f.at === entry.at)) return;
  state.feed.push({ ...entry, id });
  // Several streams interleave: keep the feed in time order.
  for (let i = state.feed.length - 1; i > 0 && state.feed[i - 1].at > state.feed[i].at; i--)
    [state.feed[i - 1], state.feed[i]] = [state.feed[i], state.feed[i - 1]];
  if (state.feed.length > FEED_MAX) state.feed.splice(0, state.feed.length - FEED_MAX);
}

/** The directed links of the view, both directions of each pair, with a down end counted as broken. */
export function linkPairs(state) {
  const ids = Object.keys(state.replicas).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const pairs = [];
  for (let i = 0; i < ids.length; i++)
    for (let j = i + 1; j < ids.length; j++) {
      const [a, b] = [ids[i], ids[j]];
      const ab = state.links[`${a}>${b}`];
      const ba = state.links[`${b}>${a}`];
      const down = !state.replicas[a].up || !state.replicas[b].up;
      const cut = [a, b].some((x) => (state.replicas[x].faults?.cut ?? []).includes(x === a ? b : a));
      pairs.push({
        a,
        b,
        ab,
        ba,
        down,
        cut,
        broken: cut || Boolean(ab?.broken || ba?.broken),
        perSecond: (ab?.perSecond ?? 0) + (ba?.perSecond ?? 0),
      });
    }
  return pairs;
}

/**
 * The term changes in the feed, oldest first: for each new term, the first entry that carries it (the
 * moment a replica started or learnt it) and who led it in the end, if anyone.
 */
export function termChanges(feed) {
  const out = [];
  let top = -1;
  for (const f of feed) {
    if (f.term > top) {
      if (top >= 0) out.push({ term: f.term, at: f.at, id: f.id, text: f.text });
      top = f.term;
    }
  }
  return out;
}

const causeWords = {
  'xstate.after.electionTimeout': 'its election timeout fired (no heartbeat from a leader in time)',
  TimeoutNow: 'the leader asked it to take over (TimeoutNow, a leadership transfer)',
  transferLeadership: 'it was asked to transfer leadership',
};

/**
 * "Why was there an election?" for `term`: the replica that started it (the first to become candidate
 * at that term), and the event that set it off: the election timeout that made it a pre-candidate, or
 * the TimeoutNow that made it a candidate directly.
 */
export function whyElection(feed, term) {
  const i = feed.findIndex((f) => f.term === term && f.to === 'candidate');
  if (i < 0) {
    const first = feed.find((f) => f.term === term);
    if (!first) return null;
    return {
      term,
      id: first.id,
      at: first.at,
      cause: first.cause,
      text: `${first.id} learnt of term ${term} from ${first.cause}; the replica that started it is not in this page's feed.`,
    };
  }
  const start = feed[i];
  // Look back at the same replica: the transition into preCandidate that led here, if any.
  let trigger = start;
  for (let k = i - 1; k >= 0; k--) {
    const f = feed[k];
    if (f.id !== start.id) continue;
    if (f.to === 'preCandidate') trigger = f;
    if (f.to !== 'preCandidate' && f.to !== 'candidate') break;
  }
  const why = causeWords[trigger.cause] ?? `it received ${trigger.cause}`;
  const winner = feed.find(
    (f) => f.term === term && f.to.startsWith('leader') && !f.from.startsWith('leader'),
  );
  return {
    term,
    id: start.id,
    at: trigger.at,
    cause: trigger.cause,
    winner: winner?.id ?? null,
    text: `Term ${term}: ${start.id} started an election because ${why}${
      trigger !== start ? ', won the pre-vote, and became candidate' : ' and became candidate'
    }; ${winner ? `${winner.id} won it.` : 'nobody has won it in this feed.'}`,
  };
}

/** Frames of the view state for the last `keepMs`, for the timeline. */
export class History {
  constructor(keepMs = 5 * 60_000) {
    this.keepMs = keepMs;
    this.frames = [];
  }

  /** Keep a copy of the state (drawing data only; the feed is kept once, in the live state). */
  record(state) {
    this.frames.push({
      at: state.at,
      replicas: structuredClone(state.replicas),
      links: structuredClone(state.links),
      messages: state.messages.slice(),
    });
    const cut = state.at - this.keepMs;
    let drop = 0;
    while (drop < this.frames.length && this.frames[drop].at < cut) drop++;
    if (drop > 0) this.frames.splice(0, drop);
  }

  get first() {
    return this.frames[0]?.at ?? 0;
  }

  get last() {
    return this.frames[this.frames.length - 1]?.at ?? 0;
  }

  /** The view state as it was at `t` (the last frame at or before it), with the feed up to then. */
  at(t, feed = []) {
    let lo = 0;
    let hi = this.frames.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.frames[mid].at <= t) lo = mid;
      else hi = mid - 1;
    }
    const f = this.frames[lo];
    return { ...f, at: t, feed: feed.filter((e) => e.at <= t) };
  }
}
