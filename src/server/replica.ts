// One Raft replica in one process: the whole wiring of `quorum-chat server`.
//
//   SQLite file (log + hard state + chat tables) ── SqliteLogStore ─┐
//                                                 └ ChatStore ──────┤ RaftNode (real clock, random seed)
//   gRPC server: RaftService (GrpcTransport) ───────────────────────┘      │ onRoleChange
//                ChatService ─▶ RaftChatRouter ─▶ chat actor (in the replica's actor system, by role):
//                                   propose / readIndex actor ─▶ local ChatService ─▶ RaftReplicator
//                                   forward actor ─▶ the leader (ForwardStreams: one stream per
//                                                    leader, batched)
//                ForwardService ─▶ ChatHandlers.serve (the calls followers forward to this leader)
//                ClusterService ─▶ Membership (status, add/remove/transfer)
//   HTTP server: web client + gateway over a ChatClient (this replica first), /healthz
//
// One database file per replica, shared by the log store and the chat tables: one WAL, one fsync per
// group commit, and a data dir that is a single thing to copy or delete. Start-up (API.md §1): an empty
// log without --peers bootstraps a one-member cluster (its first entry is the configuration naming this
// replica the only voter); an empty log with --peers starts as a non-member that never campaigns until
// the leader adds it (join.ts); anything else restarts from what is on disk.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { ClusterConfig, Timing } from '../../machines/protocol.js';
import { AdmissionControl, DEFAULT_RATE_LIMITS, type RateLimits } from '../chat/admission.js';
import { ChatError, status } from '../chat/errors.js';
import { EventHub } from '../chat/events.js';
import { HashQueue } from '../chat/hash-queue.js';
import type { ScryptCost } from '../chat/password.js';
import { ScryptWorkers } from '../chat/scrypt-workers.js';
import { ChatService } from '../chat/service.js';
import { checkChatSnapshot } from '../chat/snapshots.js';
import { ChatStore, SchemaVersionError } from '../chat/store.js';
import { tokenHash } from '../chat/tokens.js';
import { TYPING_TOPIC, TypingFanout } from '../chat/typing.js';
import { ChatClient } from '../client/client.js';
import type { Logger } from '../logger.js';
import { type TermHolder, followTerm } from '../observability/logging.js';
import { ReplicaObservability } from '../observability/replica-observability.js';
import { touchPrivateDatabase } from '../private-files.js';
import { clusterIdFromSecret } from '../raft/cluster-secret.js';
import { GrpcTransport } from '../raft/grpc-transport.js';
import type { Clock } from '../raft/interfaces.js';
import { lagAwareClock } from '../raft/lag-aware-clock.js';
import { RaftNode } from '../raft/node.js';
import type { FlushPolicy } from '../raft/ready-executor.js';
import { FileSnapshotStore } from '../raft/snapshot-store.js';
import { Snapshotter } from '../raft/snapshotter.js';
import { DataDirError, SqliteLogStore } from '../raft/sqlite-log-store.js';
import { peerChannelCredentials } from '../tls/credentials.js';
import type { ReplicaTls } from '../tls/tls-files.js';
import { UserError } from '../user-error.js';
import { chatApiFromClient } from '../web/client-api.js';
import { type HttpServer, httpUrlForOffset, startHttpServer } from '../web/http-server.js';
import { BackupSource } from './backup-source.js';
import { ChatHandlers } from './chat-handlers.js';
import { clusterService } from './cluster-handlers.js';
import { type ForwardServiceHandle, ForwardStreams, addForwardService } from './forward-stream.js';
import { LeaderForwarder } from './forwarder.js';
import { buildGrpcServer, listen, shutdown } from './grpc-server.js';
import type { Launcher } from './launcher-link.js';
import { Membership } from './membership.js';
import { RaftReplicator } from './raft-replicator.js';
import { RaftChatRouter } from './raft-router.js';

export const DB_FILE = 'replica.sqlite';
export const SNAPSHOT_DIR = 'snapshots';

