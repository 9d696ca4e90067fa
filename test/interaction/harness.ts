// A tiny in-process harness in the style of etcd raft's interaction tests: N replica actors on one
// SimulatedClock, each with a MemoryLogStore and a minimal host, and a manual network. Tests deliver,
// drop and partition messages step by step and assert the exact message trace.

import { isDeepStrictEqual } from 'node:util';
import { type Actor, SimulatedClock, createActor } from 'xstate';
import type {
  ClusterConfig,
  Effect,
  Entry,
  NodeId,
  RaftMessage,
  ReplicaEvent,
  Role,
  SnapshotMeta,
  Timing,
} from '../../machines/protocol.js';
import { termAt } from '../../machines/replica/log-terms.js';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import type { LogStore } from '../../src/raft/interfaces.js';
import { ReadTracker } from '../../src/raft/read-tracker.js';
import { ReadyExecutor } from '../../src/raft/ready-executor.js';
import { LateLogStore } from '../support/late-log-store.js';
import { MemoryLogStore, type MemoryLogStoreInit } from '../support/memory-log-store.js';

/** The in-memory stores a harness node runs on (test/support/). */
export interface HarnessStore extends LogStore {
  configAt(index: number): ClusterConfig;
  holdFlushes(): void;
  releaseFlushes(): void;
  durable(): HarnessStore;
}

export interface NodeSpec {
  id: NodeId;
  voter?: boolean;
  /** Election timeout range for this node (defaults to the cluster's). */
  election?: [number, number];
  /** Initial log as a list of terms (entry i + 1 has terms[i]). */
  log?: number[];
  /** Initial hard state. */
  term?: number;
  votedFor?: NodeId | null;
}

export interface HarnessOptions {
  nodes: (NodeId | NodeSpec)[];
  heartbeatMs?: number;
  election?: [number, number];
  seed?: number;
  maxBatch?: number;
  maxInflight?: number;
  /**
   * TEST ONLY: run every node's Ready executor with its ordering broken on purpose (afterPersist sends
   * leave before their write is durable), to show that the tests catch it.
   */
  unsafeSendBeforePersist?: boolean;
  /**
   * Nodes whose log store shows a write only once it is durable (test/support/late-log-store.ts): as if
   * their host carried out `persist` late. The machine must decide exactly as with a prompt store.
   */
  lateStores?: NodeId[];
}

type Filter = (m: RaftMessage) => boolean;

export class HarnessNode {
  actor!: Actor<typeof replicaMachine>;
  effects: Effect[] = [];
  applied: Entry[] = [];
  readReady: { requestId: string; index: number }[] = [];
  readRejected: string[] = [];
  proposalsRejected: { requestId: string; reason: string }[] = [];
  errors: unknown[] = [];
  /**
   * Linearizable reads through the production ReadTracker (src/raft/read-tracker.ts), fed with this
   * host's effects and applied index like RaftNode: see read().
   */
  reads!: ReadTracker;
  /** Request ids of the reads started with read(), and of those that may now be served. */
  readsStarted: string[] = [];
  readsServed: string[] = [];
  readsFailed: string[] = [];
  /** The latest snapshot: what was applied through its index (sent whole, as one chunk). */
  snapshot: { meta: SnapshotMeta; applied: Entry[] } | null = null;
  /** The production Ready executor (src/raft/ready-executor.ts), remade at each start. */
  private ready!: ReadyExecutor;

  constructor(
    readonly cluster: Cluster,
    readonly id: NodeId,
    public store: HarnessStore,
    readonly timing: Timing,
  ) {}

