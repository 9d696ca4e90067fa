// `quorum-chat server` (API.md §1): one Raft replica. An empty data dir without --peers bootstraps a
// one-member cluster; an empty data dir with --peers joins the running cluster (learner, catch-up,
// voter); an existing data dir restarts from its persisted state and membership (--peers is then only a
// hint). SIGTERM/SIGINT stop it gracefully (a leader hands over first) with exit code 0.
import * as grpc from '@grpc/grpc-js';
import { ClusterClient } from '../client/cluster-client.js';
import type { Logger } from '../logger.js';
import { createReplicaLogger } from '../observability/logging.js';
import { octal, restrictUmask, tightenPath, tightenTree } from '../private-files.js';
import { loadClusterSecret, secretPath } from '../raft/cluster-secret.js';
import { peerChannelCredentials } from '../tls/credentials.js';
import { loadReplicaTls } from '../tls/tls-files.js';
import { discardFreshDataDir, prepareDataDir } from './data-dir.js';
import { parseServerFlags } from './flags.js';
import { joinCluster } from './join.js';
import { launcherOf } from './launcher-link.js';
import { RemovalWatch } from './removal-watch.js';
import { DB_FILE, type RunningReplica, removeFreshDataFiles, startReplica } from './replica.js';

const FRESH_FILES = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`];

export async function main(argv: string[]): Promise<number> {
  const config = parseServerFlags(argv);
  // Read and checked before anything is created or bound: a bad TLS file is one line naming it.
  const tls = loadReplicaTls({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    caFile: config.tlsCaFile,
  });
  // Everything this process creates from here on (data dir, SQLite files, snapshots, the cluster
  // secret) is private to its user, whatever umask the shell had (issue 13, finding 4).
  restrictUmask();
  const { dir, fresh } = prepareDataDir(config.dataDir, config.id);
  const undoFresh = () => {
    if (!fresh) return;
    removeFreshDataFiles(dir);
    discardFreshDataDir(dir, FRESH_FILES);
  };
  let clusterSecret: string;
  try {
    clusterSecret = loadClusterSecret({
      secretFile: config.clusterSecretFile,
      dataDir: dir,
      create: fresh && config.peers.length === 0,
    });
  } catch (err) {
    undoFresh();
    throw err;
  }
  // node_id and the current term on every line (the term follows the node once it runs).
  const { logger, term } = createReplicaLogger({ level: config.logLevel, nodeId: config.id });
  // grpc-js prints its own errors to stderr (e.g. on a port in use); ours are the one-line ones.
  grpc.setLogger({ error: (...a: unknown[]) => logger.debug({ grpc: a.map(String).join(' ') }, 'grpc-js') });
  makePrivate(dir, secretPath({ secretFile: config.clusterSecretFile, dataDir: dir }), logger);

  let replica: RunningReplica;
  try {
    replica = await startReplica({
      id: config.id,
      host: config.host,
      port: config.port,
      dataDir: dir,
      peers: config.peers,
      clusterSecret,
      timing: {
        heartbeatMs: config.heartbeatMs,
        electionMinMs: config.electionMinMs,
        electionMaxMs: config.electionMaxMs,
      },
      httpPort: config.httpPort,
      snapshotEvery: config.snapshotEvery,
      sessionTtlMs: config.sessionTtlMs,
      rateLimits: {
        loginFailuresPerMinute: config.loginFailuresPerMinute,
        writesPerSecond: config.writeRate,
        writeBurst: config.writeBurst,
      },
      scryptCost: { N: config.scryptN, r: 8, p: 1 },
      slowFsyncMs: config.slowFsyncMs,
      flushPolicy: { delayUs: config.flushDelayUs, maxEntries: config.flushMaxEntries },
      tls,
      logger,
      // The /cluster page's stop control: the same graceful stop as SIGTERM.
      onStop: () => process.kill(process.pid, 'SIGTERM'),
      // Started by `quorum-chat cluster` (make run): its restart control asks that launcher.
      launcher: launcherOf(),
      logTerm: term,
    });
  } catch (err) {
    undoFresh();
    throw err;
  }
  logger.info(
    { address: replica.address, data_dir: dir, mode: replica.mode, http_port: replica.http?.port },
    `serving on ${replica.address}`,
  );

  let stopping = false;
  const signalled = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping');
      stopping = true;
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });

  const join = () =>
    joinCluster({
      id: config.id,
      address: replica.address,
      peers: config.peers,
      secret: clusterSecret,
      credentials: peerChannelCredentials(tls),
      logger,
      cancelled: () => stopping,
    });
  if (replica.mode === 'join') {
    try {
      await Promise.race([join(), signalled]);
    } catch (err) {
      await replica.stop();
      // Nothing of this cluster was committed to us as a voter: a retry should start from scratch.
      undoFresh();
      logger.flush();
      throw err;
    }
  } else if (replica.mode === 'restart' && config.peers.length > 0 && !isVoter(replica)) {
    // Restarted before the cluster promoted us (or after it removed us): ask again, in the background.
    void join().catch((err: unknown) =>
      logger.warn({ reason: (err as Error).message }, 'could not rejoin through --peers'),
    );
  }

  // A replica removed from the cluster says so and exits 0, as etcd does (removal-watch.ts): it has no
  // part to play any more, and staying up would keep a "candidate" in every status table. To serve
  // again it must be added back (member add) from an empty data dir.
  const statusClient = new ClusterClient([replica.address], {
    statusTimeoutMs: 1000,
    credentials: peerChannelCredentials(tls),
  });
  let watch: RemovalWatch | undefined;
  const removed = new Promise<void>((resolve) => {
    watch = new RemovalWatch({
      node: replica.node,
      getStatus: (address) => statusClient.getStatus(address),
      intervalMs: Math.max(1000, 4 * config.electionMaxMs),
      onRemoved: (e) => {
        logger.warn(
          { leader: e.leaderId, leader_term: e.term, leader_commit: e.commitIndex },
          `this replica was removed from the cluster: the configuration that ${e.leaderId} leads in term ${e.term} no longer lists it; exiting`,
        );
        resolve();
      },
    });
    watch.start();
  });

  await Promise.race([signalled, removed]);
  stopping = true;
  watch?.stop();
  statusClient.close();
  const electionMs = config.electionMaxMs;
  await replica.stop({ transferMs: Math.max(1000, 4 * electionMs) });
  logger.info('stopped');
  logger.flush();
  // Exit even if a library left a handle open; the timer does not itself keep the process alive.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}

function isVoter(r: RunningReplica): boolean {
  return r.node.status().config.members.some((m) => m.id === r.id && m.voter);
}

/**
 * A data dir from before this check, or copied with loose modes, is made private (0700 directories,
 * 0600 files) with one log line saying what changed; so is the cluster secret file. A file we may not
 * chmod (someone else's) is reported, not fatal: the server still works, the operator gets told.
 */
function makePrivate(dir: string, secretFile: string, logger: Logger): void {
  const report = (what: string, fn: () => { path: string; was: number }[]) => {
    try {
      const changed = fn();
      if (changed.length === 0) return;
      logger.warn(
        {
          path: what,
          fixed: changed.length,
          examples: changed.slice(0, 5).map((c) => `${c.path} ${octal(c.was)}`),
        },
        `${what} was readable by other local users; made it private (0700 dirs, 0600 files)`,
      );
    } catch (err) {
      logger.warn(
        { path: what, reason: (err as Error).message },
        `could not make ${what} private; check its permissions`,
      );
    }
  };
  report(dir, () => tightenTree(dir));
  report(secretFile, () => {
    const t = tightenPath(secretFile);
    return t ? [t] : [];
  });
}
