// The ChatRouter of a Raft replica, built on the `chat` machine (machines/chat/chat.machine.ts): the
// machine decides by role where each call goes, this host carries it out.
//   leader     -> the local ChatService (its writes go through RaftReplicator, its reads through ReadIndex)
//   follower   -> reads: the local ChatService, through ReadIndex (the replica asks the leader for the read
//                 index and serves once applied through it); writes are forwarded to the leader's
//                 ChatService (deadline, token and key kept)
//   leaderless -> the call waits up to the machine's leaderWait for a leader, then gets UNAVAILABLE
// Subscribe never comes here: every replica streams from its own applied state.
import { type Actor, createActor } from 'xstate';
import { type ChatEffect, chatMachine } from '../../machines/chat/chat.machine.js';
import type { NodeId } from '../../machines/protocol.js';
import { ChatError, status } from '../chat/errors.js';
import type { ChatMethod, ChatService } from '../chat/service.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../raft/interfaces.js';
import type { RoleChange } from '../raft/node.js';
import type { ChatRequest, ChatRouter } from './chat-router.js';
import type { LeaderForwarder } from './forwarder.js';

/**
 * Methods that never propose: reads served through ReadIndex, and SetTyping, which only checks the
 * caller against state behind the same read barrier before its ephemeral fan-out. Everything else
 * proposes at least one log entry.
 */
export const READS: ReadonlySet<ChatMethod> = new Set([
  'ListUsers',
  'GetSettings',
  'ListChats',
  'GetMessages',
  'SetTyping',
]);

export interface RaftChatRouterOptions {
  id: NodeId;
  service: Pick<ChatService, 'handle'>;
  forwarder: Pick<LeaderForwarder, 'call'>;
  /** The address of a member of the current configuration (undefined when unknown). */
  addressOf: (id: NodeId) => string | undefined;
  /** How long a call may wait for a leader to become known (the machine's leaderWait). */
  leaderWaitMs: number;
  /** Subscribes to the replica's role changes (RaftNode.onRoleChange); subscribe before node.start(). */
  onRoleChange: (cb: (r: RoleChange) => void) => () => void;
  /** Told of every call this replica forwards to the leader (the forwarded-calls metric). */
  onForward?: (method: ChatMethod) => void;
  logger?: Logger;
  /** Time for the caller deadlines and the machine's leader wait (default: the wall clock; tests inject one). */
  clock?: Clock;
}

const WALL_CLOCK: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
  now: () => Date.now(),
};

interface Pending {
  req: ChatRequest;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer?: unknown;
}

const DEADLINE = 'The deadline ran out before a leader could serve the request.';

export class RaftChatRouter implements ChatRouter {
  private readonly actor: Actor<typeof chatMachine>;
  private readonly pending = new Map<string, Pending>();
  /** Keyed calls running on the local ChatService, for joining retries (see local()). */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly unsubscribe: () => void;
  private seq = 0;
  private stopped = false;
  private readonly clock: Clock;

  constructor(private readonly opts: RaftChatRouterOptions) {
    this.clock = opts.clock ?? WALL_CLOCK;
    this.actor = createActor(chatMachine, {
      input: { id: opts.id, leaderWaitMs: opts.leaderWaitMs },
      clock: this.clock,
    });
    this.actor.subscribe({
      error: (err) => {
        // The routing actor is gone: nothing can be routed any more, so refuse what waits and what comes.
        opts.logger?.error({ err }, 'chat routing actor failed');
        this.stopped = true;
        this.failAll(new ChatError(status.UNAVAILABLE, 'This replica cannot route calls; retry elsewhere.'));
      },
    });
    this.actor.on('*', (e) => this.effect(e as ChatEffect));
    this.actor.start();
    this.unsubscribe = opts.onRoleChange((r) => {
      if (!this.stopped) this.actor.send({ type: 'roleChanged', ...r });
    });
  }