  start(): void {
    const c = this.cluster;
    this.reads?.failAll(new Error('restarted'));
    this.reads = new ReadTracker({
      prefix: this.id,
      clock: c.clock,
      timeoutMs: 60_000,
      request: (requestId) => {
        this.readsStarted.push(requestId);
        this.actor.send({ type: 'readIndex', requestId });
      },
      // No turns here: a read's batch goes out at once, unless one in flight holds it back.
      defer: (fn) => fn(),
    });
    this.reads.appliedTo(this.appliedIndex());
    this.actor = createActor(replicaMachine, {
      clock: c.clock,
      input: {
        id: this.id,
        hardState: this.store.hardState(),
        config: this.store.config(),
        appliedIndex: this.applied.length > 0 ? this.applied[this.applied.length - 1].index : 0,
        log: this.store,
        timing: this.timing,
        seed: c.seed + this.id.charCodeAt(this.id.length - 1),
        maxBatch: c.opts.maxBatch,
        maxInflight: c.opts.maxInflight,
      },
    });
    this.actor.subscribe({ error: (err) => this.errors.push(err) });
    // Flushes and applies run at once (a fast disk) unless the test holds the store's flushes.
    const ready = new ReadyExecutor(
      {
        log: this.store,
        send: (m) => c.enqueue(m),
        defer: (fn) => fn(),
        persisted: (p) => this.actor.send({ type: 'persisted', ...p }),
        apply: (upTo) => this.applyCommitted(upTo),
        other: (e) => this.effect(e),
        unsafeSendBeforePersist: c.opts.unsafeSendBeforePersist,
      },
      {
        durableIndex: this.store.lastIndex(),
        commitIndex: this.appliedIndex(),
        appliedIndex: this.appliedIndex(),
      },
    );
    this.ready = ready;
    this.actor.on('*', (e) => {
      this.effects.push(e as Effect);
      ready.execute([e as Effect]);
    });
    this.actor.start();
  }

  stop(): void {
    this.ready.stop();
    this.actor.stop();
  }

  /**
   * Start a linearizable read as the real host does; returns the request id of its batch, or undefined
   * while a batch in flight holds it back (it joins the next batch sent: readsStarted[n] where n is
   * readsStarted's length now). The batch's id lands in readsServed once the read may be served (index
   * known and applied through it), in readsFailed when it is refused. Both happen in promise callbacks:
   * `await settled()` before looking.
   */
  read(): string | undefined {
    const before = this.readsStarted.length;
    this.reads.read().then(
      () => this.readsServed.push(this.readsStarted[before]),
      () => this.readsFailed.push(this.readsStarted[before]),
    );
    return this.readsStarted[before];
  }

  appliedIndex(): number {
    return this.applied.length > 0 ? this.applied[this.applied.length - 1].index : 0;
  }

  send(event: ReplicaEvent): void {
    this.actor.send(event);
  }

  role(): string {
    const v = this.actor.getSnapshot().value;
    return typeof v === 'string' ? v : Object.keys(v)[0];
  }

  /** The full state path, e.g. "leader.transferring". */
  state(): string {
    const v = this.actor.getSnapshot().value;
    if (typeof v === 'string') return v;
    const [k, sub] = Object.entries(v)[0];
    return `${k}.${String(sub)}`;
  }

  ctx() {
    return this.actor.getSnapshot().context;
  }

  term(): number {
    return this.ctx().term;
  }

  roles(): Role[] {
    return this.effects.filter((e) => e.type === 'roleChanged').map((e) => (e as { role: Role }).role);
  }

  /** The effects the Ready executor leaves to the host. */
  private effect(e: Effect): void {
    this.reads.effect(e);
    switch (e.type) {
      case 'readReady':
        this.readReady.push({ requestId: e.requestId, index: e.index });
        break;
      case 'readRejected':
        this.readRejected.push(e.requestId);
        break;
      case 'proposalRejected':
        this.proposalsRejected.push({ requestId: e.requestId, reason: e.reason });
        break;
      case 'sendSnapshot': {
        const snap = this.snapshot;
        if (!snap) break;
        this.cluster.enqueue({
          type: 'InstallSnapshot',
          from: this.id,
          to: e.to,
          term: e.term,
          lastIncludedIndex: snap.meta.index,
          lastIncludedTerm: snap.meta.term,
          config: snap.meta.config,
          offset: 0,
          chunk: Buffer.from(JSON.stringify(snap.applied)).toString('base64'),
          done: true,
        });
        break;
      }
      case 'receiveSnapshotChunk': {
        const m = e.message;
        const meta: SnapshotMeta = { index: m.lastIncludedIndex, term: m.lastIncludedTerm, config: m.config };
        const applied = JSON.parse(Buffer.from(m.chunk, 'base64').toString()) as Entry[];
        // Install: the state machine takes the snapshot's state, the log is reset to it.
        this.snapshot = { meta, applied };
        this.applied = applied;
        this.store.resetToSnapshot(meta);
        this.ready.snapshotInstalled(meta.index);
        this.actor.send({ type: 'snapshotInstalled', meta });
        this.reads.appliedTo(meta.index);
        break;
      }
    }
  }

