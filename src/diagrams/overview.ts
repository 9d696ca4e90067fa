// The overview of a machine: its roles (states down to a depth) and its main transitions in plain
// words, for someone learning Raft. The reference diagram (dot.ts) shows everything; the overview
// folds deeper states into their ancestor, drops the self-loops and details, names each edge in plain
// words, and draws a rule that holds in every role once: "a message with a higher term makes you a
// follower" is one edge from "any role", not one per role with nine event names.
//
// What groups how is data (OVERVIEWS below), read by one generic builder: a transition takes the label
// of the first rule that matches it (by guard, trigger or action); without one, the plain name of its
// trigger (plain-names.ts).

import { type Chart, type ChartState, type ChartTransition, allStates } from './chart.js';
import { plainTrigger } from './plain-names.js';

export interface OverviewRule {
  /** Matches a transition with this guard / trigger (`after electionTimeout`, `always`) / action. */
  guard?: string;
  trigger?: string;
  action?: string;
  /** The edge's plain label. */
  label?: string;
  /** One edge from a node "any role" (or the list of the roles it leaves) instead of one per role. */
  fromAnyState?: boolean;
  /** A detail the overview leaves out (the reference shows it). */
  hide?: boolean;
  /** Leave it out where it stays in its state (with `loops`). */
  hideLoop?: boolean;
}

export interface OverviewSpec {
  /** States deeper than this fold into their ancestor at this depth (1: the top-level states). */
  depth: number;
  /** Keep transitions that stay in their state (the chat router's routing is nothing but those). */
  loops?: boolean;
  /** What the "any" node is called. */
  anyLabel: string;
  rules: OverviewRule[];
}

export const OVERVIEWS: Record<string, OverviewSpec> = {
  replica: {
    depth: 1,
    anyLabel: 'any role',
    rules: [
      // Listed first for every message in every role (machines/replica/rules.ts): adopt the term,
      // become a follower, handle the message again.
      { guard: 'mustAdoptTerm', label: 'a message with a higher term', fromAnyState: true },
      { guard: 'canCampaign', label: 'election timeout' },
      { guard: 'notVoter', label: 'made a learner' },
      { guard: 'isVoter', label: 'made a voter' },
      { guard: 'preVoteWon', label: 'pre-vote won' },
      { guard: 'preVoteLost', label: 'pre-vote lost' },
      { guard: 'electionWon', label: 'election won' },
      { guard: 'electionLost', label: 'election lost' },
      { guard: 'transferRequested', label: 'timeout now (transfer)' },
      { guard: 'leaderRemoved', label: 'removed from the cluster' },
      { action: 'handleAppend', label: 'a leader of this term appends' },
      { action: 'handleSnapshotChunk', label: 'a leader of this term appends' },
      // Granting a vote to a same-term candidate while campaigning or leading is a corner of the
      // protocol (a transfer's campaign); the reference shows it.
      { guard: 'canGrantVote', hide: true },
    ],
  },
  replication: {
    depth: 2,
    loops: true,
    anyLabel: 'any state',
    rules: [
      { guard: 'quorumActive', label: 'check: a quorum answered' },
      { trigger: 'after checkQuorum', label: 'check: no quorum, step down' },
      { trigger: 'after heartbeat', label: 'heartbeat: send append entries' },
    ],
  },
  chat: {
    depth: 1,
    loops: true,
    anyLabel: 'any state',
    rules: [
      { guard: 'isLeader', label: 'this replica leads', hideLoop: true },
      { guard: 'knowsLeader', label: 'a leader is known', hideLoop: true },
      { trigger: 'roleChanged', label: 'no leader known', hideLoop: true },
      { guard: 'isWrite', action: 'propose', label: 'write: propose to the log' },
      { guard: 'isWrite', action: 'forward', label: 'write: forward to the leader' },
      { trigger: 'request', action: 'readIndex', label: 'read: read index' },
      { trigger: 'request', action: 'buffer', label: 'call: wait for a leader' },
      { trigger: 'after leaderWait', label: 'waited too long: refuse' },
    ],
  },
};

export interface OverviewEdge {
  /** State path, or null for the "any" node. */
  source: string | null;
  target: string;
  /** Plain labels, one line each, in the machine's order. */
  labels: string[];
  /** The triggers it stands for (`after electionTimeout`, `always`, event types): the page matches fired
   *  transitions to edges by them. */
  triggers: string[];
}

export interface Overview {
  id: string;
  /** The states shown: paths at or above the depth, depth first. */
  states: ChartState[];
  /** For the "any" node: the label, and the states it stands for. */
  any: { label: string; sources: string[] } | null;
  edges: OverviewEdge[];
}

function depthOf(path: string): number {
  return path === '' ? 0 : path.split('.').length;
}

function fold(path: string, depth: number): string {
  return path.split('.').slice(0, depth).join('.');
}

function matches(rule: OverviewRule, t: ChartTransition): boolean {
  if (rule.guard !== undefined && rule.guard !== t.guard) return false;
  if (rule.trigger !== undefined && rule.trigger !== t.trigger) return false;
  if (rule.action !== undefined && !t.actions.includes(rule.action)) return false;
  return true;
}

export function overviewOf(chart: Chart, spec: OverviewSpec): Overview {
  const states = allStates(chart.root).filter((s) => s.path !== '' && depthOf(s.path) <= spec.depth);
  const edges = new Map<string, OverviewEdge>();
  const anySources = new Set<string>();
  const add = (source: string | null, target: string, label: string, trigger: string) => {
    const key = JSON.stringify([source, target]);
    const e = edges.get(key) ?? { source, target, labels: [], triggers: [] };
    if (!e.labels.includes(label)) e.labels.push(label);
    if (!e.triggers.includes(trigger)) e.triggers.push(trigger);
    edges.set(key, e);
  };
  for (const s of allStates(chart.root)) {
    if (s.path === '') continue;
    const source = fold(s.path, spec.depth);
    for (const t of s.transitions) {
      const rule = spec.rules.find((r) => matches(r, t));
      if (rule?.hide) continue;
      const label = rule?.label ?? plainTrigger(t.trigger);
      // Internal transitions (no target) that do something stay in their state.
      const targets = t.targets.length > 0 ? t.targets : spec.loops && t.actions.length > 0 ? [s.path] : [];
      for (const raw of targets) {
        const target = fold(raw, spec.depth);
        if (rule?.fromAnyState) {
          anySources.add(source);
          add(null, target, label, t.trigger);
        } else if (target !== source || (spec.loops && !rule?.hideLoop)) {
          add(source, target, label, t.trigger);
        }
      }
    }
  }
  const all = states.filter((s) => depthOf(s.path) === 1).map((s) => s.path);
  const sources = all.filter((p) => anySources.has(p));
  const any =
    sources.length === 0
      ? null
      : { label: sources.length === all.length ? spec.anyLabel : sources.join(', '), sources };
  return { id: chart.id, states, any, edges: [...edges.values()] };
}
