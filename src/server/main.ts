// `quorum-chat server` (API.md §1). This build runs a one-member cluster: an empty data dir without
// --peers bootstraps it, an existing data dir restarts it. Joining through --peers comes with the Raft
// server. SIGTERM/SIGINT stop it gracefully with exit code 0.
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../logger.js';
import { loadClusterSecret } from '../raft/cluster-secret.js';
import { UserError } from '../user-error.js';
import { discardFreshDataDir, prepareDataDir } from './data-dir.js';
import { parseServerFlags } from './flags.js';
import { CHAT_DB_FILE, type RunningNode, startSingleNode } from './single-node.js';

export async function main(argv: string[]): Promise<number> {
  const config = parseServerFlags(argv);
  const { dir, fresh } = prepareDataDir(config.dataDir, config.id);
  if (fresh && config.peers.length > 0) {
    throw new UserError(
      'joining a cluster with --peers is not supported by this build yet; start without --peers',
    );
  }
  const clusterSecret = loadClusterSecret({
    secretFile: config.clusterSecretFile,
    dataDir: dir,
    create: fresh && config.peers.length === 0,
  });
  const logger = createLogger({ level: config.logLevel, nodeId: config.id });
  // grpc-js prints its own errors to stderr (e.g. on a port in use); ours are the one-line ones.
  grpc.setLogger({ error: (...a: unknown[]) => logger.debug({ grpc: a.map(String).join(' ') }, 'grpc-js') });
  let node: RunningNode;
  try {
    node = await startSingleNode({
      id: config.id,
      host: config.host,
      port: config.port,
      dataDir: dir,
      clusterSecret,
      logger,
    });
  } catch (err) {
    if (fresh) discardFreshDataDir(dir, [CHAT_DB_FILE, `${CHAT_DB_FILE}-wal`, `${CHAT_DB_FILE}-shm`]);
    throw err;
  }
  logger.info(
    { address: node.address, data_dir: dir, applied: node.store.appliedIndex(), bootstrap: fresh },
    `serving on ${node.address}`,
  );

  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await node.stop();
  logger.info('stopped');
  logger.flush();
  // Exit even if a library left a handle open; the timer does not itself keep the process alive.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}
