// The deterministic cluster simulator: N replica hosts in one process on one virtual clock, a
// simulated network and disks, a client workload and a fault schedule, all driven by one seed. After
// every event it checks the safety invariants; at the end it heals everything, lets the cluster
// settle, and checks durability, convergence and linearizability of the client history.

import type { NodeId, RaftMessage, Role, SnapshotMeta, Timing } from '../../../machines/protocol.js';
import { lastConfigAtOrBefore } from '../../../machines/replica/rules.js';
import type { FlushPolicy } from '../ready-executor.js';
import { startClient } from './clients.js';
import { EventQueue, type SimEvent } from './event-queue.js';
import { scheduleCrashCycles, scheduleRandomFaults } from './faults.js';
import { InvariantChecker, type NodeObservation } from './invariants.js';
import { type HistoryOp, checkLinearizable } from './linearizability.js';
import { SimDisk, SimLogStore } from './log-store.js';
import { MemorySnapshotStore } from './memory-snapshot-store.js';
import { type LinkFaults, SimNetwork, type SimTransport } from './network.js';
import { Prng } from './prng.js';
import type { ReplicaFactory, ReplicaHost, ReplicaStatus } from './replica-host.js';
import {
  type AppendResult,
  SimDatabase,
  SimStateMachine,
  encodeAppend,
  encodeDatabase,
} from './state-machine.js';
import { Trace } from './trace.js';

/** Snapshots and log compaction in a run (every node takes its own, and installs the leader's). */
export interface SimSnapshotOptions {
  /** Take a snapshot once this many entries were applied past the latest one. */
  every: number;
  /** Entries kept in the log behind a snapshot (a follower further behind needs InstallSnapshot). */
  keep: number;
  /** InstallSnapshot chunk size: small, so that a transfer spans many messages and a crash can cut it. */
  chunkBytes: number;
  /** How long a take runs in the background, [min, max] ms (a crash meanwhile loses it). */
  takeMs: [number, number];
}

export const DEFAULT_SNAPSHOTS: SimSnapshotOptions = { every: 25, keep: 5, chunkBytes: 256, takeMs: [0, 20] };

export interface SimOptions {
  /** Builds one replica host (RaftNode by default, see run-seed.ts). */
  factory: ReplicaFactory;
  nodes?: number;
  timing?: Timing;
  /** Length of the phase with clients and faults. */
  faultyMs?: number;
  /** Length of the final phase: network healed, every node up, clients finishing. */
  quietMs?: number;
  clients?: number;
  keys?: number;
  /** Random faults (partitions, loss, crashes...) during the faulty phase. */
  randomFaults?: boolean;
  /** Gap between two random faults, drawn uniformly from [min, max] ms. */
  faultIntervalMs?: [number, number];
  /** Random single-server membership changes (a voter demoted to learner, a learner promoted back). */
  membershipChanges?: boolean;
  /**
   * With membershipChanges: also remove whole members from the configuration (the node keeps
   * running, outside the cluster, with its disk) and add them back later as learners.
   */
  wholeNodeChanges?: boolean;
  /** Crash/restart cycles forced during the faulty phase, on top of random ones. */
  crashCycles?: number;
  /** Most nodes down at once (2 of 5 keeps a quorum possible). */
  maxDown?: number;
  /** Link faults at the start (the fault schedule changes them). */
  links?: LinkFaults;
  fsyncMs?: [number, number];
  /** A client gives up on an attempt after this long and retries elsewhere (same request identity). */
  clientTimeoutMs?: number;
  traceSize?: number;
  /** Receives every trace line as it happens (verbose replay of one seed). */
  verbose?: (line: string) => void;
  strictCommitAcrossRestarts?: boolean;
  /** Fault injection for testing the checks: the probability that an fsync lies (acks, persists nothing). */
  lyingFsyncRate?: number;
  /** Hard bound on simulated events, against livelock. */
  maxSteps?: number;
  /** Snapshots and compaction (false: the log only grows, as before). */
  snapshots?: SimSnapshotOptions | false;
  /** Extra scheduled actions for focused tests (called once the nodes are up). */
  scenario?: (sim: Simulation) => void;
  /** The replicas' group-commit policy (--flush-delay-us, --flush-max-entries); default: next turn. */
  flushPolicy?: FlushPolicy;
}