  /**
   * Take a snapshot of what is applied and compact the log behind it, keeping `keep` entries.
   * Returns the snapshot's metadata.
   */
  takeSnapshot(keep = 0): SnapshotMeta {
    const index = this.applied.length > 0 ? this.applied[this.applied.length - 1].index : 0;
    const meta: SnapshotMeta = {
      index,
      term: this.store.termAt(index) ?? 0,
      config: this.store.configAt(index),
    };
    this.snapshot = { meta, applied: [...this.applied] };
    const through = index - keep;
    if (through > this.store.snapshot().index) {
      const compacted = {
        index: through,
        term: this.store.termAt(through) ?? 0,
        config: this.store.configAt(through),
      };
      this.store.compact(compacted);
      this.actor.send({ type: 'logCompacted', meta: compacted });
    }
    return meta;
  }

  /** The executor's apply sink: committed entries durable here, through `upTo`. */
  private applyCommitted(upTo: number): number {
    const last = this.appliedIndex();
    if (upTo <= last) return last;
    const entries = this.store.entries(last + 1, upTo, Number.MAX_SAFE_INTEGER);
    this.applied.push(...entries);
    this.actor.send({ type: 'applied', index: upTo });
    this.reads.appliedTo(upTo);
    return upTo;
  }

  /**
   * The machine keeps its log's terms as plain data (machines/replica/log-terms.ts): they must always be
   * the log's, as the executor wrote it (checked once the store shows every write). And its context is
   * plain data: a JSON round trip gives it back unchanged. Checked after every delivery round.
   */
  checkContext(): void {
    if (this.actor.getSnapshot().status !== 'active') return;
    const c = this.ctx();
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(c)), c))
      throw new Error(`${this.id}: the machine's context is not plain data`);
    if (this.store instanceof LateLogStore && this.store.invisibleWrites() > 0) return;
    const last = this.store.lastIndex();
    const seen = `${c.lastIndex}/${c.lastTerm}`;
    const real = `${last}/${this.store.termAt(last)}`;
    if (seen !== real)
      throw new Error(`${this.id}: the machine's last entry ${seen} is not the log's ${real}`);
    for (let i = this.store.snapshot().index; i <= last; i++) {
      if (termAt(c, i) !== this.store.termAt(i))
        throw new Error(
          `${this.id}: the machine's term at ${i} is ${termAt(c, i)}, the log's ${this.store.termAt(i)}`,
        );
    }
  }

  /** The commit index this host learnt (in memory). */
  get commitIndex(): number {
    return this.ready.commitIndex();
  }
}

export class Cluster {
  readonly clock = new SimulatedClock();
  readonly nodes = new Map<NodeId, HarnessNode>();
  /** Messages sent and not yet delivered or dropped, in send order. */
  network: RaftMessage[] = [];
  /** Every delivered message, formatted. */
  delivered: string[] = [];
  readonly seed: number;
  private cut = new Set<string>();

  constructor(readonly opts: HarnessOptions) {
    this.seed = opts.seed ?? 1;
    const specs = opts.nodes.map((n) => (typeof n === 'string' ? { id: n } : n));
    const config: ClusterConfig = {
      members: specs.map((s) => ({ id: s.id, address: `${s.id}:0`, voter: s.voter ?? true })),
    };
    this.config = config;
    for (const s of specs) this.create(s, config);
    for (const n of this.nodes.values()) n.start();
  }

