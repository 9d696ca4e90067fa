// A single-node chat stack in memory for tests: store, hub, LocalReplicator and ChatService with a
// settable clock and a cheap scrypt cost.
import { ChatError } from '../../src/chat/errors.js';
import { EventHub } from '../../src/chat/events.js';
import { type CallContext, ChatService, type ChatServiceOptions } from '../../src/chat/service.js';
import { ChatStore } from '../../src/chat/store.js';
import type { ChatEvent } from '../../src/chat/types.js';
import { LocalReplicator } from '../support/local-replicator.js';

export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

export function makeStack(path = ':memory:', opts: ChatServiceOptions = {}) {
  const clock = { now: 1_700_000_000_000 };
  const store = new ChatStore(path, { durable: path !== ':memory:' });
  const hub = new EventHub(store);
  const replicator = new LocalReplicator(store);
  const service = new ChatService(store, replicator, hub, {
    now: () => clock.now,
    scryptCost: FAST_SCRYPT,
    ...opts,
  });
  return { clock, store, hub, replicator, service };
}

export type Stack = ReturnType<typeof makeStack>;

/** Signs up and logs in; returns the call context carrying the token. */
export async function userCtx(s: Stack, username: string, nickname = username): Promise<CallContext> {
  await s.service.signup({ username, nickname, password: 'password123' }, {});
  const { token } = await s.service.login({ username, password: 'password123' }, {});
  return { token };
}

/** The ChatError a promise rejects with (fails the test if it resolves or throws something else). */
export async function errorOf(p: Promise<unknown>): Promise<ChatError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ChatError) return err;
    throw err;
  }
  throw new Error('expected a ChatError, but the call succeeded');
}

/** Collects the events a subscriber receives (once the subscription is open). */
export async function collect(s: Stack, ctx: CallContext, afterIndex = 0) {
  const events: ChatEvent[] = [];
  let revoked = false;
  const stop = await s.service.subscribe({ after_index: afterIndex }, ctx, {
    event: (e) => events.push(e),
    revoked: () => {
      revoked = true;
    },
  });
  return {
    events,
    stop,
    get revoked() {
      return revoked;
    },
  };
}