export interface SimStats {
  deliveries: number;
  drops: number;
  timers: number;
  fsyncs: number;
  crashes: number;
  restarts: number;
  leaders: number;
  appendsAcked: number;
  appendsUnacked: number;
  readsOk: number;
  /** Reads served by a replica that was not the leader when it served (follower reads, ReadIndex). */
  followerReads: number;
  faults: number;
  transfers: number;
  configChanges: number;
  snapshotsTaken: number;
  /** Snapshots a node received from the leader and restored its state from. */
  snapshotsInstalled: number;
  snapshotChunks: number;
  /** Crashes of a node while it was receiving a snapshot (the partial transfer is lost). */
  crashesMidTransfer: number;
  /** Applies a crash rolled back (not yet made durable by a log fsync) and the node re-applied. */
  appliesLost: number;
}

export interface SimResult {
  ok: boolean;
  seed: number;
  /** Simulated events run (timers, deliveries, fsyncs, client and fault actions). */
  steps: number;
  /** Everything traced (sends, drops, role changes...), a superset of the steps. */
  events: number;
  simulatedMs: number;
  stats: SimStats;
  failure?: string;
  /** The last trace records, formatted (the whole run in verbose mode goes to `verbose`). */
  trace: string[];
}

export const DEFAULT_TIMING: Timing = { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 };

export const DEFAULT_LINKS: LinkFaults = {
  dropRate: 0.02,
  duplicateRate: 0.02,
  minLatencyMs: 1,
  maxLatencyMs: 8,
  longDelayRate: 0.005,
};
const CALM_LINKS: LinkFaults = { dropRate: 0, duplicateRate: 0, minLatencyMs: 1, maxLatencyMs: 3 };

export interface ReplicaSlot {
  id: NodeId;
  disk: SimDisk;
  db: SimDatabase;
  incarnation: number;
  up: boolean;
  host?: ReplicaHost;
  store?: SimLogStore;
  sm?: SimStateMachine;
  transport?: SimTransport;
  last?: ReplicaStatus;
  /** Crash this node at its next log write, before the fsync (a crash mid-batch). */
  crashOnWrite: boolean;
  /** Durable snapshot store (snapshot runs only): a crash keeps the latest complete snapshot only. */
  snaps?: MemorySnapshotStore;
  /** Receiving a snapshot: chunks arrived, not installed yet. */
  receiving: boolean;
  /** Crash at the next snapshot chunk it accepts without finishing (a crash mid-transfer). */
  crashOnChunk: boolean;
  /** A take is running (one at a time). */
  taking: boolean;
}

export class Simulation {
  readonly queue = new EventQueue();
  readonly rng: Prng;
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  readonly trace: Trace;
  readonly ids: NodeId[];
  readonly timing: Timing;
  readonly history: HistoryOp[] = [];
  readonly stats: SimStats = {
    deliveries: 0,
    drops: 0,
    timers: 0,
    fsyncs: 0,
    crashes: 0,
    restarts: 0,
    leaders: 0,
    appendsAcked: 0,
    appendsUnacked: 0,
    readsOk: 0,
    followerReads: 0,
    faults: 0,
    transfers: 0,
    configChanges: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    snapshotChunks: 0,
    crashesMidTransfer: 0,
    appliesLost: 0,
  };
  /** Every snapshot a node restored its state from (received from the leader, or finished on restart). */
  readonly installs: { id: NodeId; index: number; t: number }[] = [];
  private slots = new Map<NodeId, ReplicaSlot>();
  private failure: string | null = null;
  readonly options: Required<Omit<SimOptions, 'verbose' | 'scenario' | 'flushPolicy'>> &
    Pick<SimOptions, 'verbose' | 'scenario' | 'flushPolicy'>;
  private leaderTerms = new Set<number>();
  private nextOpId = 1;
  /** Clients stop starting operations at this time. */
  clientsStopAt = 0;
  private fsyncRng: Prng;