  readonly config: ClusterConfig;

  private create(s: NodeSpec, config: ClusterConfig): HarnessNode {
    const [min, max] = s.election ?? this.opts.election ?? [150, 300];
    const timing: Timing = {
      heartbeatMs: this.opts.heartbeatMs ?? 50,
      electionMinMs: min,
      electionMaxMs: max,
    };
    const init: MemoryLogStoreInit = {
      snapshot: { index: 0, term: 0, config },
      hardState: { term: s.term ?? 0, votedFor: s.votedFor ?? null },
      entries: (s.log ?? []).map((term, i) => ({ index: i + 1, term, kind: 'command', data: `e${i + 1}` })),
    };
    const late = this.opts.lateStores?.includes(s.id);
    const store: HarnessStore = late ? new LateLogStore(init) : new MemoryLogStore(init);
    const node = new HarnessNode(this, s.id, store, timing);
    this.nodes.set(s.id, node);
    return node;
  }

  /** A new, empty server that knows no configuration (it joins when a leader adds it). */
  addNode(spec: NodeSpec): HarnessNode {
    const node = this.create(spec, { members: [] });
    node.start();
    return node;
  }

  /** Crash: the node stops and keeps only what was flushed; restart() brings it back from that. */
  crash(id: NodeId): void {
    const n = this.node(id);
    n.stop();
    n.store = n.store.durable();
    this.network = this.network.filter((m) => m.to !== id && m.from !== id);
  }

  restart(id: NodeId): void {
    this.node(id).start();
  }

  node(id: NodeId): HarnessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  enqueue(m: RaftMessage): void {
    this.network.push(m);
  }

  /** Advance the simulated clock one millisecond at a time (timers fire in order). */
  tick(ms: number): void {
    for (let i = 0; i < ms; i++) this.clock.increment(1);
  }

  /** Advance until `cond` holds (bounded), returning the elapsed ms. */
  tickUntil(cond: () => boolean, maxMs = 5000): number {
    for (let i = 0; i < maxMs; i++) {
      if (cond()) return i;
      this.clock.increment(1);
    }
    throw new Error('condition not reached within the time bound');
  }

  /** Pending messages (formatted), without delivering them. */
  pending(filter: Filter = () => true): string[] {
    return this.network.filter(filter).map(format);
  }

  /**
   * Deliver every message queued now that passes `filter` (others stay queued), in order.
   * Messages sent as a result wait for the next call. Returns the delivered lines.
   */
  deliver(filter: Filter = () => true): string[] {
    const now = this.network;
    this.network = [];
    const lines: string[] = [];
    const keep: RaftMessage[] = [];
    for (const m of now) {
      if (!filter(m)) {
        keep.push(m);
        continue;
      }
      if (this.isCut(m.from, m.to)) continue;
      const to = this.nodes.get(m.to);
      if (!to) continue;
      lines.push(format(m));
      to.send(m);
    }
    this.network = [...keep, ...this.network];
    this.delivered.push(...lines);
    for (const n of this.nodes.values()) n.checkContext();
    return lines;
  }

  /** Deliver until the network is quiet (bounded rounds); returns every delivered line. */
  stabilize(maxRounds = 100): string[] {
    const lines: string[] = [];
    for (let i = 0; i < maxRounds && this.network.length > 0; i++) lines.push(...this.deliver());
    return lines;
  }

  drop(filter: Filter = () => true): string[] {
    const dropped = this.network.filter(filter);
    this.network = this.network.filter((m) => !filter(m));
    return dropped.map(format);
  }

