// ClusterService over gRPC. GetStatus is open and local (no forwarding). Every other method (the
// membership changes, Backup, and any added later) needs the cluster secret as `authorization: Bearer
// <secret>`; the ClusterControl (membership.ts) carries the changes out on the leader or forwards them
// to it, and Backup streams this replica's own copy (backup-source.ts), never forwarded.
//
// The secret is checked from the metadata before the request is decoded (guardService), and on a
// replica's server before it is even read (the gate in grpc-server.ts, with clusterMethodNeedsSecret).
// Malformed bytes get INVALID_ARGUMENT, and GetStatus decodes at most MAX_REQUEST_BYTES.
import * as grpc from '@grpc/grpc-js';
import { ChatError } from '../chat/errors.js';
import { services } from '../proto.js';
import { type GuardedService, guardService } from '../raft/secret-guard.js';
import type { BackupCopy } from './backup-source.js';
import { MAX_REQUEST_BYTES } from './chat-handlers.js';
import { wasForwarded } from './forwarder.js';
import { type Topology, deadlineOf, toStatus, topologyMetadata } from './metadata.js';

const CLUSTER_SERVICE_PREFIX = '/quorumchat.v1.ClusterService/';

/** The ClusterService methods anyone may call; every other one needs the cluster secret. */
export const OPEN_CLUSTER_METHODS: ReadonlySet<string> = new Set(['GetStatus']);

/** Whether the method at `path` is a ClusterService method that needs the cluster secret. */
export function clusterMethodNeedsSecret(path: string): boolean {
  return (
    path.startsWith(CLUSTER_SERVICE_PREFIX) &&
    !OPEN_CLUSTER_METHODS.has(path.slice(CLUSTER_SERVICE_PREFIX.length))
  );
}

export interface ClusterMember {
  id: string;
  address: string;
  voter: boolean;
}

/** cluster.proto's ClusterStatus. */
export interface ClusterStatus {
  node_id: string;
  address: string;
  role: 'leader' | 'follower' | 'candidate' | 'learner';
  term: number;
  leader_id: string;
  leader_address: string;
  commit_index: number;
  last_applied: number;
  last_log_index: number;
  snapshot_index: number;
  members: ClusterMember[];
  state_digest: string;
  /** Health (GetStatus only): p99 of the last 1000 fsyncs, ms. */
  fsync_p99_ms?: number;
  /** Fsyncs slower than --slow-fsync-ms since start. */
  slow_fsyncs?: number;
  /** p99 event-loop delay over the last 10 s, ms. */
  event_loop_lag_p99_ms?: number;
}

/** What the handler knows about a membership call. */
export interface ControlContext {
  /** Absolute deadline, Unix ms. */
  deadline?: number;
  /** Another replica forwarded this call already (it must not be forwarded again). */
  forwarded: boolean;
}

/** The membership operations a replica can carry out (the Raft server provides them). */
export interface ClusterControl {
  status(): ClusterStatus;
  addMember?(id: string, address: string, ctx: ControlContext): Promise<ClusterStatus>;
  removeMember?(id: string, ctx: ControlContext): Promise<ClusterStatus>;
  transferLeadership?(toId: string, ctx: ControlContext): Promise<ClusterStatus>;
}

/** Largest `data` of one BackupChunk. */
export const BACKUP_CHUNK_BYTES = 64 * 1024;
/** Initial metadata of a Backup stream: the copy's total size in bytes (for a progress bar). */
export const BACKUP_BYTES_HEADER = 'x-backup-bytes';

/** ClusterService's definition and implementation, guarded by the cluster secret. */
export function clusterService(opts: {
  control: ClusterControl;
  secret: string;
  topology: Topology;
  /** This replica's health fields of ClusterStatus (fsync p99, slow fsyncs, event-loop lag), for GetStatus. */
  health?: () => Pick<ClusterStatus, 'fsync_p99_ms' | 'slow_fsyncs' | 'event_loop_lag_p99_ms'>;
  /** Makes a copy of the chat state for Backup (backup-source.ts); without it Backup is UNIMPLEMENTED. */
  backup?: () => Promise<BackupCopy>;
}): GuardedService {
  return guardService(services().ClusterService.service, clusterHandlers(opts), {
    secret: opts.secret,
    open: OPEN_CLUSTER_METHODS,
    maxOpenRequestBytes: MAX_REQUEST_BYTES,
    refusalMetadata: () => topologyMetadata(opts.topology),
  });
}

