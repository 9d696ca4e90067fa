// A one-member cluster in one process: ChatStore + LocalReplicator + ChatService behind the gRPC server.
// Writes still go through the command/apply path Raft will use; only the replicator differs.
import { join } from 'node:path';
import { EventHub } from '../chat/events.js';
import type { ScryptCost } from '../chat/password.js';
import { LocalReplicator } from '../chat/replicator.js';
import { ChatService } from '../chat/service.js';
import { ChatStore } from '../chat/store.js';
import type { Logger } from '../logger.js';
import { UserError } from '../user-error.js';
import { ChatHandlers } from './chat-handlers.js';
import { LocalChatRouter } from './chat-router.js';
import { type ClusterStatus, clusterHandlers } from './cluster-handlers.js';
import { buildGrpcServer, listen, shutdown } from './grpc-server.js';
import type { Topology } from './metadata.js';

export const CHAT_DB_FILE = 'chat.sqlite';

export interface SingleNodeOptions {
  id: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** An existing, checked data dir (see data-dir.ts); ':memory:' keeps everything in memory (tests). */
  dataDir: string;
  clusterSecret: string;
  logger?: Logger;
  scryptCost?: ScryptCost;
}

export interface RunningNode {
  address: string;
  port: number;
  store: ChatStore;
  service: ChatService;
  stop(): Promise<void>;
}

/** Opens the chat database, mapping a corrupt or foreign file to a one-line UserError. */
export function openChatStore(dataDir: string): ChatStore {
  if (dataDir === ':memory:') return new ChatStore(':memory:', { durable: false });
  const file = join(dataDir, CHAT_DB_FILE);
  try {
    return new ChatStore(file);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const why = /NOTADB|CORRUPT/.test(code) ? 'is not a valid database' : (err as Error).message;
    throw new UserError(`data dir ${dataDir} is corrupt: ${CHAT_DB_FILE} ${why}`);
  }
}

export async function startSingleNode(opts: SingleNodeOptions): Promise<RunningNode> {
  const store = openChatStore(opts.dataDir);
  const hub = new EventHub(store);
  const replicator = new LocalReplicator(store);
  const service = new ChatService(store, replicator, hub, { scryptCost: opts.scryptCost });
  let address = `${opts.host}:${opts.port}`;
  const topology: Topology = { leaderAddress: () => address, memberAddresses: () => [address] };
  const status = (): ClusterStatus => {
    const applied = store.appliedIndex();
    return {
      node_id: opts.id,
      address,
      role: 'leader',
      term: 1,
      leader_id: opts.id,
      leader_address: address,
      commit_index: applied,
      last_applied: applied,
      last_log_index: applied,
      snapshot_index: 0,
      members: [{ id: opts.id, address, voter: true }],
      state_digest: store.stateDigest(),
    };
  };
  const chat = new ChatHandlers({
    router: new LocalChatRouter(service),
    subscriptions: service,
    topology,
    logger: opts.logger,
  });
  const { server } = buildGrpcServer({
    chat: chat.implementation(),
    cluster: clusterHandlers({ control: { status }, secret: opts.clusterSecret, topology }),
  });
  let port: number;
  try {
    port = await listen(server, opts.host, opts.port);
  } catch (err) {
    server.forceShutdown();
    hub.close();
    store.close();
    throw err;
  }
  address = `${opts.host}:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    address,
    port,
    store,
    service,
    stop: () => {
      stopped ??= (async () => {
        chat.closeStreams();
        await shutdown(server, 2000);
        hub.close();
        store.close();
      })();
      return stopped;
    },
  };
}