  /** Cut the links between the given groups (messages across are dropped on delivery). */
  partition(...groups: NodeId[][]): void {
    this.cut.clear();
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cut.add(`${x}|${y}`);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  isolate(id: NodeId): void {
    const others = [...this.nodes.keys()].filter((x) => x !== id);
    this.partition([id], others);
  }

  private isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}|${to}`);
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.role() === 'leader').map((n) => n.id);
  }

  propose(id: NodeId, data: string, kind: 'command' | 'config' = 'command', requestId = data): void {
    this.node(id).send({ type: 'propose', proposals: [{ requestId, kind, data }] });
  }

  stop(): void {
    for (const n of this.nodes.values()) n.stop();
  }

  errors(): unknown[] {
    return [...this.nodes.values()].flatMap((n) => n.errors);
  }
}

/** Let promise callbacks (read resolutions) run: a few microtask turns, no clock involved. */
export async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

export const to =
  (id: NodeId): Filter =>
  (m) =>
    m.to === id;
export const from =
  (id: NodeId): Filter =>
  (m) =>
    m.from === id;
export const ofType =
  (type: RaftMessage['type']): Filter =>
  (m) =>
    m.type === type;

export function format(m: RaftMessage): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'RequestVote':
      return `${head} preVote=${m.preVote} last=${m.lastLogIndex}/${m.lastLogTerm}${m.transfer ? ' transfer=true' : ''}`;
    case 'RequestVoteResponse':
      return `${head} preVote=${m.preVote} granted=${m.granted}`;
    case 'AppendEntries': {
      const es = m.entries;
      const list =
        es.length <= 4
          ? es.map((e) => `${e.index}/${e.term}${e.kind === 'command' ? '' : ` ${e.kind}`}`).join(',')
          : `${es[0].index}..${es[es.length - 1].index}`;
      return `${head} prev=${m.prevLogIndex}/${m.prevLogTerm} entries=[${list}] commit=${m.leaderCommit}${m.readRound ? ` read=${m.readRound}` : ''}`;
    }
    case 'AppendEntriesResponse':
      return `${head} ${m.success ? `match=${m.matchIndex}` : `reject hint=${m.conflictIndex}/${m.conflictTerm}`}${m.readRound ? ` read=${m.readRound}` : ''}`;
    case 'InstallSnapshot':
      return `${head} snapshot=${m.lastIncludedIndex}/${m.lastIncludedTerm} offset=${m.offset} done=${m.done}`;
    case 'InstallSnapshotResponse':
      return `${head} snapshot=${m.lastIncludedIndex} installed=${m.installed}`;
    case 'TimeoutNow':
      return head;
    case 'ReadIndexRequest':
      return `${head} reads=[${m.requestIds.join(',')}]`;
    case 'ReadIndexResponse':
      return `${head} reads=[${m.requestIds.join(',')}] ${m.ok ? `index=${m.index}` : 'refused'}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Scenario helpers shared by the membership and snapshot scenarios.

/** Three voters whose election timeouts make n1 campaign first. */
export function three(): Cluster {
  return new Cluster({
    nodes: [
      { id: 'n1', election: [100, 101] },
      { id: 'n2', election: [300, 301] },
      { id: 'n3', election: [400, 401] },
    ],
  });
}

/** Let n1's election timer fire and deliver everything: n1 leads. */
export function electN1(cl: Cluster): void {
  cl.tickUntil(() => cl.node('n1').role() === 'preCandidate');
  cl.stabilize();
  if (cl.node('n1').role() !== 'leader') throw new Error(`n1 did not win: ${cl.node('n1').role()}`);
}

/** Advance `ms` milliseconds one at a time, delivering all traffic after each. */
export function run(cl: Cluster, ms: number): void {
  for (let i = 0; i < ms; i++) {
    cl.tick(1);
    cl.stabilize();
  }
}

/** A configuration of the given voters and learners (addresses are placeholders). */
export const cfg = (voters: string[], learners: string[] = []): ClusterConfig => ({
  members: [
    ...voters.map((id) => ({ id, address: `${id}:0`, voter: true })),
    ...learners.map((id) => ({ id, address: `${id}:0`, voter: false })),
  ],
});
