// Joining a running cluster through --peers (API.md §1): find a peer that answers, then ask the cluster
// (its leader, found by ClusterClient) to AddMember us with the cluster secret. The leader adds us as a
// learner, waits until we have caught up, and promotes us; our RaftNode meanwhile just follows whoever
// replicates to it. Transient refusals (no leader yet, another change in progress) are retried with
// back-off up to a bound; a peer list nobody answers on, a wrong secret or a clash are one-line errors.
import * as grpc from '@grpc/grpc-js';
import { backoffDelay } from '../client/backoff.js';
import { ClusterClient } from '../client/cluster-client.js';
import { ChatClientError } from '../client/errors.js';
import type { ClusterStatus } from '../client/types.js';
import type { Logger } from '../logger.js';
import { UserError } from '../user-error.js';

export interface JoinOptions {
  id: string;
  /** Our own advertised address. */
  address: string;
  peers: string[];
  secret: string;
  /** How peers are dialled (plaintext by default; the replica's mutual TLS). */
  credentials?: grpc.ChannelCredentials;
  logger?: Logger;
  /** How long to look for any peer that answers (ms). Default 30 s. */
  reachMs?: number;
  /** How long the whole join may take, catch-up included (ms). Default 5 min. */
  totalMs?: number;
  /** Stop trying (the server is shutting down). */
  cancelled?: () => boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function joinCluster(opts: JoinOptions): Promise<ClusterStatus> {
  const peers = opts.peers.filter((p) => p !== opts.address);
  if (peers.length === 0) throw new UserError('--peers lists only this server itself; name a running member');
  const start = Date.now();
  const reachBy = start + (opts.reachMs ?? 30_000);
  const doneBy = start + (opts.totalMs ?? 300_000);
  const { credentials } = opts;
  const client = new ClusterClient(peers, { secret: opts.secret, statusTimeoutMs: 1000, credentials });
  // The last reason a peer did not answer: with TLS, a certificate the peer does not accept (or one
  // we do not) shows here, and goes into the log and the final error.
  let lastFailure = '';
  try {
    // 1. Someone must answer at all; otherwise the peer list is wrong or the cluster is down.
    let reached: string | undefined;
    for (let attempt = 1; attempt <= 10_000 && !reached; attempt++) {
      if (opts.cancelled?.()) throw new UserError('the join was cancelled');
      for (const p of peers) {
        try {
          await client.getStatus(p);
          reached = p;
          break;
        } catch (err) {
          // try the next one
          const why = (err as Error).message;
          if (why !== lastFailure)
            opts.logger?.warn({ peer: p, reason: why }, `peer ${p} did not answer: ${why}`);
          lastFailure = why;
        }
      }
      if (reached) break;
      if (Date.now() >= reachBy) {
        throw new UserError(
          `cannot join: none of the peers ${peers.join(',')} answered within ${Math.round((reachBy - start) / 1000)} s${lastFailure ? ` (last: ${lastFailure})` : ''}`,
        );
      }
      await sleep(
        Math.min(backoffDelay(attempt, Math.random, { maxMs: 1000 }), Math.max(0, reachBy - Date.now())),
      );
    }
    opts.logger?.info({ peer: reached }, 'joining the cluster');

    // 2. AddMember through the leader, retried while the cluster is busy or between leaders.
    for (let attempt = 1; attempt <= 10_000; attempt++) {
      if (opts.cancelled?.()) throw new UserError('the join was cancelled');
      const left = doneBy - Date.now();
      if (left <= 0) break;
      const c = new ClusterClient(peers, {
        secret: opts.secret,
        deadlineMs: left,
        statusTimeoutMs: 1000,
        credentials,
      });
      try {
        const st = await c.addMember(opts.id, opts.address);
        opts.logger?.info({ leader: st.leader_id, term: st.term }, 'joined the cluster as a voter');
        return st;
      } catch (err) {
        if (!(err instanceof ChatClientError)) throw err;
        switch (err.code) {
          case grpc.status.UNAUTHENTICATED:
            throw new UserError(`cannot join: the cluster refused our cluster secret (${err.message})`);
          case grpc.status.INVALID_ARGUMENT:
          case grpc.status.NOT_FOUND:
          case grpc.status.PERMISSION_DENIED:
            throw new UserError(`cannot join: ${err.message}`);
          case grpc.status.FAILED_PRECONDITION:
            if (/already exists|already belongs/.test(err.message))
              throw new UserError(`cannot join: ${err.message}`);
            break;
        }
        opts.logger?.info({ code: err.codeName, reason: err.message }, 'join not done yet; retrying');
      } finally {
        c.close();
      }
      await sleep(
        Math.min(backoffDelay(attempt, Math.random, { maxMs: 2000 }), Math.max(0, doneBy - Date.now())),
      );
    }
    throw new UserError(
      `cannot join: the cluster did not add this server within ${Math.round((doneBy - start) / 1000)} s`,
    );
  } finally {
    client.close();
  }
}
