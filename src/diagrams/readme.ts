// diagrams/README.md: a paragraph per machine and its Mermaid diagram (GitHub renders ```mermaid
// blocks), with a link to the SVG. Generated, so it never drifts from the machines.

const ABOUT: Record<string, { title: string; text: string }> = {
  replica: {
    title: 'replica: the Raft roles',
    text: [
      'One Raft server. Its top-level states are the roles. A **follower** whose randomized',
      '`electionTimeout` fires becomes a **preCandidate**: it asks for pre-votes without bumping its term,',
      'so a partitioned or rejoining node cannot disrupt a working leader. Winning the pre-vote makes it a',
      '**candidate** (new term, a durable vote for itself, RequestVote to every voter); `TimeoutNow` from',
      'the leader skips pre-vote (leadership transfer). A candidate whose own vote is durable and that has a',
      'quorum becomes **leader**; a split vote sends it back through pre-vote. The **leader** invokes the',
      '`replication` actor and steps down on a higher term or when check-quorum fails',
      '(`replication.quorumLost`). A **learner** is a non-voter: it replicates but never campaigns.',
      'The term rule (`[mustAdoptTerm] / adoptTerm, reraise`) is listed first for every message in every',
      'role: adopt the higher term, become a follower, handle the message again. Notes list the handlers',
      'that do not change state (`ignore` = dropped, e.g. a vote request inside the leader lease).',
    ].join('\n'),
  },
  replication: {
    title: 'replication: the leader’s log shipping',
    text: [
      'Invoked by the replica’s `leader` state, so it exists exactly while this replica leads. Two',
      'parallel regions: `heartbeats` re-arms every `heartbeat` delay and sends AppendEntries (empty or',
      'with entries, probe or pipeline mode per peer); `quorum` checks every `checkQuorum` delay that a',
      'quorum answered since the last check, and otherwise reports `replication.quorumLost` so the leader',
      'steps down. Its events (appended, selfPersisted, AppendEntriesResponse, readIndex, transfer...) are',
      'handled in every state: they advance per-peer progress, the commit index (current-term entries',
      'only), ReadIndex rounds and leadership-transfer catch-up.',
    ].join('\n'),
  },
  chat: {
    title: 'chat: routing client calls by role',
    text: [
      'Routes each client call by what the replica says its role is (`roleChanged`). In **leader**, writes',
      'go to the replica’s `propose` (the replication path) and reads to `readIndex`. In **follower**,',
      'writes are forwarded to the known leader and reads still go to `readIndex`: the replica asks the',
      'leader for a read index and serves once it has applied through it (follower reads, see',
      'docs/design/follower-reads.md). In **leaderless**, calls wait (`buffer`); each',
      '`leaderWait` refuses with UNAVAILABLE the calls that have waited a full period, and a leader that',
      'appears in time gets the waiting calls (`routeBuffered` / `forwardBuffered` on entry). The',
      'model-based tests (test/model/chat.model.test.ts) walk every shortest and simple path of this chart',
      'and check that propose happens only in leader, forward only in follower and only for writes (a',
      'read is never forwarded), UNAVAILABLE only after leaderWait.',
    ].join('\n'),
  },
};

export function readme(diagrams: { name: string; text: string }[]): string {
  const out = [
    '# State machine diagrams',
    '',
    'Generated from the machine definitions by `make diagrams` (scripts/diagrams.ts, src/diagrams/);',
    'do not edit. `test/unit/diagrams.test.ts` fails when a committed file differs from what the',
    'generator produces now. Edges are labelled `event [guard] / actions`; `after <delay>` is a named',
    'timer; `always` is an eventless transition; `(reenter)` re-enters the state (re-arming its timers).',
    'Each machine also has an SVG (Graphviz, rendered without a browser) and its DOT source.',
    '',
    'Two levels, both generated from the machines:',
    '',
    '- **Overview** (`<machine>.overview.svg`): the roles and the main transitions, in plain words, for',
    '  learning what the machine does. States below the roles fold into them, self-transitions become',
    '  ↻ lines inside their state, and a rule that holds in every role is drawn once: "a message with a',
    '  higher term" is one edge from *any role* to follower. What is grouped, renamed or left out is data',
    '  next to the generator (`OVERVIEWS` in src/diagrams/overview.ts); event and timer names come from',
    '  src/diagrams/plain-names.ts, the same words as the inspector feed.',
    '- **Reference** (`<machine>.svg`, and the Mermaid below): every transition with its event, guard and',
    "  actions. In the SVG, transitions that re-enter their state are listed in the state's note (↻)",
    '  rather than drawn as nested loops, so no label overlaps another and no edge runs through a label',
    '  (test/unit/diagram-overview.test.ts checks both in the SVGs).',
    '',
    'The /cluster page shows both for a replica (click its card), with its active states lit.',
    '',
  ];
  for (const d of diagrams) {
    const about = ABOUT[d.name];
    out.push(`## ${about ? about.title : d.name}`, '');
    if (about) out.push(about.text, '');
    out.push(`![${d.name} overview](${d.name}.overview.svg)`, '');
    out.push(
      `Overview: [${d.name}.overview.svg](${d.name}.overview.svg) · Reference SVG: [${d.name}.svg](${d.name}.svg) · Mermaid source: [${d.name}.mmd](${d.name}.mmd)`,
      '',
    );
    out.push('```mermaid', d.text.trimEnd(), '```', '');
  }
  return out.join('\n');
}