export type StartMode = 'bootstrap' | 'join' | 'restart';

/** The relay topic of session refreshes that a follower hands to the leader. */
const SESSION_TOUCH_TOPIC = 'session-touch';

export interface ReplicaOptions {
  id: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** An existing, checked data dir (data-dir.ts); ':memory:' keeps everything in memory (tests). */
  dataDir: string;
  peers: string[];
  clusterSecret: string;
  timing: Timing;
  /** Start the HTTP server (web client, gateway, /healthz) on this port; undefined: none. */
  httpPort?: number;
  logger?: Logger;
  scryptCost?: ScryptCost;
  /** /cluster controls (stop, pause, transfer); default from QC_DEV. */
  dev?: boolean;
  /** The /cluster stop control: a graceful stop of the process (main sends itself SIGTERM). */
  onStop?: () => void;
  /** The launcher supervising this process, if any: the /cluster restart control asks it. */
  launcher?: Launcher;
  /** The logger's term (createReplicaLogger): it follows the node from its start. */
  logTerm?: TermHolder;
  /** Snapshot every this many applied entries (Snapshotter default when undefined). */
  snapshotEvery?: number;
  /** TTL of new sessions (--session-ttl); ChatService's default (30 days) when undefined. */
  sessionTtlMs?: number;
  /** API.md Limits (failed logins, writes); the defaults of API.md when undefined. */
  rateLimits?: RateLimits;
  /** Password hashes that may run at once (K) and wait (Q); hash-queue.ts defaults when undefined. */
  hashConcurrency?: number;
  hashQueueLength?: number;
  /** An fsync longer than this (ms) logs a warning and counts in /metrics (default 100). */
  slowFsyncMs?: number;
  /** When the log's group-commit flush runs (--flush-delay-us, --flush-max-entries); default: next turn. */
  flushPolicy?: FlushPolicy;
  /** Serve gRPC and HTTP over TLS; with a CA, talk mutual TLS to peers (tls/). Plaintext without. */
  tls?: ReplicaTls;
}

export interface RunningReplica {
  id: string;
  address: string;
  port: number;
  mode: StartMode;
  node: RaftNode;
  logStore: SqliteLogStore;
  store: ChatStore;
  service: ChatService;
  membership: Membership;
  http?: HttpServer;
  /** A leader hands over first (bounded by `transferMs`), then everything stops. `handedOver` says
   *  whether this replica led and its transfer completed. */
  stop(opts?: { transferMs?: number }): Promise<{ handedOver: boolean }>;
}

/**
 * Real timers that let input already waiting go first when the loop lagged (src/raft/lag-aware-clock.ts):
 * on a busy machine a late election timer must not beat the heartbeat that arrived during the stall.
 * Timers shorter than the base election timeout (the leader's heartbeat) are never held back.
 */
function realClock(timing: Timing): Clock {
  return process.env.QC_TIMERS === 'plain'
    ? // Diagnostics only (before/after figures of make bench-stability): timers as they fire.
      {
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
        now: () => Date.now(),
      }
    : lagAwareClock({ deferFromMs: timing.electionMinMs });
}

/** Opens the replica's database in WAL mode with synchronous=FULL (one fsync per commit). */
export function openDatabase(dataDir: string): Database.Database {
  const file = dataDir === ':memory:' ? ':memory:' : join(dataDir, DB_FILE);
  let db: Database.Database | undefined;
  try {
    // Private before SQLite creates it: its -wal and -shm files take the main file's mode.
    touchPrivateDatabase(file);
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    return db;
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code ?? '';
    const why = /NOTADB|CORRUPT/.test(code)
      ? 'is not a valid database'
      : `cannot be opened (${(err as Error).message})`;
    throw new UserError(`data dir ${dataDir} is corrupt: ${DB_FILE} ${why}`);
  }
}

