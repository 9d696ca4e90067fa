// Everything the replica wiring needs for the inspector, /metrics, /cluster and gRPC health, behind one
// object, so src/server/replica.ts changes by a few lines:
//
//   const obs = new ReplicaObservability({ secret, dev, onStop: () => process.kill(process.pid, 'SIGTERM') });
//   const node = new RaftNode({ ..., transport: obs.wrapTransport(transport) });
//   obs.attach({ node, logStore, dbFile });  // before node.start(): times the flushes; the inspector
//                                            // hooks XState inspection into the node while watched
//   buildGrpcServer({ chat: obs.instrumentService(chat.implementation()), ... }) → obs.bindHealth(health)
//   startHttpServer({ ..., extraRoutes: obs.routes() });   obs.close() on stop
import { statSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import type { LogView } from '../../machines/protocol.js';
import type { Transport } from '../raft/interfaces.js';
import type { RaftNode } from '../raft/node.js';
import { chartRoutes, chartStatesOf } from '../web/charts.js';
import { clusterRoutes, devFromEnv } from '../web/cluster-view.js';
import { type Routes, defaultHttpUrlFor } from '../web/http-server.js';
import { ReplicaInspector, type ReplicaView, viewOfNode } from '../web/inspector.js';
import { ReplicaMetrics, type TimedLogStore } from '../web/metrics.js';
import { EventLoopLag } from './event-loop.js';
import { bindHealth } from './grpc-health.js';
import { PausableTransport } from './pausable-transport.js';

/** Where the slow-fsync warning goes (the replica's pino logger fits). */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

/** The health fields of GetStatus and of the /cluster card. */
export interface ReplicaHealth {
  fsync_p99_ms: number;
  slow_fsyncs: number;
  event_loop_lag_p99_ms: number;
}

export interface ReplicaObservabilityOptions {
  secret: string;
  /** Development mode (the /cluster controls); default from QC_DEV. */
  dev?: boolean;
  /** The stop control: a graceful stop of this process. */
  onStop?: () => void;
  /**
   * The restart control: kill -9 and start the replica `id` again, through the launcher that supervises
   * the replicas (the server passes its src/server/launcher-link.ts; observability imports no server).
   */
  restart?: (id: string) => Promise<string>;
  httpUrlFor?: (grpcAddress: string) => string | undefined;
  /** `--slow-fsync-ms`: a longer fsync is logged as a warning and counted (default 100). */
  slowFsyncMs?: number;
  logger?: WarnLogger;
}

export class ReplicaObservability {
  readonly inspector: ReplicaInspector;
  private node: RaftNode | undefined;
  private log: Pick<LogView, 'firstIndex' | 'lastIndex' | 'termAt'> | undefined;
  private transport: PausableTransport | undefined;
  private _metrics: ReplicaMetrics | undefined;
  private unbindHealth: (() => void) | undefined;
  /**
   * This process's event-loop delay, per second over the last 10 s: the one histogram behind the
   * /cluster card, GetStatus and the server's qc_event_loop_delay_* metrics.
   */
  readonly loopLag = new EventLoopLag();

  constructor(private readonly opts: ReplicaObservabilityOptions) {
    this.loopLag.start();
    this.inspector = new ReplicaInspector({
      view: () => this.view(),
      // XState inspection only while a /cluster page is open (RaftNode.setInspection).
      hook: (observer) => this.node?.setInspection(observer),
      tapTraffic: (tap) => {
        if (this.transport) this.transport.tap = tap;
      },
    });
  }

  get dev(): boolean {
    return this.opts.dev ?? devFromEnv();
  }

  /**
   * The transport to give RaftNode: in development mode the page's "pause" and "cut" drop its messages,
   * and while a page watches, its tap feeds the messages in flight.
   */
  wrapTransport(t: Transport): Transport {
    this.transport = new PausableTransport(t);
    return this.transport;
  }

  get metrics(): ReplicaMetrics {
    if (!this._metrics) throw new Error('ReplicaObservability.attach() first');
    return this._metrics;
  }

  /** Call once the node exists and before node.start() (the log store's flushes get timed). */
  attach(parts: {
    node: RaftNode;
    logStore?: TimedLogStore & Pick<LogView, 'firstIndex' | 'lastIndex' | 'termAt'>;
    dbFile?: string;
  }): void {
    this.node = parts.node;
    if (this.inspector.watching) parts.node.setInspection(this.inspector.observer);
    this.log = parts.logStore;
    const dbFile = parts.dbFile;
    this._metrics = new ReplicaMetrics({
      node: parts.node,
      logStore: parts.logStore,
      // The database holds the chat tables too; with the WAL it is what the log costs on disk.
      logBytes: dbFile ? () => fileSize(dbFile) + fileSize(`${dbFile}-wal`) : undefined,
      processMetrics: true,
      slowFsyncMs: this.opts.slowFsyncMs,
      // etcd's "slow fdatasync" warning: a disk this slow delays every commit and can cost elections.
      onSlowFsync: (ms, thresholdMs) =>
        this.opts.logger?.warn(
          { fsync_ms: Math.round(ms * 10) / 10, slow_fsync_ms: thresholdMs },
          `slow fsync: ${ms.toFixed(1)} ms (over ${thresholdMs} ms); the disk is too slow for consensus`,
        ),
    });
    this._metrics.gauge(
      'qc_cluster_view_viewers',
      'Open /cluster event streams.',
      () => this.inspector.viewers,
    );
    this._metrics.gauge('qc_cluster_view_inspecting', '1 while the inspector observes the replica.', () =>
      this.inspector.watching ? 1 : 0,
    );
  }

  /** The /cluster card: the node's state plus its event-loop lag and fsync p99. */
  private view(): ReplicaView {
    const h = this.health();
    const t = this.transport;
    return {
      ...viewOfNode(this.requireNode(), this.log),
      ...(t ? { faults: { cut: t.cutPeers(), pausedMs: t.remainingMs() } } : {}),
      loopLagP99Ms: h.event_loop_lag_p99_ms,
      fsyncP99Ms: h.fsync_p99_ms,
      charts: chartStatesOf(this.requireNode()),
    };
  }

  /** fsync p99 and slow fsyncs (disk), event-loop lag p99 (what delays the election timers). */
  health(): ReplicaHealth {
    const disk = this._metrics?.diskHealth();
    return {
      fsync_p99_ms: round1(disk?.fsyncP99Ms ?? 0),
      slow_fsyncs: disk?.slowFsyncs ?? 0,
      event_loop_lag_p99_ms: round1(this.loopLag.recentP99Ms()),
    };
  }

  instrumentService(impl: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    return this.metrics.instrumentService(impl);
  }

  bindHealth(health: Pick<HealthImplementation, 'setStatus'>): void {
    this.unbindHealth?.();
    this.unbindHealth = bindHealth(health, this.requireNode());
  }

  /** extraRoutes for startHttpServer: /cluster, /cluster/*, /metrics. */
  routes(httpUrlFor = this.opts.httpUrlFor ?? defaultHttpUrlFor): Routes {
    const node = this.requireNode();
    const transport = this.transport;
    return {
      ...clusterRoutes({
        node,
        inspector: this.inspector,
        view: () => this.view(),
        httpUrlFor,
        secret: this.opts.secret,
        dev: this.dev,
        onStop: this.opts.onStop,
        restart: this.opts.restart,
        pause: transport ? (ms) => transport.pause(ms) : undefined,
        links: transport ? { cut: (peer) => transport.cut(peer), heal: () => transport.heal() } : undefined,
      }),
      ...chartRoutes(),
      '/metrics': this.metrics.route,
    };
  }

  close(): void {
    this.loopLag.stop();
    this.unbindHealth?.();
    this.unbindHealth = undefined;
    this.inspector.closeStreams();
  }

  private requireNode(): RaftNode {
    if (!this.node) throw new Error('ReplicaObservability.attach() first');
    return this.node;
  }
}

function fileSize(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
