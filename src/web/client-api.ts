// The ChatApi the server gives its HTTP gateway: the ChatClient library, so browser calls get the same
// leader forwarding, retries, idempotency and failover as every other client.
//
// A ChatClient keeps one token, and the gateway serves many users, so each browser session gets its
// own ChatClient (cached by token, bounded). That is cheap: grpc-js shares the TCP connections of
// channels with the same target and options. The root client handles Signup and Login and holds the
// member list all session clients learn into, which is what the page's failover list comes from.
import { ChatClient, type ChatClientOptions } from '../client/client.js';
import type { CallMeta, ChatApi, Subscription } from './chat-api.js';

export interface ClientApiOptions {
  /** Options for the per-session clients (deadlines, backoff). Default deadline 10 s. */
  clientOptions?: ChatClientOptions;
  /** How many session clients to keep; the least recently used is closed beyond it. Default 500. */
  maxSessions?: number;
}

export interface ClientApi extends ChatApi {
  close(): void;
}

export function chatApiFromClient(root: ChatClient, opts: ClientApiOptions = {}): ClientApi {
  const maxSessions = opts.maxSessions ?? 500;
  // Map iteration order is insertion order: re-inserting on use makes the first key the LRU one.
  const sessions = new Map<string, ChatClient>();

  // A browser waits longer than a terminal user would for an answer during an election or under load;
  // the page retries on top of this with the same idempotency key.
  const clientOptions: ChatClientOptions = { deadlineMs: 10_000, ...opts.clientOptions };
  const newClient = (token: string) =>
    new ChatClient([...root.members.addresses], { ...clientOptions, token });

  const session = (meta: CallMeta): ChatClient => {
    const token = meta.token ?? '';
    let client = sessions.get(token);
    if (client) sessions.delete(token);
    else client = newClient(token);
    sessions.set(token, client);
    while (sessions.size > maxSessions) {
      const [oldest, c] = sessions.entries().next().value as [string, ChatClient];
      sessions.delete(oldest);
      c.close();
    }
    return client;
  };

  const forget = (token: string | undefined) => {
    const c = token === undefined ? undefined : sessions.get(token);
    if (c && token !== undefined) {
      sessions.delete(token);
      c.close();
    }
  };

  /** Runs a call on the session's client and shares what it learned about the members. */
  const run = async <T>(meta: CallMeta, fn: (c: ChatClient) => Promise<T>): Promise<T> => {
    const c = session(meta);
    try {
      return await fn(c);
    } finally {
      root.members.absorbList([...c.members.addresses]);
    }
  };

  const call = (meta: CallMeta) =>
    meta.idempotencyKey ? { idempotencyKey: meta.idempotencyKey } : undefined;

  return {
    signup: async (req, meta) => ({
      user: await root.signup(req.username, req.nickname, req.password, call(meta)),
    }),
    login: async (req, meta) => {
      const r = await root.login(req.username, req.password, call(meta));
      // The root client never sends a token; keep it from holding a user's.
      root.token = undefined;
      return r;
    },
    logout: async (_req, meta) => {
      await run(meta, (c) => c.logout(call(meta)));
      forget(meta.token);
      return {};
    },
    deleteAccount: async (req, meta) => {
      await run(meta, (c) => c.deleteAccount(req.password, call(meta)));
      forget(meta.token);
      return {};
    },
    listUsers: (req, meta) =>
      run(meta, (c) => c.listUsers({ pattern: req.pattern, page: req.page, pageSize: req.page_size })),
    getSettings: (_req, meta) => run(meta, (c) => c.getSettings()),
    updateSettings: (req, meta) => run(meta, (c) => c.updateSettings(req.view_limit, call(meta))),
    startChat: (req, meta) => run(meta, (c) => c.startChat(req.username, call(meta))),
    listChats: async (_req, meta) => ({ chats: await run(meta, (c) => c.listChats()) }),
    sendMessage: (req, meta) => run(meta, (c) => c.sendMessage(req.chat_id, req.content, call(meta))),
    getMessages: (req, meta) =>
      run(meta, (c) => c.getMessages(req.chat_id, { beforeId: req.before_id, limit: req.limit })),
    readMessages: (req, meta) => run(meta, (c) => c.readMessages(req.chat_id, call(meta))),
    markRead: async (req, meta) => ({
      unread_remaining: await run(meta, (c) => c.markRead(req.chat_id, req.up_to_id, call(meta))),
    }),
    editMessage: (req, meta) =>
      run(meta, (c) => c.editMessage(req.chat_id, req.message_id, req.content, call(meta))),
    setTyping: async (req, meta) => {
      await run(meta, (c) => c.setTyping(req.chat_id, req.typing));
      return {};
    },
    deleteMessages: async (req, meta) => ({
      deleted_count: await run(meta, (c) => c.deleteMessages(req.chat_id, req.message_ids, call(meta))),
    }),
    subscribe: (req, meta, sink): Subscription => {
      // A stream of its own: closing it must not touch the session's unary client, nor eviction the stream.
      const client = newClient(meta.token ?? '');
      const sub = client.subscribe(
        {
          onEvent: (e) => sink.onEvent(e),
          onError: (err) => {
            client.close();
            sink.onError(err);
          },
        },
        { afterIndex: req.after_index },
      );
      return {
        ready: sub.ready,
        get lastIndex() {
          return sub.lastIndex;
        },
        close: () => {
          sub.close();
          client.close();
        },
      };
    },
    members: () => [...root.members.addresses],
    close: () => {
      for (const c of sessions.values()) c.close();
      sessions.clear();
    },
  };
}
