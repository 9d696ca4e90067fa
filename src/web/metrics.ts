// The replica's /metrics (Prometheus text format): Raft state read at scrape time from RaftNode, the
// log store's append and fsync latencies, client RPC counts and latencies by method and code, and the
// number of live Subscribe streams. Wiring: `new ReplicaMetrics({ node, logStore })` before node.start()
// (it times the store's flushes), `metrics.instrumentService(impl)` around ChatService's handlers,
// and `metrics.route` as the `/metrics` route.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { NodeId, Role } from '../../machines/protocol.js';
import { type Registry as R, Registry, contentType } from '../observability/prometheus.js';

const ROLES: readonly string[] = ['follower', 'candidate', 'leader', 'learner'];

/** The RaftNode surface the metrics read. */
export interface MetricsNode {
  readonly id: NodeId;
  status(): {
    role: Role;
    term: number;
    leaderId: NodeId | null;
    commitIndex: number;
    lastApplied: number;
    lastLogIndex: number;
    snapshotIndex: number;
    config: { members: { id: NodeId; voter: boolean }[] };
  };
  onRoleChange(cb: (r: { role: Role; term: number; leaderId: NodeId | null }) => void): () => void;
  readonly actor: { getSnapshot(): { children?: Record<string, unknown> } };
}

/** The log store surface the metrics time (SqliteLogStore, MemoryLogStore). */
export interface TimedLogStore {
  flush(done: () => void): void;
  stats?(): { commits: number; entriesWritten: number };
}

export interface ReplicaMetricsOptions {
  node: MetricsNode;
  logStore?: TimedLogStore;
  /** Bytes of the log on disk (e.g. the database file's size); omitted when not cheap to know. */
  logBytes?: () => number;
  now?: () => number;
}

/**
 * The leader's per-peer progress lives in its replication actor (machines/replication), a child of the
 * replica actor that exists only while it leads. RaftNode exposes no progress API, so it is read from
 * the child's snapshot: `peers[id].match`.
 */
export function peerMatches(node: MetricsNode): Map<NodeId, number> {
  const out = new Map<NodeId, number>();
  let child: unknown;
  try {
    child = node.actor.getSnapshot().children?.replication;
  } catch {
    return out;
  }
  const snap = (
    child as { getSnapshot?: () => { context?: { peers?: Record<string, { match?: number }> } } }
  )?.getSnapshot?.();
  for (const [id, p] of Object.entries(snap?.context?.peers ?? {})) {
    if (typeof p?.match === 'number') out.set(id, p.match);
  }
  return out;
}

export class ReplicaMetrics {
  readonly registry: R = new Registry();
  private readonly now: () => number;
  private readonly rpcTotal;
  private readonly forwardedTotal;
  private readonly rpcSeconds;
  private readonly subscribers;
  private readonly appendSeconds;
  private readonly fsyncSeconds;
  private readonly elections;
  private readonly leaderChanges;

  constructor(opts: ReplicaMetricsOptions) {
    const { node } = opts;
    const r = this.registry;
    this.now = opts.now ?? (() => performance.now());
    const status = () => node.status();
    r.gauge('qc_raft_role', 'The replica role: 1 for the current one.', ['role'], () => {
      const role = status().role;
      return ROLES.map((x) => ({ labels: { role: x }, value: x === role ? 1 : 0 }));
    });
    r.gauge('qc_raft_term', 'Current Raft term.', [], () => [{ value: status().term }]);
    r.gauge('qc_raft_leader_known', '1 when this replica knows a leader.', [], () => [
      { value: status().leaderId === null ? 0 : 1 },
    ]);
    r.gauge('qc_raft_commit_index', 'Highest log index known committed.', [], () => [
      { value: status().commitIndex },
    ]);
    r.gauge('qc_raft_applied_index', 'Highest log index applied to the chat state.', [], () => [
      { value: status().lastApplied },
    ]);
    r.gauge('qc_raft_last_log_index', 'Index of the last log entry.', [], () => [
      { value: status().lastLogIndex },
    ]);
    r.gauge('qc_raft_snapshot_index', 'Last index covered by the snapshot (compacted away).', [], () => [
      { value: status().snapshotIndex },
    ]);
    r.gauge('qc_raft_log_entries', 'Entries in the log (after compaction).', [], () => {
      const s = status();
      return [{ value: s.lastLogIndex - s.snapshotIndex }];
    });
    if (opts.logBytes) {
      const bytes = opts.logBytes;
      r.gauge('qc_raft_log_bytes', 'Size of the log storage on disk in bytes.', [], () => [
        { value: bytes() },
      ]);
    }
    r.gauge('qc_raft_members', 'Members in the configuration.', ['voter'], () => {
      const m = status().config.members;
      const voters = m.filter((x) => x.voter).length;
      return [
        { labels: { voter: 'true' }, value: voters },
        { labels: { voter: 'false' }, value: m.length - voters },
      ];
    });
    r.gauge(
      'qc_raft_peer_match_lag',
      "Entries a peer's log is behind the leader's last index (leader only).",
      ['peer'],
      () => {
        const s = status();
        if (s.role !== 'leader') return [];
        return [...peerMatches(node)].map(([peer, match]) => ({
          labels: { peer },
          value: Math.max(0, s.lastLogIndex - match),
        }));
      },
    );
    this.elections = r.counter(
      'qc_raft_elections_total',
      'Elections this replica started (became candidate).',
    );
    this.leaderChanges = r.counter('qc_raft_leader_changes_total', 'Times the known leader changed.');
    const won = r.counter('qc_raft_leaderships_total', 'Times this replica became leader.');
    let last = status();
    node.onRoleChange((c) => {
      // A pre-vote is reported as role candidate at the old term; an election is the term bump after it.
      if (c.role === 'candidate' && c.term > last.term) this.elections.inc();
      if (c.role === 'leader' && last.role !== 'leader') won.inc();
      if (c.leaderId !== null && c.leaderId !== last.leaderId) this.leaderChanges.inc();
      last = { ...last, role: c.role, term: c.term, leaderId: c.leaderId };
    });

    this.appendSeconds = r.histogram(
      'qc_raft_log_append_seconds',
      'Time from a log write being flushed to it being durable (group commit wait plus fsync).',
    );
    this.fsyncSeconds = r.histogram(
      'qc_raft_log_fsync_seconds',
      'Time of one log commit transaction (one fsync).',
    );
    if (opts.logStore) this.timeLogStore(opts.logStore);
    if (opts.logStore?.stats) {
      const store = opts.logStore;
      r.gauge('qc_raft_log_commits', 'Log commit transactions (fsyncs) since start.', [], () => [
        { value: store.stats?.().commits ?? 0 },
      ]);
    }

    this.rpcTotal = r.counter('qc_grpc_server_handled_total', 'Client RPCs completed, by method and code.', [
      'method',
      'code',
    ]);
    this.rpcSeconds = r.histogram(
      'qc_grpc_server_handling_seconds',
      'Client RPC latency, by method and code.',
      ['method', 'code'],
    );
    this.forwardedTotal = r.counter(
      'qc_chat_forwarded_total',
      'Client calls this replica forwarded to the leader instead of serving them, by method.',
      ['method'],
    );
    this.subscribers = r.gauge('qc_chat_subscribers', 'Open Subscribe streams on this replica.');
    this.subscribers.set(undefined, 0);
  }