  constructor(
    readonly seed: number,
    options: SimOptions,
  ) {
    this.options = {
      nodes: 5,
      timing: DEFAULT_TIMING,
      faultyMs: 10_000,
      quietMs: 5_000,
      clients: 4,
      keys: 3,
      randomFaults: true,
      faultIntervalMs: [100, 900],
      membershipChanges: false,
      wholeNodeChanges: false,
      crashCycles: 2,
      maxDown: 2,
      links: DEFAULT_LINKS,
      fsyncMs: [1, 6],
      clientTimeoutMs: 600,
      traceSize: 200,
      strictCommitAcrossRestarts: true,
      maxSteps: 3_000_000,
      lyingFsyncRate: 0,
      snapshots: false,
      ...options,
    };
    this.timing = this.options.timing;
    this.rng = new Prng(seed);
    this.network = new SimNetwork(this.queue, this.rng.fork(), this.options.links);
    this.fsyncRng = this.rng.fork();
    this.checker = new InvariantChecker({
      strictCommitAcrossRestarts: this.options.strictCommitAcrossRestarts,
    });
    this.trace = new Trace(this.options.traceSize, this.options.verbose);
    this.ids = Array.from({ length: this.options.nodes }, (_, i) => `n${i + 1}`);
    const config = { members: this.ids.map((id) => ({ id, address: `sim://${id}`, voter: true })) };
    for (const id of this.ids) {
      this.slots.set(id, {
        id,
        disk: new SimDisk(config),
        db: new SimDatabase(),
        incarnation: 0,
        up: false,
        crashOnWrite: false,
        snaps: this.options.snapshots ? new MemorySnapshotStore() : undefined,
        receiving: false,
        crashOnChunk: false,
        taking: false,
      });
    }
    this.network.observer = (what, m, why) => this.onNetwork(what, m, why);
  }

  // --- controls (used by the fault schedule, the clients and focused tests) -----------------------

  get failed(): boolean {
    return this.failure !== null;
  }

  newOpId(): number {
    return this.nextOpId++;
  }

  /** One node's slot: its durable parts and, while up, its current incarnation. */
  replica(id: NodeId): Readonly<ReplicaSlot> {
    return this.slots.get(id)!;
  }

  now(): number {
    return this.queue.now();
  }

  /** Run `fn` at virtual time `t` (or now, when t is in the past). */
  at(t: number, label: string, fn: () => void): SimEvent {
    return this.queue.after(t - this.now(), 'fault', () => {
      this.note('fault', undefined, label);
      fn();
    });
  }

  isUp(id: NodeId): boolean {
    return this.slots.get(id)!.up;
  }

  upIds(): NodeId[] {
    return this.ids.filter((id) => this.slots.get(id)!.up);
  }

  status(id: NodeId): ReplicaStatus | undefined {
    const s = this.slots.get(id)!;
    return s.up ? s.host!.status() : undefined;
  }

  /** The up node that leads the highest term, if any. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const id of this.upIds()) {
      const st = this.status(id)!;
      if (st.role === 'leader' && st.term > bestTerm) {
        best = id;
        bestTerm = st.term;
      }
    }
    return best;
  }

  /** The current list `key` on node `id` (its state machine, durable part). */
  read(id: NodeId, key: string): string[] {
    return [...(this.slots.get(id)!.db.lists.get(key) ?? [])];
  }

  crash(id: NodeId): void {
    const s = this.slots.get(id)!;
    if (!s.up) return;
    this.stats.crashes++;
    this.checker.crashed(id, s.disk.state.hardState.term, s.db.applied);
    this.stats.appliesLost += s.db.crash(); // applies no log fsync made durable yet are lost
    this.note('crash', id, `unflushed writes lost: ${s.store!.unflushed()}`);
    s.up = false;
    s.crashOnWrite = false;
    s.crashOnChunk = false;
    s.taking = false;
    if (s.receiving) {
      this.stats.crashesMidTransfer++;
      this.note('crash', id, 'in the middle of receiving a snapshot');
    }
    s.receiving = false;
    // Only the latest complete snapshot survives; a transfer in progress is lost.
    s.snaps = s.snaps?.crash();
    s.store!.crash();
    s.transport!.close();
    try {
      s.host!.stop();
    } catch (e) {
      this.fail(`${id}: stop() threw: ${errorText(e)}`);
    }
    this.queue.cancelOwner(id);
    s.host = undefined;
    s.store = undefined;
    s.sm = undefined;
    s.transport = undefined;
    s.last = undefined;
  }

