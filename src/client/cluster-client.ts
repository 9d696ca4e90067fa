// ClusterClient: the operators' side of ClusterService (status table, member add/remove, transfer).
// GetStatus is open and answered locally by the replica asked; the membership changes carry the cluster
// secret as `authorization: Bearer <secret>` and are sent to the leader when one is known.
import * as grpc from '@grpc/grpc-js';
import { type BackoffOptions, backoffDelay } from './backoff.js';
import { unaryAttempt } from './call.js';
import { ChatClientError, isRetryable } from './errors.js';
import { Members } from './members.js';
import type { ClusterStatus } from './types.js';

export interface ClusterClientOptions {
  /** How replicas are dialled: plaintext by default, TLS with a CA (tls/credentials.ts). */
  credentials?: grpc.ChannelCredentials;
  /** The cluster secret (contents of cluster.secret), needed for membership changes. */
  secret?: string;
  /** Budget of one membership change, retries included (ms). AddMember waits for the learner to catch
   * up, so this is generous. Default 60000. */
  deadlineMs?: number;
  /** Timeout of one GetStatus (ms). Default 3000. */
  statusTimeoutMs?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class ClusterClient {
  readonly members: Members;
  private readonly opts: ClusterClientOptions;
  private readonly now: () => number;

  constructor(addresses: string[], opts: ClusterClientOptions = {}) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.members = new Members(addresses, { now: this.now, credentials: opts.credentials });
  }

  /** GetStatus on one replica (default: the first address), with no retry: a status table must show a
   * dead replica as dead, not quietly ask another one. */
  getStatus(address?: string): Promise<ClusterStatus> {
    const a = address ?? this.members.addresses[0];
    return unaryAttempt<ClusterStatus>(
      this.members,
      a,
      this.members.clusterStub(a),
      'GetStatus',
      {},
      new grpc.Metadata(),
      this.opts.statusTimeoutMs ?? 3000,
    );
  }

  addMember(id: string, address: string): Promise<ClusterStatus> {
    return this.change('AddMember', { id, address });
  }

  removeMember(id: string): Promise<ClusterStatus> {
    return this.change('RemoveMember', { id });
  }

  /** An empty `toId` lets the leader pick the most up-to-date voter. */
  transferLeadership(toId = ''): Promise<ClusterStatus> {
    return this.change('TransferLeadership', { to_id: toId });
  }

  close(): void {
    this.members.close();
  }

  private async change(method: string, request: object): Promise<ClusterStatus> {
    const deadlineAt = this.now() + (this.opts.deadlineMs ?? 60_000);
    const md = new grpc.Metadata();
    if (this.opts.secret) md.set('authorization', `Bearer ${this.opts.secret}`);
    const random = this.opts.random ?? Math.random;
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let lastError: ChatClientError | undefined;
    for (let attempt = 1; attempt <= 100; attempt++) {
      if (deadlineAt - this.now() <= 0) break;
      let target = this.members.pick();
      try {
        target = await this.leaderOf(target);
        const left = deadlineAt - this.now();
        if (left <= 0) break;
        return await unaryAttempt<ClusterStatus>(
          this.members,
          target,
          this.members.clusterStub(target),
          method,
          request,
          md,
          left,
        );
      } catch (err) {
        if (!(err instanceof ChatClientError) || !isRetryable(err)) throw err;
        lastError = err;
        this.members.markFailed(target);
        const left = deadlineAt - this.now();
        if (left <= 0) break;
        await sleep(Math.min(left, backoffDelay(attempt, random, { maxMs: 2000, ...this.opts.backoff })));
      }
    }
    throw (
      lastError ??
      new ChatClientError(grpc.status.DEADLINE_EXCEEDED, 'The deadline ran out before any attempt.')
    );
  }

  /** The leader's address as `address` sees it (or `address` itself when it knows none). */
  private async leaderOf(address: string): Promise<string> {
    if (this.members.leader) return this.members.leader;
    const st = await this.getStatus(address);
    if (st.members.length > 0)
      this.members.absorbList(st.members.filter((m) => m.voter).map((m) => m.address));
    return st.role === 'leader' ? address : st.leader_address || address;
  }
}