/** The Raft and chat stores on one database; a corrupt or foreign file is a one-line UserError. */
export function openStores(
  db: Database.Database,
  opts: Pick<ReplicaOptions, 'id' | 'clusterSecret' | 'dataDir'>,
): { logStore: SqliteLogStore; store: ChatStore } {
  try {
    const logStore = new SqliteLogStore({
      db,
      nodeId: opts.id,
      clusterId: clusterIdFromSecret(opts.clusterSecret),
      // RaftNode already gathers every write of a tick into one deferred flush (group commit), so the
      // store commits at once: its own deferral would add a second event-loop turn before the fsync,
      // which the bench traced at 5-40 ms per flush on a busy machine, on every follower's ack path.
      flushMode: 'sync',
    });
    const store = new ChatStore(db);
    return { logStore, store };
  } catch (err) {
    if (err instanceof DataDirError || err instanceof UserError) throw err;
    if (err instanceof SchemaVersionError) throw new UserError(`data dir ${opts.dataDir}: ${err.message}`);
    const code = (err as { code?: string }).code ?? '';
    const why = /NOTADB|CORRUPT/.test(code) ? 'is not a valid database' : (err as Error).message;
    throw new UserError(`data dir ${opts.dataDir} is corrupt: ${DB_FILE} ${why}`);
  }
}