  /** Crash `id` at its next log write, after the write and before its fsync. */
  crashAtNextWrite(id: NodeId): void {
    const s = this.slots.get(id)!;
    if (s.up) s.crashOnWrite = true;
  }

  /** Crash `id` once it has accepted the next chunk of a snapshot transfer that is not finished. */
  crashDuringNextTransfer(id: NodeId): void {
    const s = this.slots.get(id)!;
    if (s.up && s.snaps) s.crashOnChunk = true;
  }

  /** Nodes receiving a snapshot right now. */
  receivingSnapshot(): NodeId[] {
    return this.ids.filter((id) => this.slots.get(id)!.receiving);
  }

  restart(id: NodeId): void {
    const s = this.slots.get(id)!;
    if (s.up) return;
    this.stats.restarts++;
    this.start(s);
  }

  partition(groups: NodeId[][]): void {
    this.network.partition(groups);
    this.note('partition', undefined, groups.map((g) => `{${g.join(',')}}`).join(' | '));
  }

  isolate(id: NodeId): void {
    this.network.isolate(id, this.ids);
    this.note('isolate', id);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.network.cutOneWay(from, to);
    this.note('cut', undefined, `${from}->${to}`);
  }

  /** Ask the current leader to hand over to `to` (null: its choice); the outcome is only traced. */
  transferLeadership(to: NodeId | null): void {
    const leader = this.leader();
    const host = leader ? this.slots.get(leader)!.host : undefined;
    if (!leader || !host?.transferLeadership) return;
    this.stats.transfers++;
    this.note('transfer', leader, `to ${to ?? 'any'}`);
    host.transferLeadership(to).then(
      () => this.note('transfer', leader, 'done'),
      (e) => this.note('transfer', leader, `failed: ${errorText(e)}`),
    );
  }

  /**
   * Ask the leader for a single-server change: flip one member between voter and learner (never
   * fewer than 3 voters); with `wholeNodeChanges`, also remove a member from the configuration or add
   * a removed one back as a learner. `promoteOnly` restores the full voter set at the end (adds back
   * first, then promotes). Outcomes are only traced.
   */
  changeMembership(promoteOnly = false): void {
    const leader = this.leader();
    if (!leader) return;
    const slot = this.slots.get(leader)!;
    const config = slot.store!.config();
    const voters = config.members.filter((m) => m.voter).length;
    const missing = this.options.wholeNodeChanges
      ? this.ids.filter((id) => !config.members.some((m) => m.id === id))
      : [];
    let next: typeof config;
    let what: string;
    const flips = config.members.filter((m) => m.id !== leader && (!m.voter || (!promoteOnly && voters > 3)));
    const removable = config.members.filter(
      (m) => m.id !== leader && (!m.voter || voters > 3) && this.options.wholeNodeChanges,
    );
    // (Drawn only when whole-node changes are on, so other runs keep their random streams.)
    const roll = this.options.wholeNodeChanges ? this.rng.int(3) : 2;
    if (missing.length > 0 && (promoteOnly || roll === 0)) {
      const id = this.rng.pick(missing);
      next = {
        members: [...config.members.map((m) => ({ ...m })), { id, address: `sim://${id}`, voter: false }],
      };
      what = `add ${id} as a learner`;
    } else if (!promoteOnly && removable.length > 0 && roll === 1 && config.members.length > 3) {
      const id = this.rng.pick(removable).id;
      next = { members: config.members.filter((m) => m.id !== id).map((m) => ({ ...m })) };
      what = `remove ${id}`;
    } else {
      if (flips.length === 0) return;
      const target = this.rng.pick(flips);
      next = { members: config.members.map((m) => (m.id === target.id ? { ...m, voter: !m.voter } : m)) };
      what = `${target.voter ? 'demote' : 'promote'} ${target.id}`;
    }
    this.stats.configChanges++;
    this.note('config', leader, what);
    slot.host!.propose('config', JSON.stringify(next)).then(
      (o) => this.note('config', leader, `${what}: applied at ${o.index}`),
      (e) => this.note('config', leader, `${what}: ${errorText(e)}`),
    );
  }

  heal(): void {
    this.network.heal();
    this.note('heal');
  }

  setLinks(links: LinkFaults): void {
    this.network.faults = { ...links };
    this.note(
      'links',
      undefined,
      `drop=${links.dropRate.toFixed(2)} dup=${links.duplicateRate.toFixed(2)} latency=${links.minLatencyMs}-${links.maxLatencyMs}ms long=${(links.longDelayRate ?? 0).toFixed(3)}`,
    );
  }

