// The replica's /metrics (Prometheus text format, from prom-client): Raft state read at scrape time from
// RaftNode, the log store's append and fsync latencies and slow fsyncs, client RPC counts and latencies
// by method and code, the number of live Subscribe streams, and prom-client's default process metrics
// (event-loop lag, GC, heap, handles). Wiring: `new ReplicaMetrics({ node, logStore })` before
// node.start() (it times the store's flushes), `metrics.instrumentService(impl)` around ChatService's
// handlers, and `metrics.route` as the `/metrics` route.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeId } from '../../machines/protocol.js';
import { RecentSamples } from '../observability/recent.js';
import type { RaftStatus, RoleChange } from '../raft/node-types.js';
const ROLES: readonly string[] = ['follower', 'candidate', 'leader', 'learner'];

/** The RaftNode surface the metrics read (its config narrowed to what they use, so fakes stay small). */
export interface MetricsNode {
  readonly id: NodeId;
  status(): Omit<RaftStatus, 'id' | 'config'> & { config: { members: { id: NodeId; voter: boolean }[] } };
  onRoleChange(cb: (r: RoleChange) => void): () => void;
  readonly actor: { getSnapshot(): { children?: Record<string, unknown> } };
}

/** The log store surface the metrics time (SqliteLogStore, MemoryLogStore). */
export interface TimedLogStore {
  flush(done: () => void): void;
  stats?(): { commits: number; entriesWritten: number };
  /** Reports how long each fsync of the log took, in ms. */
  onSync?(observer: (ms: number) => void): void;
}

export interface ReplicaMetricsOptions {
  node: MetricsNode;
  logStore?: TimedLogStore;
  /** Bytes of the log on disk (e.g. the database file's size); omitted when not cheap to know. */
  logBytes?: () => number;
  now?: () => number;
  /** Add prom-client's default process metrics (one replica per process; off in unit tests). */
  processMetrics?: boolean;
  /** An fsync longer than this (ms) is slow: counted, and reported to onSlowFsync. Default 100. */
  slowFsyncMs?: number;
  /** Told about each slow fsync (the replica logs a warning). */
  onSlowFsync?: (ms: number, thresholdMs: number) => void;
}

/**
 * The leader's per-peer progress lives in its replication actor (machines/replication), a child of the
 * replica actor that exists only while it leads. RaftNode exposes no progress API, so it is read from
 * the child's snapshot: `peers[id].match`.
 */
export function peerMatches(node: Pick<MetricsNode, 'actor'>): Map<NodeId, number> {
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

/** Seconds; from a fast fsync on an SSD to a slow cross-replica round trip. */
export const latencyBuckets = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

type Sample = { labels?: Record<string, string>; value: number };

/**
 * A gauge computed at scrape time: a value already kept elsewhere (the Raft term, the commit index) is
 * read when asked, not copied on each change. A reader that throws costs its own gauge only (no
 * samples, or NaN for an unlabelled one, which prom-client always prints) instead of the whole scrape.
 */
function computedGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Sample[],
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      let samples: Sample[];
      try {
        samples = read();
      } catch {
        if (labelNames.length === 0) this.set(Number.NaN);
        return;
      }
      for (const s of samples) {
        if (s.labels) this.set(s.labels, s.value);
        else this.set(s.value);
      }
    },
  });
}

export interface DiskHealth {
  /** p99 of the last 1000 fsyncs, in ms (0 before the first). */
  fsyncP99Ms: number;
  /** Fsyncs slower than the threshold since start. */
  slowFsyncs: number;
}