  handle(req: ChatRequest): Promise<unknown> {
    if (this.stopped) {
      return Promise.reject(new ChatError(status.UNAVAILABLE, 'This replica is shutting down; retry.'));
    }
    return new Promise((resolve, reject) => {
      const requestId = String(++this.seq);
      const p: Pending = { req, resolve, reject };
      if (req.deadline !== undefined) {
        // Only while the call waits to be routed; once routed, the service or the forward keeps it.
        const left = Math.max(0, req.deadline - this.clock.now());
        p.timer = this.clock.setTimeout(
          () => this.settle(requestId)?.reject(new ChatError(status.DEADLINE_EXCEEDED, DEADLINE)),
          left,
        );
      }
      this.pending.set(requestId, p);
      this.actor.send({
        type: 'request',
        request: { requestId, kind: READS.has(req.method) ? 'read' : 'write' },
      });
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe();
    this.actor.stop();
    this.failAll(new ChatError(status.UNAVAILABLE, 'This replica is shutting down; retry.'));
  }

  private effect(e: ChatEffect): void {
    const p = this.settle(e.requestId);
    if (!p) return; // timed out while it waited
    const { req } = p;
    switch (e.type) {
      case 'propose':
      case 'readIndex':
        this.local(req).then(p.resolve, p.reject);
        return;
      case 'forward': {
        if (req.forwarded) {
          // It already took one hop: two replicas disagree about the leader; let the client retry.
          p.reject(new ChatError(status.UNAVAILABLE, 'This replica is not the leader any more; retry.'));
          return;
        }
        const address = this.opts.addressOf(e.leaderId);
        if (!address) {
          p.reject(new ChatError(status.UNAVAILABLE, 'The leader has no known address yet; retry.'));
          return;
        }
        this.opts.onForward?.(req.method);
        this.opts.forwarder
          .call(address, {
            service: 'chat',
            method: req.method,
            request: req.request,
            authorization: req.token !== undefined ? `Bearer ${req.token}` : undefined,
            idempotencyKey: req.idempotencyKey,
            deadline: req.deadline,
          })
          .then(p.resolve, p.reject);
        return;
      }
      case 'unavailable':
        p.reject(new ChatError(status.UNAVAILABLE, 'No leader is known right now; retry.'));
        return;
    }
  }

  /**
   * Serve a call with the local ChatService. A retry that arrives while the same call (same method,
   * token, idempotency key and request) is still running here joins it instead of running again: the
   * key promises the same answer anyway, and under overload the retries of a client whose attempt
   * timed out would otherwise redo the slow parts (a Signup's scrypt hash) and deepen the overload.
   */
  private local(req: ChatRequest): Promise<unknown> {
    const run = () =>
      this.opts.service.handle(req.method, req.request, {
        token: req.token,
        idempotencyKey: req.idempotencyKey,
        deadline: req.deadline,
      });
    if (req.idempotencyKey === undefined) return run();
    const key = JSON.stringify([req.method, req.token ?? '', req.idempotencyKey, req.request]);
    const running = this.inFlight.get(key);
    if (running) {
      // The first attempt ran out of ITS deadline: a retry with time left runs on its own.
      return running.catch((err: unknown) => {
        const expired = err instanceof ChatError && err.code === status.DEADLINE_EXCEEDED;
        if (expired && (req.deadline === undefined || req.deadline > this.clock.now()))
          return this.local(req);
        throw err;
      });
    }
    const p = run();
    this.inFlight.set(key, p);
    const forget = () => {
      if (this.inFlight.get(key) === p) this.inFlight.delete(key);
    };
    p.then(forget, forget);
    return p;
  }

  /** Take a pending call out of the table (once: a late effect or timer finds nothing). */
  private settle(requestId: string): Pending | undefined {
    const p = this.pending.get(requestId);
    if (!p) return undefined;
    this.pending.delete(requestId);
    if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
    return p;
  }

  private failAll(err: ChatError): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }
}