export async function startReplica(opts: ReplicaOptions): Promise<RunningReplica> {
  const logger = opts.logger;
  const db = openDatabase(opts.dataDir);
  const cleanup: (() => void)[] = [() => db.open && db.close()];
  const undo = () => {
    for (const f of cleanup.reverse()) {
      try {
        f();
      } catch {
        // Best effort: we are failing already.
      }
    }
  };
  try {
    const { logStore, store } = openStores(db, opts);
    cleanup.push(
      () => store.close(),
      () => logStore.close(),
    );
    const snapshots =
      opts.dataDir === ':memory:'
        ? undefined
        : new FileSnapshotStore(join(opts.dataDir, SNAPSHOT_DIR), {
            // Raft cannot judge a snapshot's bytes: the chat side checks a received one before it counts.
            verify: (file, meta) => checkChatSnapshot(file, meta.index),
          });
    if (snapshots) cleanup.push(() => snapshots.close());

    // Empty: nothing in the log, no applied state, no snapshot (an install a crash cut short counts as
    // state: RaftNode finishes it on start).
    const empty =
      logStore.lastIndex() === 0 &&
      logStore.snapshot().index === 0 &&
      store.appliedIndex() === 0 &&
      (snapshots?.latest().index ?? 0) === 0;
    const mode: StartMode = !empty ? 'restart' : opts.peers.length > 0 ? 'join' : 'bootstrap';

    let address = `${opts.host}:${opts.port}`;
    // Everything this replica dials (peers' Raft streams, the leader it forwards to, its own web
    // gateway) goes with these: plaintext, or TLS presenting its certificate (mutual TLS with a CA).
    const credentials = peerChannelCredentials(opts.tls);
    const transport = new GrpcTransport({
      selfId: opts.id,
      selfAddress: address,
      secret: opts.clusterSecret,
      credentials,
      logger,
      // Diagnostics only (before/after failover figures of make bench-etcd): no lost-connection hint.
      reportPeerLost: process.env.QC_PEER_LOST !== 'off',
    });
    // Inspector, /metrics, /cluster and gRPC health (src/observability/replica-observability.ts).
    const obs = new ReplicaObservability({
      secret: opts.clusterSecret,
      dev: opts.dev,
      onStop: opts.onStop,
      restart: opts.launcher?.restart.bind(opts.launcher),
      slowFsyncMs: opts.slowFsyncMs,
      // The /cluster page reads every member's HTTP server: https when they serve TLS.
      ...(opts.tls ? { httpUrlFor: httpUrlForOffset(1000, 'https') } : {}),
      logger,
    });
    const seed = randomBytes(4).readInt32LE(0);
    const node = new RaftNode({
      id: opts.id,
      logStore,
      stateMachine: store,
      transport: obs.wrapTransport(transport),
      clock: realClock(opts.timing),
      timing: opts.timing,
      seed,
      logger,
      flushPolicy: opts.flushPolicy,
      // Received snapshots are restored with store.restore (src/chat/snapshots.ts), also on start to
      // finish an install a crash interrupted (snapshot-installer.ts).
      snapshots,
      onError: (err) => logger?.error({ err }, 'the replica failed; it no longer takes part in the cluster'),
    });
    cleanup.push(() => node.stop());
    const dbFile = opts.dataDir === ':memory:' ? undefined : join(opts.dataDir, DB_FILE);
    obs.attach({ node, logStore, dbFile });
    cleanup.push(() => obs.close());

    const hub = new EventHub(store);
    cleanup.push(() => hub.close());
    const replicator = new RaftReplicator(node);
    // Typing notices never enter the log: delivered here and relayed to every other replica over the
    // peer transport, as opaque bytes (docs/design/typing.md).
    const typing = new TypingFanout({ hub, relay: (payload) => transport.relay(TYPING_TOPIC, payload) });
    transport.onRelay(TYPING_TOPIC, (_from, payload) => typing.receive(payload));
    // A session used only to read on a follower is refreshed by the leader (ChatService.touchRelayed).
    transport.onRelay(SESSION_TOUCH_TOPIC, (_from, payload) =>
      service.touchRelayed(payload.toString('latin1')),
    );
    // Subscribe's barrier for a token this replica has not applied yet: a read on the leader (through
    // the router: local on the leader, forwarded from a follower) confirms it before it is refused.
    const routing: { router?: RaftChatRouter } = {};
    // Password hashing runs K at a time, Q more wait, the rest is shed (hash-queue.ts). They run on K
    // worker threads of low CPU priority, so the event loop always comes first.
    const hashQueue = new HashQueue({ concurrency: opts.hashConcurrency, maxWaiting: opts.hashQueueLength });
    const scrypt = new ScryptWorkers(hashQueue.concurrency);
    cleanup.push(() => scrypt.close());
    const service: ChatService = new ChatService(store, replicator, hub, {
      scryptCost: opts.scryptCost,
      hashQueue,
      derive: scrypt.derive,
      sessionTtlMs: opts.sessionTtlMs,
      typing,
      relayTouch: (actor) => transport.relay(SESSION_TOUCH_TOPIC, Buffer.from(actor, 'latin1')),
      confirmSession: (token, deadline): Promise<unknown> => {
        if (!router)
          return Promise.reject(new ChatError(status.UNAVAILABLE, 'The replica is starting; retry.'));
        return router.handle({ method: 'GetSettings', request: {}, token, deadline });
      },
    });
    // The rate limits, in front of the service where the router runs calls locally: on the leader
    // (followers forward), so they hold cluster-wide and keep refused calls out of the log.
    const rateLimited = new Counter({
      name: 'qc_rate_limited_total',
      help: 'Calls refused with RESOURCE_EXHAUSTED by a rate limit, by limit.',
      labelNames: ['limit'],
      registers: [obs.metrics.registry],
    });
    const admission = new AdmissionControl({
      service,
      userOf: (token) => store.authenticate(tokenHash(token), Date.now())?.userId,
      limits: opts.rateLimits ?? DEFAULT_RATE_LIMITS,
      onRefused: (limit) => rateLimited.inc({ limit }),
    });
    const hashStat = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [obs.metrics.registry],
        collect() {
          this.set(read());
        },
      });
    hashStat(
      'qc_password_hashes_running',
      'Password hashes or checks running now.',
      () => hashQueue.stats().running,
    );
    hashStat(
      'qc_password_hashes_waiting',
      'Password hashes or checks waiting for a slot.',
      () => hashQueue.stats().waiting,
    );
    hashStat(
      'qc_password_hashes_shed_total',
      'Password hashes or checks refused because the queue was full.',
      () => hashQueue.stats().shed,
    );
    const lag = obs.loopLag;
    // A campaign or a step-down on a busy machine: was this replica's own loop stalled? (stability)
    node.onRoleChange((r) => {
      if (r.role !== 'leader' && r.leaderId === null)
        logger?.info({ role: r.role, term: r.term, loopLagMaxMs: lag.recentMaxMs() }, 'no leader known');
    });
    hashStat(
      'qc_event_loop_delay_max_seconds',
      'Longest event-loop delay in the last 10 s.',
      () => lag.recentMaxMs() / 1000,
    );
    hashStat(
      'qc_event_loop_delay_p99_seconds',
      'Highest per-second 99th percentile of the event-loop delay in the last 10 s.',
      () => lag.recentP99Ms() / 1000,
    );
    hashStat(
      'qc_event_loop_delay_worst_seconds',
      'Longest event-loop delay since start.',
      () => lag.worstSinceStartMs() / 1000,
    );
    const forwarder = new LeaderForwarder(() => address, credentials);
    cleanup.push(() => forwarder.close());
    // A follower's ChatService calls go to the leader in batches on one stream (forward-stream.ts).
    const forwardStreams = new ForwardStreams({ secret: opts.clusterSecret, credentials, unary: forwarder });
    cleanup.push(() => forwardStreams.close());
    const membership = new Membership({
      node,
      store,
      forwarder,
      secret: opts.clusterSecret,
      selfAddress: () => address,
    });
    const router: RaftChatRouter = new RaftChatRouter({
      id: opts.id,
      service: admission,
      forwarder: forwardStreams,
      addressOf: (id) => membership.addressOf(id),
      // A call waits about one election for a leader to emerge before it is refused.
      leaderWaitMs: opts.timing.electionMaxMs,
      onForward: (method) => obs.metrics.observeForward(method),
      logger,
    });
    routing.router = router;
    cleanup.push(() => router.stop());

    // Outside the configuration (removed, or not yet added) a replica hears from no leader: its reads
    // would go stale and its writes wait in vain, so it sends clients to the members at once.
    const chat = new ChatHandlers({
      router,
      subscriptions: service,
      topology: membership,
      logger,
      notServing: () =>
        node.isMember() ? undefined : 'this replica is not a member of the cluster; use another member.',
    });
    // Streams open when it is removed would go quiet: end them, and their clients resume elsewhere.
    cleanup.push(
      node.onRoleChange(() => {
        if (!node.isMember())
          chat.closeStreams('this replica was removed from the cluster; resubscribe elsewhere.');
      }),
    );
    // ClusterService.Backup copies the chat tables next to the snapshots (not for an in-memory replica).
    const backups = dbFile
      ? new BackupSource({ dbFile, dir: join(opts.dataDir, SNAPSHOT_DIR), logger })
      : undefined;
    let forwardService: ForwardServiceHandle | undefined;
    const { server, health } = buildGrpcServer({
      chat: obs.instrumentService(chat.implementation()),
      cluster: clusterService({
        control: membership,
        secret: opts.clusterSecret,
        topology: membership,
        health: () => obs.health(),
        backup: backups ? () => backups.take() : undefined,
      }),
      extra: (s) => {
        transport.attach(s);
        forwardService = addForwardService(s, {
          secret: opts.clusterSecret,
          // Counted in qc_grpc_server_handled_total like a direct call.
          serve: (req) => obs.metrics.observeServed(req.method, chat.serve(req)),
          onError: (what) => logger?.warn({}, what),
        });
      },
      secret: opts.clusterSecret,
      topology: membership,
      logger,
      tls: opts.tls,
    });
    cleanup.push(() => server.forceShutdown());
    const port = await listen(server, opts.host, opts.port, opts.tls);
    address = `${opts.host}:${port}`;
    transport.setSelfAddress(address);

    if (mode === 'bootstrap') await bootstrap(logStore, { members: [{ id: opts.id, address, voter: true }] });
    node.start();
    // The chat actor joins the replica's actor system now that it exists (calls made earlier waited).
    router.attach({ actor: node.actor, status: () => node.status() });
    obs.bindHealth(health);
    if (opts.logTerm) cleanup.push(followTerm(opts.logTerm, node));
    // Background snapshots and log compaction keep the log bounded (not for an in-memory replica).
    const snapshotter =
      snapshots && opts.dataDir !== ':memory:'
        ? new Snapshotter({
            host: node,
            logStore,
            snapshots,
            source: store,
            logger,
            every: opts.snapshotEvery,
          })
        : undefined;
    snapshotter?.start();
    cleanup.push(() => snapshotter?.stop());

    let http: HttpServer | undefined;
    let root: ChatClient | undefined;
    let api: ReturnType<typeof chatApiFromClient> | undefined;
    if (opts.httpPort !== undefined) {
      // The gateway is a client like any other: this replica first, then the rest (x-members refreshes it).
      root = new ChatClient([address, ...opts.peers.filter((p) => p !== address)], { credentials });
      api = chatApiFromClient(root, { clientOptions: { credentials } });
      cleanup.push(
        () => root?.close(),
        () => api?.close(),
      );
      http = await startHttpServer({
        host: opts.host,
        port: opts.httpPort,
        gateway: api,
        logger: logger ?? pino({ level: 'silent' }),
        tls: opts.tls,
        extraRoutes: obs.routes(),
        // /cluster reads every member's feed, learners included: their hosts go into the CSP.
        pageHosts: () => node.status().config.members.map((m) => m.address),
      });
    }

    let stopped: Promise<{ handedOver: boolean }> | undefined;
    const stop = (o: { transferMs?: number } = {}) => {
      stopped ??= (async () => {
        const handedOver = await handOver(node, o.transferMs ?? 0, logger);
        chat.closeStreams();
        obs.close();
        await http?.close();
        api?.close();
        root?.close();
        router.stop();
        snapshotter?.stop();
        await snapshotter?.idle();
        // The peers' Raft streams into this replica stay open for good: end them, or the shutdown
        // would wait its whole grace period for them.
        transport.endInbound();
        forwardService?.endStreams();
        await shutdown(server, 1000);
        forwardStreams.close();
        forwarder.close();
        node.stop();
        hub.close();
        lag.stop();
        scrypt.close();
        snapshots?.close();
        logStore.close();
        store.close();
        db.close();
        return { handedOver };
      })();
      return stopped;
    };
    return { id: opts.id, address, port, mode, node, logStore, store, service, membership, http, stop };
  } catch (err) {
    undo();
    throw err;
  }
}