  fail(message: string): void {
    if (this.failure === null) {
      this.failure = message;
      this.note('FAILURE', undefined, message);
    }
  }

  // --- the run -------------------------------------------------------------------------------------

  async run(): Promise<SimResult> {
    const o = this.options;
    const faultyEnd = o.faultyMs;
    const end = o.faultyMs + o.quietMs;
    this.clientsStopAt = faultyEnd;
    for (const s of this.slots.values()) this.start(s);
    for (let c = 0; c < o.clients; c++) startClient(this, `c${c + 1}`, this.rng.fork());
    if (o.randomFaults) scheduleRandomFaults(this, faultyEnd);
    scheduleCrashCycles(this, faultyEnd);
    o.scenario?.(this);
    this.at(faultyEnd, 'end of faults: heal, restart everyone, calm links', () => {
      this.heal();
      this.setLinks(CALM_LINKS);
      for (const s of this.slots.values()) {
        s.crashOnWrite = false;
        s.crashOnChunk = false;
      }
      for (const id of this.ids) this.restart(id);
    });
    if (o.membershipChanges) {
      // Bring every removed node back and every learner back to voter during the quiet phase (one
      // change at a time).
      const [steps, gap] = o.wholeNodeChanges ? [14, 250] : [8, 300];
      for (let k = 0; k < steps; k++)
        this.at(faultyEnd + 300 + k * gap, 'promote learners', () => this.changeMembership(true));
    }

    let sinceYield = 0;
    while (this.failure === null) {
      const t = this.queue.peekTime();
      if (t === undefined || t > end) break;
      try {
        this.queue.step();
      } catch (e) {
        this.fail(`exception in a simulated event: ${errorText(e)}`);
        break;
      }
      this.observe();
      if (this.queue.executed > o.maxSteps) this.fail(`more than ${o.maxSteps} events: livelock?`);
      // Let promise callbacks (client responses) run at the virtual time they settled.
      await null;
      await null;
      if (++sinceYield >= 50_000) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (this.failure === null) this.finalChecks();
    for (const s of this.slots.values()) this.stats.fsyncs += s.disk.fsyncs;
    const result: SimResult = {
      ok: this.failure === null,
      seed: this.seed,
      steps: this.queue.executed,
      events: this.trace.total,
      simulatedMs: this.now(),
      stats: this.stats,
      trace: this.trace.lines(),
    };
    if (this.failure !== null) result.failure = this.failure;
    for (const s of this.slots.values()) {
      if (s.up) {
        try {
          s.host!.stop();
        } catch {
          // The run is over; a failing stop was reported by crash() if it mattered.
        }
      }
    }
    return result;
  }

  private start(s: ReplicaSlot): void {
    s.incarnation++;
    const id = s.id;
    const store = new SimLogStore({
      disk: s.disk,
      queue: this.queue,
      owner: id,
      fsyncLatency: () =>
        this.options.fsyncMs[0] + this.fsyncRng.float() * (this.options.fsyncMs[1] - this.options.fsyncMs[0]),
      onViolation: (m) => this.fail(`log store contract: ${m}`),
      lie: () => this.fsyncRng.chance(this.options.lyingFsyncRate),
      stageFileWrites: () => s.db.stage(),
    });
    const write = store.write.bind(store);
    store.write = (batch) => {
      write(batch);
      if (s.crashOnWrite && s.store === store) {
        s.crashOnWrite = false;
        this.queue.after(0, 'fault', () => this.crash(id), id);
      }
    };
    const snaps = s.snaps;
    const sm = new SimStateMachine(
      s.db,
      (entries) => {
        this.checker.appliedEntries(id, entries);
        if (snaps) this.maybeTakeSnapshot(s, store);
      },
      (m) => this.fail(`${id}: state machine: ${m}`),
      (meta, text) => {
        this.stats.snapshotsInstalled++;
        this.installs.push({ id, index: meta.index, t: this.now() });
        this.note('install', id, `snapshot at ${meta.index} (term ${meta.term}), ${text.length} bytes`);
        this.checker.snapshotRestored(id, meta.index, meta.term, text);
        if (this.checker.failed) this.fail(this.checker.violations[0]!);
      },
    );
    if (snaps) this.watchSnapshotChunks(s, snaps);
    const transport = this.network.transport(id);
    s.store = store;
    s.sm = sm;
    s.transport = transport;
    s.up = true;
    if (s.incarnation > 1)
      this.note(
        'restart',
        id,
        `durable: term ${s.disk.state.hardState.term}, last index ${s.disk.state.snapshot.index + s.disk.state.entries.length}, applied ${s.db.applied}`,
      );
    s.host = this.options.factory({
      id,
      logStore: store,
      stateMachine: sm,
      transport,
      clock: this.queue.clockFor(id, (delay) => {
        this.stats.timers++;
        this.note('timer', id, `${delay}ms`);
      }),
      timing: this.timing,
      seed: this.rng.nextU32(),
      incarnation: s.incarnation,
      defer: this.queue.deferFor(id),
      ...(this.options.flushPolicy ? { flushPolicy: this.options.flushPolicy } : {}),
      onError: (e) => this.fail(`${id}: host error: ${errorText(e)}`),
      ...(snaps && this.options.snapshots
        ? { snapshots: snaps, snapshotChunkBytes: this.options.snapshots.chunkBytes }
        : {}),
    });
    try {
      s.host.start();
    } catch (e) {
      this.fail(`${id}: start() threw: ${errorText(e)}`);
    }
  }

  /**
   * After an apply: once `every` entries were applied past the latest snapshot, take one in the
   * "background": the state is captured now, and the snapshot becomes durable (and the log is
   * compacted behind it) a little later, unless the node crashes first.
   */
  private maybeTakeSnapshot(s: ReplicaSlot, store: SimLogStore): void {
    const o = this.options.snapshots;
    if (!o || !s.snaps || s.taking || s.db.applied - s.snaps.latest().index < o.every) return;
    const index = s.db.applied;
    const term = store.termAt(index);
    if (term === undefined) return;
    const config = lastConfigAtOrBefore(store, index)?.config ?? store.snapshot().config;
    const meta: SnapshotMeta = { index, term, config };
    const text = encodeDatabase(s.db);
    s.taking = true;
    this.checker.snapshotTaken(s.id, index, text);
    if (this.checker.failed) this.fail(this.checker.violations[0]!);
    const ms = o.takeMs[0] + this.fsyncRng.float() * (o.takeMs[1] - o.takeMs[0]);
    this.queue.after(
      ms,
      'fault',
      () => {
        s.taking = false;
        // A newer snapshot may have been installed from the leader meanwhile.
        if (!s.up || s.store !== store || s.snaps!.latest().index >= index) return;
        s.snaps!.put(meta, new TextEncoder().encode(text));
        this.stats.snapshotsTaken++;
        this.note('snapshot', s.id, `taken at ${index} (term ${term}), ${text.length} bytes`);
        s.host!.snapshotTaken?.(meta, o.keep);
      },
      s.id,
    );
  }

  /** Count chunks, track transfers in progress, and crash mid-transfer when asked to. */
  private watchSnapshotChunks(s: ReplicaSlot, snaps: MemorySnapshotStore): void {
    const receive = snaps.receive.bind(snaps);
    snaps.receive = (meta, offset, chunk, done) => {
      const next = receive(meta, offset, chunk, done);
      if (s.snaps !== snaps || !s.up) return next;
      this.stats.snapshotChunks++;
      // (A repeated chunk of a snapshot already installed is answered with its length: not a transfer.)
      const have = snaps.latest().index === meta.index && snaps.latest().term === meta.term;
      s.receiving = !have && next > 0;
      if (s.crashOnChunk && s.receiving && next > offset) {
        s.crashOnChunk = false;
        this.queue.after(0, 'fault', () => this.crash(s.id), s.id);
      }
      return next;
    };
  }

  private observe(): void {
    const obs: NodeObservation[] = [];
    this.checker.now = this.now();
    for (const s of this.slots.values()) {
      if (!s.up) continue;
      let st: ReplicaStatus;
      try {
        st = s.host!.status();
      } catch (e) {
        this.fail(`${s.id}: status() threw: ${errorText(e)}`);
        return;
      }
      const prev = s.last;
      if (!prev || prev.role !== st.role || prev.term !== st.term || prev.leaderId !== st.leaderId) {
        this.note(
          'role',
          s.id,
          `${st.role} term ${st.term} leader ${st.leaderId ?? '-'} commit ${st.commitIndex}`,
        );
        if (st.role === 'leader' && !this.leaderTerms.has(st.term)) {
          this.leaderTerms.add(st.term);
          this.stats.leaders++;
        }
      }
      s.last = st;
      obs.push({
        id: s.id,
        incarnation: s.incarnation,
        role: st.role as Role,
        term: st.term,
        commitIndex: st.commitIndex,
        appliedIndex: st.appliedIndex,
        log: s.store!,
        logDirtyFrom: s.store!.takeDirtyFrom(),
      });
    }
    this.checker.observe(obs);
    if (this.checker.failed) this.fail(this.checker.violations[0]!);
  }

  private onNetwork(what: 'send' | 'deliver' | 'drop' | 'duplicate', m: RaftMessage, why?: string): void {
    if (what === 'send') {
      this.checker.sent(m);
      if (this.checker.failed) this.fail(this.checker.violations[0]!);
      return;
    }
    if (what === 'deliver') this.stats.deliveries++;
    if (what === 'drop') this.stats.drops++;
    this.trace.add({ t: this.now(), what, message: m, detail: why });
  }

  note(what: string, node?: NodeId, detail?: string): void {
    this.trace.add({ t: this.now(), what, node, detail });
  }

  // --- the end -------------------------------------------------------------------------------------

  private finalChecks(): void {
    const up = this.upIds();
    if (up.length !== this.ids.length) {
      this.fail(
        `liveness: nodes still down at the end: ${this.ids.filter((id) => !this.isUp(id)).join(',')}`,
      );
      return;
    }
    // Convergence: after the quiet period every node has applied everything known committed.
    const committed = this.checker.committedIndex();
    const applied = up.map((id) => this.status(id)!.appliedIndex);
    const leaders = up.filter((id) => this.status(id)!.role === 'leader');
    if (leaders.length !== 1) {
      this.fail(`liveness: ${leaders.length} leaders after the quiet period (${leaders.join(',')})`);
      return;
    }
    if (applied.some((a) => a < committed || a !== applied[0])) {
      this.fail(
        `liveness: no convergence after the quiet period: committed ${committed}, applied ${applied.join(',')}`,
      );
      return;
    }
    for (const op of this.history)
      if (op.kind === 'append' && op.respondedAt === undefined) this.stats.appendsUnacked++;
    // Durability: every acknowledged append is in every node's final state, once.
    for (const op of this.history) {
      if (op.kind !== 'append' || op.respondedAt === undefined) continue;
      for (const id of up) {
        const list = this.read(id, op.key);
        const n = list.filter((v) => v === op.value).length;
        if (n !== 1) {
          this.fail(
            `durability: acknowledged append #${op.id} (${op.value} to ${op.key}) appears ${n} times on ${id}`,
          );
          return;
        }
      }
    }
    // Linearizability, with every node's final state as one more read at the end.
    const final: HistoryOp[] = [];
    const keys = new Set(this.history.map((op) => op.key));
    for (const id of up) {
      for (const key of keys) {
        final.push({
          id: this.nextOpId++,
          client: `final@${id}`,
          kind: 'read',
          key,
          invokedAt: this.now(),
          respondedAt: this.now(),
          result: this.read(id, key),
        });
      }
    }
    // Every node holds the same state (the chat's digests equal), whatever crashes rolled back.
    const states = up.map((id) => encodeDatabase(this.slots.get(id)!.db));
    if (states.some((x) => x !== states[0])) {
      this.fail(`convergence: the nodes' final states differ (${up.join(',')})`);
      return;
    }
    const lin = checkLinearizable([...this.history, ...final]);
    if (!lin.ok) {
      const ops = lin.ops.map(
        (op) =>
          `#${op.id} ${op.client} ${op.kind} ${op.value ?? `[${op.result?.join(',')}]`} [${op.invokedAt.toFixed(3)}, ${op.respondedAt?.toFixed(3) ?? '...'}]`,
      );
      this.fail(`linearizability (key ${lin.key}): ${lin.reason}\n    ${ops.join('\n    ')}`);
    }
  }
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
