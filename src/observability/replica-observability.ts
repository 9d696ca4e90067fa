// Everything the replica wiring needs for the inspector, /metrics, /cluster and gRPC health, behind one
// object, so src/server/replica.ts changes by a few lines:
//
//   const obs = new ReplicaObservability({ secret, dev, onStop: () => process.kill(process.pid, 'SIGTERM') });
//   const node = new RaftNode({ ..., transport: obs.wrapTransport(transport), inspect: obs.inspect });
//   obs.attach({ node, logStore, dbFile });                 // before node.start(): times the flushes
//   buildGrpcServer({ chat: obs.instrumentService(chat.implementation()), ... }) → obs.bindHealth(health)
//   startHttpServer({ ..., extraRoutes: obs.routes() });   obs.close() on stop
import { statSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import type { InspectionEvent } from 'xstate';
import type { Transport } from '../raft/interfaces.js';
import type { RaftNode } from '../raft/node.js';
import type { Launcher } from '../server/launcher-link.js';
import { clusterRoutes, devFromEnv } from '../web/cluster-view.js';
import { type Routes, defaultHttpUrlFor } from '../web/http-server.js';
import { ReplicaInspector, viewOfNode } from '../web/inspector.js';
import { ReplicaMetrics, type TimedLogStore } from '../web/metrics.js';
import { bindHealth } from './grpc-health.js';
import { PausableTransport } from './pausable-transport.js';

export interface ReplicaObservabilityOptions {
  secret: string;
  /** Development mode (the /cluster controls); default from QC_DEV. */
  dev?: boolean;
  /** The stop control: a graceful stop of this process. */
  onStop?: () => void;
  /** The restart control: asks the launcher that supervises the replicas (launcher-link.ts). */
  launcher?: Launcher;
  httpUrlFor?: (grpcAddress: string) => string | undefined;
}

export class ReplicaObservability {
  readonly inspector: ReplicaInspector;
  private node: RaftNode | undefined;
  private transport: PausableTransport | undefined;
  private _metrics: ReplicaMetrics | undefined;
  private unbindHealth: (() => void) | undefined;

  constructor(private readonly opts: ReplicaObservabilityOptions) {
    this.inspector = new ReplicaInspector({ view: () => viewOfNode(this.requireNode()) });
  }

  /** RaftNode's `inspect` option: returns at once while no /cluster page is open. */
  get inspect(): (e: InspectionEvent) => void {
    return this.inspector.observer;
  }

  get dev(): boolean {
    return this.opts.dev ?? devFromEnv();
  }

  /** The transport to give RaftNode; in development mode the page's "pause" cuts it for a while. */
  wrapTransport(t: Transport): Transport {
    this.transport = new PausableTransport(t);
    return this.transport;
  }

  get metrics(): ReplicaMetrics {
    if (!this._metrics) throw new Error('ReplicaObservability.attach() first');
    return this._metrics;
  }

  /** Call once the node exists and before node.start() (the log store's flushes get timed). */
  attach(parts: { node: RaftNode; logStore?: TimedLogStore; dbFile?: string }): void {
    this.node = parts.node;
    const dbFile = parts.dbFile;
    this._metrics = new ReplicaMetrics({
      node: parts.node,
      logStore: parts.logStore,
      // The database holds the chat tables too; with the WAL it is what the log costs on disk.
      logBytes: dbFile ? () => fileSize(dbFile) + fileSize(`${dbFile}-wal`) : undefined,
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
        view: () => viewOfNode(node),
        httpUrlFor,
        secret: this.opts.secret,
        dev: this.dev,
        onStop: this.opts.onStop,
        restart: this.opts.launcher ? (id) => this.opts.launcher!.restart(id) : undefined,
        pause: transport ? (ms) => transport.pause(ms) : undefined,
      }),
      '/metrics': this.metrics.route,
    };
  }

  close(): void {
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