/** The first entry of a new cluster: the configuration with this replica as its only voter. */
function bootstrap(logStore: SqliteLogStore, config: ClusterConfig): Promise<void> {
  // Term 1 for the entry and the hard state together (the store refuses a log term above the hard
  // state's); the replica then elects itself in term 2 and commits the entry with its noop.
  logStore.write({
    hardState: { term: 1, votedFor: null },
    entries: [{ index: 1, term: 1, kind: 'config', data: JSON.stringify(config) }],
  });
  return new Promise((resolve) => logStore.flush(resolve));
}

/** A leader with another voter transfers leadership before it stops, waiting at most `ms`. */
async function handOver(node: RaftNode, ms: number, logger?: Logger): Promise<boolean> {
  const s = node.status();
  if (ms <= 0 || s.role !== 'leader') return false;
  if (!s.config.members.some((m) => m.voter && m.id !== node.id)) return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), ms);
  });
  try {
    const outcome = await Promise.race([node.transferLeadership(null).then(() => 'ok' as const), timeout]);
    logger?.info({ outcome, leader: node.status().leaderId }, 'leadership handed over before stopping');
    return outcome === 'ok';
  } catch (err) {
    logger?.warn({ err: (err as Error).message }, 'leadership transfer before stopping failed');
    return false;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export function removeFreshDataFiles(dir: string): void {
  for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) fs.rmSync(join(dir, f), { force: true });
  fs.rmSync(join(dir, SNAPSHOT_DIR), { recursive: true, force: true });
}