/** The handlers alone; they rely on guardService for the secret and for decoding. */
function clusterHandlers(opts: {
  control: ClusterControl;
  topology: Topology;
  health?: () => Pick<ClusterStatus, 'fsync_p99_ms' | 'slow_fsyncs' | 'event_loop_lag_p99_ms'>;
  backup?: () => Promise<BackupCopy>;
}): grpc.UntypedServiceImplementation {
  const { control, topology, health } = opts;
  const respond = (
    call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<unknown>,
    run: () => Promise<unknown>,
  ) => {
    call.sendMetadata(topologyMetadata(topology));
    let p: Promise<unknown>;
    try {
      p = run();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (value) => callback(null, value, topologyMetadata(topology)),
      (err: unknown) => callback(toStatus(err, topologyMetadata(topology))),
    );
  };
  const guarded =
    (
      name: string,
      op: (req: Record<string, unknown>, ctx: ControlContext) => Promise<ClusterStatus> | undefined,
    ) =>
    (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      respond(call, callback, async () => {
        const req = (call.request ?? {}) as Record<string, unknown>;
        const result = op(req, { deadline: deadlineOf(call), forwarded: wasForwarded(call.metadata) });
        if (!result)
          throw new ChatError(grpc.status.UNIMPLEMENTED, `${name} is not supported by this replica.`);
        return result;
      });
  return {
    GetStatus: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      respond(call, callback, async () => ({ ...control.status(), ...health?.() })),
    AddMember: guarded('AddMember', (req, ctx) =>
      control.addMember?.(String(req.id ?? ''), String(req.address ?? ''), ctx),
    ),
    RemoveMember: guarded('RemoveMember', (req, ctx) => control.removeMember?.(String(req.id ?? ''), ctx)),
    TransferLeadership: guarded('TransferLeadership', (req, ctx) =>
      control.transferLeadership?.(String(req.to_id ?? ''), ctx),
    ),
    Backup: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      void streamBackup(call, opts.backup, topology);
    },
  };
}

/**
 * Backup: make the copy, then stream it in chunks of at most 64 KiB, waiting for the client to drain
 * (a slow client holds one open file, not the copy in memory). Every chunk carries the copy's index
 * and digest; the last one has done = true.
 */
async function streamBackup(
  call: grpc.ServerWritableStream<unknown, unknown>,
  backup: (() => Promise<BackupCopy>) | undefined,
  topology: Topology,
): Promise<void> {
  let cancelled = false;
  call.on('cancelled', () => {
    cancelled = true;
  });
  let copy: BackupCopy | undefined;
  try {
    if (!backup) throw new ChatError(grpc.status.UNIMPLEMENTED, 'This replica cannot make backups.');
    copy = await backup();
    const md = topologyMetadata(topology);
    md.set(BACKUP_BYTES_HEADER, String(copy.size));
    call.sendMetadata(md);
    let offset = 0;
    for (let guard = 0; guard <= copy.size / BACKUP_CHUNK_BYTES + 1 && !cancelled; guard++) {
      const data = await copy.read(offset, BACKUP_CHUNK_BYTES);
      if (data.length === 0 && offset < copy.size) throw new Error('the backup copy ended early');
      const done = offset + data.length >= copy.size;
      const more = call.write({
        data,
        offset,
        done,
        last_applied: copy.lastApplied,
        state_digest: copy.stateDigest,
      });
      offset += data.length;
      if (done) break;
      if (!more) await drained(call, () => cancelled);
    }
    if (!cancelled) call.end(topologyMetadata(topology));
  } catch (err) {
    if (!cancelled) call.emit('error', toStatus(err, topologyMetadata(topology)));
  } finally {
    await copy?.close();
  }
}

/** Resolves when the stream wants more data, or is cancelled. */
function drained(call: grpc.ServerWritableStream<unknown, unknown>, cancelled: () => boolean): Promise<void> {
  if (cancelled()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
  });
}
