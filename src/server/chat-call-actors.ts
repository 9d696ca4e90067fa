// The path actors the chat machine (machines/chat/chat.machine.ts) invokes in its role states, as XState
// callback logic: the I/O of a call lives here, injected into the machine with `.provide({ actors })`.
//   propose   - (leader) a write: the local ChatService prepares it and proposes it through the
//               Replicator (RaftNode.propose: the replica appends it and its replication actor sends
//               it), resolving once it is applied here;
//   readIndex - (leader, follower) a read: the local ChatService waits for ReadIndex, then queries the
//               local tables; it runs with `readOnly`, so the service refuses to propose anything for it;
//   forward   - (follower) a write: the whole call to the leader's ChatService (deadline, token, key).
// A path actor takes each `call` event, starts its work, and the work answers the caller when it
// settles (HostCall.resolve / reject): that promise IS the call's answer, so the router keeps no table
// of calls. Stopping a path actor (a role change) does not cancel the work it started.
import { fromCallback } from 'xstate';
import type { CallEvent, ChatCall } from '../../machines/chat/chat.machine.js';
import type { NodeId } from '../../machines/protocol.js';
import { ChatError, status } from '../chat/errors.js';
import type { ChatMethod, ChatService } from '../chat/service.js';
import type { ChatRequest } from './chat-router.js';
import type { LeaderForwarder } from './forwarder.js';

/** A call the router handed to the chat machine: the request, and how to answer its caller. */
export interface HostCall extends ChatCall {
  readonly req: ChatRequest;
  /** Called by the actor that takes the call; false when it was answered already (its deadline). */
  take(): boolean;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface ChatCallActorsOptions {
  service: Pick<ChatService, 'handle'>;
  forwarder: Pick<LeaderForwarder, 'call'>;
  /** The address of a member of the current configuration (undefined when unknown). */
  addressOf: (id: NodeId) => string | undefined;
  /** Told of every call this replica forwards to the leader (the forwarded-calls metric). */
  onForward?: (method: ChatMethod) => void;
  /** Now, Unix ms (a retry that joined an attempt which ran out of time runs on its own if it has time). */
  now: () => number;
}

/** A path actor: takes each call it receives, runs `work` on it, answers the caller with the outcome. */
function pathActor(work: (call: HostCall, leaderId: NodeId | null) => Promise<unknown>) {
  return fromCallback<CallEvent>(({ receive }) => {
    receive((e) => {
      const call = e.call as HostCall;
      if (!call.take()) return; // answered already: its deadline ran out while it waited for a leader
      let p: Promise<unknown>;
      try {
        p = work(call, e.leaderId);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(call.resolve, call.reject);
    });
  });
}

export function chatCallActors(opts: ChatCallActorsOptions) {
  /** Keyed calls running on the local ChatService, for joining retries (see local()). */
  const inFlight = new Map<string, Promise<unknown>>();

  /**
   * Serve a call with the local ChatService. A retry that arrives while the same call (same method,
   * token, idempotency key and request) is still running here joins it instead of running again: the
   * key promises the same answer anyway, and under overload the retries of a client whose attempt
   * timed out would otherwise redo the slow parts (a Signup's scrypt hash) and deepen the overload.
   */
  const local = (req: ChatRequest, readOnly: boolean): Promise<unknown> => {
    const run = () =>
      opts.service.handle(req.method, req.request, {
        token: req.token,
        idempotencyKey: req.idempotencyKey,
        deadline: req.deadline,
        ...(readOnly ? { readOnly } : {}),
      });
    if (req.idempotencyKey === undefined) return run();
    const key = JSON.stringify([req.method, req.token ?? '', req.idempotencyKey, req.request]);
    const running = inFlight.get(key);
    if (running) {
      // The first attempt ran out of ITS deadline: a retry with time left runs on its own.
      return running.catch((err: unknown) => {
        const expired = err instanceof ChatError && err.code === status.DEADLINE_EXCEEDED;
        if (expired && (req.deadline === undefined || req.deadline > opts.now())) return local(req, readOnly);
        throw err;
      });
    }
    const p = run();
    inFlight.set(key, p);
    const forget = () => {
      if (inFlight.get(key) === p) inFlight.delete(key);
    };
    p.then(forget, forget);
    return p;
  };

  const forward = (call: HostCall, leaderId: NodeId): Promise<unknown> => {
    const { req } = call;
    if (req.forwarded) {
      // It already took one hop: two replicas disagree about the leader; let the client retry.
      throw new ChatError(status.UNAVAILABLE, 'This replica is not the leader any more; retry.');
    }
    const address = opts.addressOf(leaderId);
    if (!address) throw new ChatError(status.UNAVAILABLE, 'The leader has no known address yet; retry.');
    opts.onForward?.(req.method);
    return opts.forwarder.call(address, {
      service: 'chat',
      method: req.method,
      request: req.request,
      authorization: req.token !== undefined ? `Bearer ${req.token}` : undefined,
      idempotencyKey: req.idempotencyKey,
      deadline: req.deadline,
    });
  };

  return {
    propose: pathActor((call) => local(call.req, false)),
    readIndex: pathActor((call) => local(call.req, true)),
    forward: pathActor((call, leaderId) => {
      if (leaderId === null) throw new ChatError(status.UNAVAILABLE, 'No leader is known right now; retry.');
      return forward(call, leaderId);
    }),
  };
}