  /** Adds a gauge computed at scrape time (e.g. the inspector's viewers). */
  gauge(name: string, help: string, read: () => number): void {
    this.registry.gauge(name, help, [], () => [{ value: read() }]);
  }

  render(): string {
    return this.registry.render();
  }

  /** GET /metrics */
  readonly route = (_req: IncomingMessage, res: ServerResponse): void => {
    const body = this.render();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(body);
  };

  /** Record one finished client RPC. */
  observeRpc(method: string, code: number, seconds: number): void {
    const labels = { method, code: codeName(code) };
    this.rpcTotal.inc(labels);
    this.rpcSeconds.observe(labels, seconds);
  }

  /** Count one client call forwarded to the leader (reads are served where they arrive; writes are not). */
  observeForward(method: string): void {
    this.forwardedTotal.inc({ method });
  }

  /**
   * Wraps a service implementation so every call is counted and timed: unary calls through their
   * callback, server streams (Subscribe) from start to their end, counted as open subscribers meanwhile.
   */
  instrumentService(impl: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    const out: grpc.UntypedServiceImplementation = {};
    for (const [method, handler] of Object.entries(impl)) {
      out[method] = ((
        call: grpc.ServerWritableStream<unknown, unknown>,
        callback?: grpc.sendUnaryData<unknown>,
      ) => {
        const started = this.now();
        const seconds = () => (this.now() - started) / 1000;
        if (typeof callback === 'function') {
          const timed: grpc.sendUnaryData<unknown> = (err, ...rest) => {
            this.observeRpc(method, err ? (err.code ?? grpc.status.UNKNOWN) : grpc.status.OK, seconds());
            callback(err, ...rest);
          };
          return (handler as grpc.handleUnaryCall<unknown, unknown>)(
            call as unknown as grpc.ServerUnaryCall<unknown, unknown>,
            timed,
          );
        }
        this.trackStream(method, call, seconds);
        return (handler as grpc.handleServerStreamingCall<unknown, unknown>)(call);
      }) as grpc.UntypedHandleCall;
    }
    return out;
  }

  private trackStream(
    method: string,
    call: grpc.ServerWritableStream<unknown, unknown>,
    seconds: () => number,
  ) {
    this.subscribers.inc();
    let ended = false;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      this.subscribers.dec();
      this.observeRpc(method, code, seconds());
    };
    // Handlers end a stream with an error by emitting it (grpc-js), so the status is seen on the way out.
    const emit = call.emit.bind(call);
    call.emit = ((name: string | symbol, ...args: unknown[]) => {
      if (name === 'error') end((args[0] as { code?: number } | undefined)?.code ?? grpc.status.UNKNOWN);
      return emit(name, ...args);
    }) as typeof call.emit;
    call.on('cancelled', () => end(grpc.status.CANCELLED));
    call.on('finish', () => end(grpc.status.OK));
    call.on('close', () => end(grpc.status.OK));
  }

  /**
   * Time the store's flushes in place (RaftNode calls logStore.flush on the object it was given).
   * Append latency is flush() → durable. The fsync itself is SqliteLogStore's commit transaction; the
   * store has no hook that reports its duration, so its private `commit` is wrapped when present.
   */
  private timeLogStore(store: TimedLogStore): void {
    const flush = store.flush.bind(store);
    store.flush = (done) => {
      const t0 = this.now();
      flush(() => {
        this.appendSeconds.observe(undefined, (this.now() - t0) / 1000);
        done();
      });
    };
    const inner = store as unknown as { commit?: () => void };
    if (typeof inner.commit === 'function') {
      const commit = inner.commit.bind(store);
      const commits = () => store.stats?.().commits;
      inner.commit = () => {
        const before = commits();
        const t0 = this.now();
        try {
          commit();
        } finally {
          // commit() returns at once when nothing is staged: that is no fsync.
          if (before === undefined || commits() !== before)
            this.fsyncSeconds.observe(undefined, (this.now() - t0) / 1000);
        }
      };
    }
  }
}

export function codeName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
}