export class ReplicaMetrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly rpcTotal: Counter;
  private readonly forwardedTotal: Counter;
  private readonly rpcSeconds: Histogram;
  private readonly subscribers: Gauge;
  private readonly appendSeconds: Histogram;
  private readonly fsyncSeconds: Histogram;
  private readonly slowFsyncs: Counter;
  private readonly recentFsyncs = new RecentSamples(1000);
  private slowCount = 0;
  private readonly elections: Counter;
  private readonly leaderChanges: Counter;

  constructor(private readonly opts: ReplicaMetricsOptions) {
    const { node } = opts;
    const r = this.registry;
    this.now = opts.now ?? (() => performance.now());
    // Event-loop lag, GC, heap, handles, CPU, open files: what the process itself costs.
    if (opts.processMetrics) collectDefaultMetrics({ register: r });
    const status = () => node.status();
    const gauge = (name: string, help: string, read: () => number) =>
      computedGauge(r, name, help, [], () => [{ value: read() }]);
    computedGauge(r, 'qc_raft_role', 'The replica role: 1 for the current one.', ['role'], () => {
      const role = status().role;
      return ROLES.map((x) => ({ labels: { role: x }, value: x === role ? 1 : 0 }));
    });
    gauge('qc_raft_term', 'Current Raft term.', () => status().term);
    gauge('qc_raft_leader_known', '1 when this replica knows a leader.', () =>
      status().leaderId === null ? 0 : 1,
    );
    gauge('qc_raft_commit_index', 'Highest log index known committed.', () => status().commitIndex);
    gauge(
      'qc_raft_applied_index',
      'Highest log index applied to the chat state.',
      () => status().lastApplied,
    );
    gauge('qc_raft_last_log_index', 'Index of the last log entry.', () => status().lastLogIndex);
    gauge(
      'qc_raft_snapshot_index',
      'Last index covered by the snapshot (compacted away).',
      () => status().snapshotIndex,
    );
    gauge('qc_raft_log_entries', 'Entries in the log (after compaction).', () => {
      const s = status();
      return s.lastLogIndex - s.snapshotIndex;
    });
    if (opts.logBytes) gauge('qc_raft_log_bytes', 'Size of the log storage on disk in bytes.', opts.logBytes);
    computedGauge(r, 'qc_raft_members', 'Members in the configuration.', ['voter'], () => {
      const m = status().config.members;
      const voters = m.filter((x) => x.voter).length;
      return [
        { labels: { voter: 'true' }, value: voters },
        { labels: { voter: 'false' }, value: m.length - voters },
      ];
    });
    computedGauge(
      r,
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
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new Counter({ name, help, labelNames, registers: [r] });
    this.elections = counter('qc_raft_elections_total', 'Elections this replica started (became candidate).');
    this.leaderChanges = counter('qc_raft_leader_changes_total', 'Times the known leader changed.');
    const won = counter('qc_raft_leaderships_total', 'Times this replica became leader.');
    let last = status();
    node.onRoleChange((c) => {
      // A pre-vote is reported as role candidate at the old term; an election is the term bump after it.
      if (c.role === 'candidate' && c.term > last.term) this.elections.inc();
      if (c.role === 'leader' && last.role !== 'leader') won.inc();
      if (c.leaderId !== null && c.leaderId !== last.leaderId) this.leaderChanges.inc();
      last = { ...last, role: c.role, term: c.term, leaderId: c.leaderId };
    });

    const histogram = (name: string, help: string, labelNames: string[] = []) =>
      new Histogram({ name, help, labelNames, buckets: latencyBuckets, registers: [r] });
    this.appendSeconds = histogram(
      'qc_raft_log_append_seconds',
      'Time from a log write being flushed to it being durable (group commit wait plus fsync).',
    );
    this.fsyncSeconds = histogram(
      'qc_raft_log_fsync_seconds',
      'Time of one log commit transaction (one fsync).',
    );
    this.slowFsyncs = counter(
      'qc_raft_log_slow_fsyncs_total',
      `Log fsyncs slower than --slow-fsync-ms (${this.slowFsyncMs} ms here); a disk too slow for consensus.`,
    );
    if (opts.logStore) this.timeLogStore(opts.logStore);
    if (opts.logStore?.stats) {
      const store = opts.logStore;
      gauge(
        'qc_raft_log_commits',
        'Log commit transactions (fsyncs) since start.',
        () => store.stats?.().commits ?? 0,
      );
    }

    this.rpcTotal = counter('qc_grpc_server_handled_total', 'Client RPCs completed, by method and code.', [
      'method',
      'code',
    ]);
    this.forwardedTotal = counter(
      'qc_chat_forwarded_total',
      'Client calls this replica forwarded to the leader instead of serving them, by method.',
      ['method'],
    );
    this.rpcSeconds = histogram(
      'qc_grpc_server_handling_seconds',
      'Client RPC latency, by method and code.',
      ['method', 'code'],
    );
    this.subscribers = new Gauge({
      name: 'qc_chat_subscribers',
      help: 'Open Subscribe streams on this replica.',
      registers: [r],
    });
    this.subscribers.set(0);
  }

  private get slowFsyncMs(): number {
    return this.opts.slowFsyncMs ?? 100;
  }

  /** Recent fsync p99 and the slow-fsync count, for GetStatus and the /cluster card. */
  diskHealth(): DiskHealth {
    return { fsyncP99Ms: this.recentFsyncs.percentile(99), slowFsyncs: this.slowCount };
  }

  /** Adds a gauge computed at scrape time (e.g. the inspector's viewers). */
  gauge(name: string, help: string, read: () => number): void {
    computedGauge(this.registry, name, help, [], () => [{ value: read() }]);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** GET /metrics */
  readonly route = (_req: IncomingMessage, res: ServerResponse): void => {
    this.render().then(
      (body) => {
        res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
        res.end(body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`The metrics could not be collected: ${(err as Error).message}\n`);
      },
    );
  };

  /** Record one finished client RPC. */
  observeRpc(method: string, code: number, seconds: number): void {
    const labels = { method, code: codeName(code) };
    this.rpcTotal.inc(labels);
    this.rpcSeconds.observe(labels, seconds);
  }

  /**
   * Counts and times a call served outside a gRPC handler: a call a follower forwarded to this leader
   * (it arrives in a batch on a ForwardService stream, not as its own RPC), so that
   * qc_grpc_server_handled_total counts every call this replica served, direct or forwarded.
   */
  observeServed<T>(method: string, served: Promise<T>): Promise<T> {
    const started = this.now();
    const seconds = () => (this.now() - started) / 1000;
    served.then(
      () => this.observeRpc(method, grpc.status.OK, seconds()),
      (err: { code?: unknown }) =>
        this.observeRpc(method, typeof err?.code === 'number' ? err.code : grpc.status.UNKNOWN, seconds()),
    );
    return served;
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
   * Append latency is flush() → durable; the fsync itself the store reports (`onSync`).
   */
  private timeLogStore(store: TimedLogStore): void {
    const flush = store.flush.bind(store);
    store.flush = (done) => {
      const t0 = this.now();
      flush(() => {
        this.appendSeconds.observe((this.now() - t0) / 1000);
        done();
      });
    };
    store.onSync?.((ms) => this.observeFsync(ms));
  }

  /** One fsync of `ms`: the histogram, the recent window, and (when slow) the counter and the hook. */
  observeFsync(ms: number): void {
    this.fsyncSeconds.observe(ms / 1000);
    this.recentFsyncs.add(ms);
    if (ms > this.slowFsyncMs) {
      this.slowCount++;
      this.slowFsyncs.inc();
      this.opts.onSlowFsync?.(ms, this.slowFsyncMs);
    }
  }
}

export function codeName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? String(code);
}
