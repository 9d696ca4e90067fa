// ClusterService over gRPC. GetStatus is open and local (no forwarding). Membership changes need the
// cluster secret as `authorization: Bearer <secret>`; the ClusterControl (membership.ts) carries them
// out on the leader or forwards them to it.
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ChatError } from '../chat/errors.js';
import { secretRefusalMessage } from '../raft/cluster-secret.js';
import { wasForwarded } from './forwarder.js';
import { type Topology, bearerToken, deadlineOf, toStatus, topologyMetadata } from './metadata.js';

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

function secretMatches(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function clusterHandlers(opts: {
  control: ClusterControl;
  secret: string;
  topology: Topology;
  /** This replica's health fields of ClusterStatus (fsync p99, slow fsyncs, event-loop lag), for GetStatus. */
  health?: () => Pick<ClusterStatus, 'fsync_p99_ms' | 'slow_fsyncs' | 'event_loop_lag_p99_ms'>;
}): grpc.UntypedServiceImplementation {
  const { control, secret, topology, health } = opts;
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
        const given = bearerToken(call.metadata);
        if (!secretMatches(given, secret)) {
          const why = given === undefined || given === '' ? 'missing' : 'wrong';
          throw new ChatError(grpc.status.UNAUTHENTICATED, secretRefusalMessage(why, name));
        }
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
  };
}
