// The ChatRouter of a Raft replica: it hands each call to the chat actor (machines/chat/chat.machine.ts),
// which runs in the replica's own actor system (systemId `chat`, beside the replica and its replication
// actor) and routes by role to the path actors its role states invoke (chat-call-actors.ts):
//   leader     -> writes: `propose` (the local ChatService prepares, RaftNode.propose appends, the
//                 replication actor replicates, apply answers); reads: `readIndex` (never proposes)
//   follower   -> reads: `readIndex` here (the replica asks the leader for the read index and serves once
//                 applied through it); writes: `forward` to the leader's ChatService (deadline, token and
//                 key kept)
//   leaderless -> the call waits up to the machine's leaderWait for a leader, then gets UNAVAILABLE
// The work a path actor starts for a call answers it when it settles: no table of calls here. The
// chat actor learns roles from the replica actor's own `roleChanged` emissions (the `roles` actor).
// Subscribe never comes here: every replica streams from its own applied state.
import { type Actor, type AnyActorRef, type AnyEventObject, createActor, fromCallback } from 'xstate';
import {
  type ChatEffect,
  type RoleChangedEvent,
  type UnavailableReason,
  chatMachine,
} from '../../machines/chat/chat.machine.js';
import type { NodeId } from '../../machines/protocol.js';
import { ChatError, status } from '../chat/errors.js';
import type { ChatMethod, ChatService } from '../chat/service.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../raft/interfaces.js';
import type { RoleChange } from '../raft/node.js';
import { type HostCall, chatCallActors } from './chat-call-actors.js';
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

/** The systemId of the chat actor in the replica's actor system. */
export const CHAT_SYSTEM_ID = 'chat';

/** What the router needs of the replica (RaftNode, once started): its actor, and its current role. */
export interface ReplicaLink {
  /** The replica actor: the chat actor joins its actor system and hears its `roleChanged`. */
  actor: AnyActorRef;
  /** The role now (RaftNode.status()): the chat actor starts from it. */
  status(): RoleChange;
}

export interface RaftChatRouterOptions {
  id: NodeId;
  service: Pick<ChatService, 'handle'>;
  forwarder: Pick<LeaderForwarder, 'call'>;
  /** The address of a member of the current configuration (undefined when unknown). */
  addressOf: (id: NodeId) => string | undefined;
  /** How long a call may wait for a leader to become known (the machine's leaderWait). */
  leaderWaitMs: number;
  /** Told of every call this replica forwards to the leader (the forwarded-calls metric). */
  onForward?: (method: ChatMethod) => void;
  logger?: Logger;
  /**
   * Time for the caller deadlines (default: the wall clock; tests inject one). The machine's
   * leaderWait runs on the replica actor system's clock (RaftNode's).
   */
  clock?: Clock;
}

const WALL_CLOCK: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
  now: () => Date.now(),
};

const DEADLINE = 'The deadline ran out before a leader could serve the request.';
const SHUTTING_DOWN = 'This replica is shutting down; retry.';
const REFUSED: Record<UnavailableReason, string> = {
  noLeader: 'No leader is known right now; retry.',
  stopped: SHUTTING_DOWN,
};

/** One call on its way: its caller's promise, and the deadline that holds only until it is routed. */
class RoutedCall implements HostCall {
  private settled = false;
  private timer: unknown = undefined;

  constructor(
    readonly kind: 'write' | 'read',
    readonly req: ChatRequest,
    private readonly clock: Clock,
    private readonly onResolve: (v: unknown) => void,
    private readonly onReject: (e: unknown) => void,
  ) {
    if (req.deadline !== undefined) {
      // Only while the call waits to be routed; once routed, the service or the forward keeps it.
      const left = Math.max(0, req.deadline - clock.now());
      this.timer = clock.setTimeout(
        () => this.reject(new ChatError(status.DEADLINE_EXCEEDED, DEADLINE)),
        left,
      );
    }
  }

  take(): boolean {
    this.clearTimer();
    return !this.settled;
  }

  readonly resolve = (v: unknown): void => {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.onResolve(v);
  };

  readonly reject = (e: unknown): void => {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.onReject(e);
  };

  private clearTimer(): void {
    if (this.timer === undefined) return;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export class RaftChatRouter implements ChatRouter {
  private chat: Actor<typeof chatMachine> | null = null;
  private stopped = false;
  private readonly clock: Clock;
  /** Calls made before the replica started wait for attach() (or stop()). */
  private readonly attached: Promise<void>;
  private markAttached: () => void = () => {};

  constructor(private readonly opts: RaftChatRouterOptions) {
    this.clock = opts.clock ?? WALL_CLOCK;
    this.attached = new Promise((resolve) => {
      this.markAttached = resolve;
    });
  }

  /**
   * Start the chat actor in the replica's actor system (call once, right after RaftNode.start()): it
   * is registered there as `chat`, runs on the system's clock, and follows the replica's roles.
   */
  attach(replica: ReplicaLink): void {
    if (this.chat || this.stopped) return;
    const { opts } = this;
    const logic = chatMachine.provide({
      actors: {
        ...chatCallActors({
          service: opts.service,
          forwarder: opts.forwarder,
          addressOf: opts.addressOf,
          onForward: opts.onForward,
          now: () => this.clock.now(),
        }),
        roles: fromCallback<AnyEventObject>(({ sendBack }) => {
          sendBack({ type: 'roleChanged', ...pickRole(replica.status()) });
          const sub = replica.actor.on('roleChanged', (e: RoleChangedEvent) =>
            sendBack({ type: 'roleChanged', ...pickRole(e) }),
          );
          return () => sub.unsubscribe();
        }),
      },
    });
    const chat = createActor(logic, {
      parent: replica.actor,
      id: CHAT_SYSTEM_ID,
      systemId: CHAT_SYSTEM_ID,
      input: { id: opts.id, leaderWaitMs: opts.leaderWaitMs },
    });
    chat.subscribe({
      error: (err) => {
        // The routing actor is gone: nothing can be routed any more, so refuse what waits and what comes.
        opts.logger?.error({ err }, 'chat routing actor failed');
        this.stopped = true;
        const refused = new ChatError(
          status.UNAVAILABLE,
          'This replica cannot route calls; retry elsewhere.',
        );
        for (const b of chat.getSnapshot().context.buffered) (b.call as HostCall).reject(refused);
      },
    });
    chat.on('unavailable', (e: ChatEffect) =>
      (e.call as HostCall).reject(new ChatError(status.UNAVAILABLE, REFUSED[e.reason])),
    );
    this.chat = chat;
    chat.start();
    this.markAttached();
  }

  handle(req: ChatRequest): Promise<unknown> {
    if (this.stopped) return Promise.reject(new ChatError(status.UNAVAILABLE, SHUTTING_DOWN));
    const chat = this.chat;
    if (!chat) return this.attached.then(() => this.handle(req));
    return new Promise((resolve, reject) => {
      const kind = READS.has(req.method) ? 'read' : 'write';
      chat.send({ type: 'request', call: new RoutedCall(kind, req, this.clock, resolve, reject) });
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    // The machine refuses what it buffered and completes (its timer, path actors and role feed end).
    // Calls a path actor already took get their own outcome.
    this.chat?.send({ type: 'stop' });
    this.markAttached();
  }
}

function pickRole(r: RoleChange): RoleChange {
  return { role: r.role, term: r.term, leaderId: r.leaderId };
}
