// ChatService: one method per RPC of API.md. Each write is "prepared" here, on the leader (validate,
// read the clock into `at`, hash passwords, mint tokens), then proposed through the Replicator; the
// apply result comes back as data and is turned into a response or a ChatError. Reads run through
// Replicator.read. The service knows nothing of gRPC metadata or of Raft: callers hand it a decoded
// request and a CallContext.
//
// Sessions (docs/design/sessions.md): an authenticated write is proposed only once its token is found in
// a live session (here first, then after a read barrier), so no stranger's call reaches the log; the
// Login entry carries the token's hash, and the token goes back to the caller from memory.
import type { Command, CommandResult } from './commands.js';
import { BAD_CREDENTIALS, BAD_TOKEN, ChatError, invalid, status, unauthenticated } from './errors.js';
import type { EventHub, EventSink } from './events.js';
import { HashQueue } from './hash-queue.js';
import {
  DEFAULT_COST,
  type Derive,
  type ScryptCost,
  dummyHash,
  hashPassword,
  scryptOnPool,
  verifyPassword,
} from './password.js';
import type { Replicator } from './replicator.js';
import type { ChatStore, SessionInfo } from './store.js';
import { DEFAULT_SESSION_TTL_MS, MAX_TOKEN_LENGTH, isTokenHash, newToken, tokenHash } from './tokens.js';
import type { Chat, Message, User } from './types.js';
import type { TypingFanout } from './typing.js';
import {
  checkBeforeId,
  checkChatId,
  checkContent,
  checkHistoryLimit,
  checkIdempotencyKey,
  checkMessageId,
  checkMessageIds,
  checkNickname,
  checkPage,
  checkPageSize,
  checkPassword,
  checkPattern,
  checkTyping,
  checkUpToId,
  checkUsername,
  checkUsernameRef,
  checkViewLimit,
} from './validate.js';

/** A session only read with is refreshed (a `touch` entry) once its last refresh is this old... */
const TOUCH_AFTER_MS = 24 * 60 * 60 * 1000;
/** ...or a quarter of its TTL, when that is shorter. */
const TOUCH_TTL_FRACTION = 4;
/** How long Subscribe waits for this replica to apply a session the leader has confirmed. */
const SESSION_CATCH_UP_MS = 10_000;

/** What the transport knows about a call: the bearer token, the idempotency key and the deadline. */
export interface CallContext {
  token?: string;
  idempotencyKey?: string;
  /** Absolute deadline, Unix ms. */
  deadline?: number;
  /**
   * The call was routed as a read (the chat actor's `readIndex` path): it must not propose a command.
   * A write method arriving here is a routing bug, refused before anything reaches the log.
   */
  readOnly?: boolean;
}

export const CHAT_METHODS = [
  'Signup',
  'Login',
  'Logout',
  'DeleteAccount',
  'ListUsers',
  'GetSettings',
  'UpdateSettings',
  'StartChat',
  'ListChats',
  'SendMessage',
  'GetMessages',
  'ReadMessages',
  'MarkRead',
  'EditMessage',
  'SetTyping',
  'DeleteMessages',
] as const;

/** The unary RPCs of ChatService (Subscribe is a stream and is served locally, see subscribe()). */
export type ChatMethod = (typeof CHAT_METHODS)[number];

type Req = Record<string, unknown>;

export interface ChatServiceOptions {
  now?: () => number;
  /** scrypt cost for new password hashes (tests lower it). */
  scryptCost?: ScryptCost;
  newToken?: () => string;
  /** Where SetTyping goes (delivery here and relay to the other replicas); none: typing is dropped. */
  typing?: TypingFanout;
  /** The TTL of new sessions (--session-ttl); default 30 days. */
  sessionTtlMs?: number;
  /**
   * The barrier Subscribe takes for a token this replica does not know (yet): resolves once the
   * cluster's leader has confirmed the token as live in a linearizable read, rejects (UNAUTHENTICATED)
   * when it is not. Default: this replica's own Replicator.read (right for a single member, and for a
   * leader). A Raft replica forwards a read to the leader (replica.ts).
   */
  confirmSession?: (token: string, deadline?: number) => Promise<unknown>;
  /**
   * Hands a session refresh this replica could not propose (it does not lead) to the leader, which
   * calls touchRelayed. A Raft replica relays it over the peer transport (replica.ts).
   */
  relayTouch?: (actor: string) => void;
  /** Bounds the hashes and checks that run at once and wait (default: a HashQueue of its own). */
  hashQueue?: HashQueue;
  /** Where scrypt runs (a server: low-priority worker threads, scrypt-workers.ts; default: libuv's pool). */
  derive?: Derive;
}

export class ChatService {
  private readonly now: () => number;
  private readonly cost: ScryptCost;
  private readonly mintToken: () => string;
  private readonly typing: TypingFanout | undefined;
  private readonly sessionTtlMs: number;
  private readonly confirmSession: ((token: string, deadline?: number) => Promise<unknown>) | undefined;
  /** Token hashes with a `touch` in flight (one at a time per session). */
  private readonly touching = new Set<string>();
  private readonly relayTouch: ((actor: string) => void) | undefined;
  private readonly hashes: HashQueue;
  private readonly derive: Derive;
  /** Checked when Login names no account: same cost as a real hash, so the answer takes as long. */
  private readonly dummy: string;

  constructor(
    private readonly store: ChatStore,
    private readonly replicator: Replicator,
    private readonly hub: EventHub,
    opts: ChatServiceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.cost = opts.scryptCost ?? DEFAULT_COST;
    this.mintToken = opts.newToken ?? newToken;
    this.typing = opts.typing;
    this.sessionTtlMs = opts.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    this.confirmSession = opts.confirmSession;
    this.relayTouch = opts.relayTouch;
    this.hashes = opts.hashQueue ?? new HashQueue();
    this.derive = opts.derive ?? scryptOnPool;
    this.dummy = dummyHash(this.cost);
  }

  /** Dispatches a unary RPC by its proto name (the seam the gRPC handlers and routers use). */
  handle(method: string, request: unknown, ctx: CallContext): Promise<unknown> {
    const req = (typeof request === 'object' && request !== null ? request : {}) as Req;
    switch (method as ChatMethod) {
      case 'Signup':
        return this.signup(req, ctx);
      case 'Login':
        return this.login(req, ctx);
      case 'Logout':
        return this.logout(req, ctx);
      case 'DeleteAccount':
        return this.deleteAccount(req, ctx);
      case 'ListUsers':
        return this.listUsers(req, ctx);
      case 'GetSettings':
        return this.getSettings(req, ctx);
      case 'UpdateSettings':
        return this.updateSettings(req, ctx);
      case 'StartChat':
        return this.startChat(req, ctx);
      case 'ListChats':
        return this.listChats(req, ctx);
      case 'SendMessage':
        return this.sendMessage(req, ctx);
      case 'GetMessages':
        return this.getMessages(req, ctx);
      case 'ReadMessages':
        return this.readMessages(req, ctx);
      case 'MarkRead':
        return this.markRead(req, ctx);
      case 'EditMessage':
        return this.editMessage(req, ctx);
      case 'SetTyping':
        return this.setTyping(req, ctx);
      case 'DeleteMessages':
        return this.deleteMessages(req, ctx);
      default:
        return Promise.reject(new ChatError(status.UNIMPLEMENTED, `ChatService has no method '${method}'.`));
    }
  }

  async signup(req: Req, ctx: CallContext): Promise<{ user: User }> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const username = checkUsername(req.username);
    const nickname = checkNickname(req.nickname);
    const password = checkPassword(req.password);
    // Skip the slow hash for a name that is taken, unless this may be a retry whose first attempt
    // created the account: then apply must answer with the stored original result.
    if (key === undefined && (await this.read(() => this.store.credentialsByName(username), ctx))) {
      throw new ChatError(status.ALREADY_EXISTS, `The username '${username}' is taken.`);
    }
    const passwordHash = await this.hashes.run(
      () => hashPassword(password, this.cost, this.derive),
      ctx.deadline,
    );
    return this.propose(
      { type: 'signup', username, nickname, passwordHash, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<{ user: User }>;
  }

  async login(req: Req, ctx: CallContext): Promise<{ token: string; user: User }> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const username = typeof req.username === 'string' ? req.username : '';
    const password = typeof req.password === 'string' ? req.password : '';
    const cred = await this.read(() => this.store.credentialsByName(username), ctx);
    // Same work, through the same queue, and same answer whether the user is unknown or the password wrong.
    const stored = cred ? cred.passwordHash : this.dummy;
    const ok = await this.hashes.run(() => verifyPassword(password, stored, this.derive), ctx.deadline);
    if (!cred || !ok) throw unauthenticated(BAD_CREDENTIALS);
    // The token stays in memory: the entry carries its hash, and apply's reply (stored for a retry
    // with the same key) carries none. A retry proves the password again and gets a new token.
    const token = this.mintToken();
    const { user } = (await this.propose(
      {
        type: 'login',
        username,
        userId: cred.userId,
        tokenHash: tokenHash(token),
        ttlMs: this.sessionTtlMs,
        at: this.now(),
        idempotencyKey: key,
      },
      ctx,
    )) as { user: User };
    return { token, user };
  }

  async logout(_req: Req, ctx: CallContext): Promise<object> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    return this.propose(
      { type: 'logout', actor: this.actor(ctx), at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<object>;
  }

  async deleteAccount(req: Req, ctx: CallContext): Promise<object> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const password = typeof req.password === 'string' ? req.password : '';
    const session = await this.liveSession(actor, ctx);
    const who = session ? this.store.credentialsById(session.userId) : undefined;
    if (who) {
      const stored = who.passwordHash;
      const ok = await this.hashes.run(() => verifyPassword(password, stored, this.derive), ctx.deadline);
      if (!ok) throw unauthenticated('Wrong password.');
    }
    // With no session, propose() answers a retry of a DeleteAccount that already succeeded from its
    // stored result, and refuses anything else.
    return this.propose(
      { type: 'deleteAccount', actor, userId: who?.userId ?? 0, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<object>;
  }

  async listUsers(
    req: Req,
    ctx: CallContext,
  ): Promise<{ users: User[]; page: number; total_pages: number; total_count: number }> {
    const actor = this.actor(ctx);
    const pattern = checkPattern(req.pattern);
    const page = checkPage(req.page);
    const pageSize = checkPageSize(req.page_size);
    return this.read(() => this.store.listUsers(this.whoami(actor), pattern, page, pageSize), ctx);
  }

  async getSettings(_req: Req, ctx: CallContext): Promise<{ view_limit: number }> {
    const actor = this.actor(ctx);
    return this.read(() => this.store.getSettings(this.whoami(actor)), ctx);
  }

  async updateSettings(req: Req, ctx: CallContext): Promise<{ view_limit: number }> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const viewLimit = checkViewLimit(req.view_limit);
    return this.propose(
      { type: 'updateSettings', actor, viewLimit, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<{ view_limit: number }>;
  }

  async startChat(req: Req, ctx: CallContext): Promise<Chat> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const username = checkUsernameRef(req.username);
    return this.propose(
      { type: 'startChat', actor, username, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<Chat>;
  }

  async listChats(_req: Req, ctx: CallContext): Promise<{ chats: Chat[] }> {
    const actor = this.actor(ctx);
    return this.read(() => this.store.listChats(this.whoami(actor)), ctx);
  }

  async sendMessage(req: Req, ctx: CallContext): Promise<Message> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    const content = checkContent(req.content);
    return this.propose(
      { type: 'sendMessage', actor, chatId, content, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<Message>;
  }

  /** A pure read (ReadIndex): no log entry, no idempotency row, no change to read flags. */
  async getMessages(req: Req, ctx: CallContext): Promise<{ messages: Message[]; has_more: boolean }> {
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    const beforeId = checkBeforeId(req.before_id);
    const limit = checkHistoryLimit(req.limit);
    return this.read(() => this.store.history(this.whoami(actor), chatId, beforeId, limit), ctx);
  }

  async readMessages(req: Req, ctx: CallContext): Promise<{ messages: Message[]; unread_remaining: number }> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    return this.propose(
      { type: 'readMessages', actor, chatId, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<{ messages: Message[]; unread_remaining: number }>;
  }

  async markRead(req: Req, ctx: CallContext): Promise<{ unread_remaining: number }> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    const upToId = checkUpToId(req.up_to_id);
    return this.propose(
      { type: 'markRead', actor, chatId, upToId, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<{ unread_remaining: number }>;
  }

  async editMessage(req: Req, ctx: CallContext): Promise<Message> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    const messageId = checkMessageId(req.message_id);
    const content = checkContent(req.content);
    return this.propose(
      { type: 'editMessage', actor, chatId, messageId, content, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<Message>;
  }

  /**
   * Ephemeral (docs/design/typing.md): checked against this replica's state after the read barrier,
   * then handed to the typing fan-out, which delivers here and relays to the other replicas. Never
   * proposed, never stored.
   */
  async setTyping(req: Req, ctx: CallContext): Promise<object> {
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    const typing = checkTyping(req.typing);
    const target = await this.read(() => this.store.typingTarget(this.whoami(actor), chatId), ctx);
    this.typing?.publish({
      senderId: target.senderId,
      userId: target.recipientId,
      typing: { chat_id: chatId, username: target.username, typing },
    });
    return {};
  }

  async deleteMessages(req: Req, ctx: CallContext): Promise<{ deleted_count: number }> {
    const key = checkIdempotencyKey(ctx.idempotencyKey);
    const actor = this.actor(ctx);
    const chatId = checkChatId(req.chat_id);
    const messageIds = checkMessageIds(req.message_ids);
    return this.propose(
      { type: 'deleteMessages', actor, chatId, messageIds, at: this.now(), idempotencyKey: key },
      ctx,
    ) as Promise<{ deleted_count: number }>;
  }

  /**
   * Subscribe, served by THIS replica from its own applied state (any replica may serve it). Checks
   * the token locally; a token this replica does not know (a Login a moment ago that it has not applied
   * yet) waits for a barrier instead of being refused: the leader confirms it (confirmSession), then
   * this replica waits until it has applied the session. Resolves with the function that ends the stream.
   */
  async subscribe(req: Req, ctx: CallContext, sink: EventSink): Promise<() => void> {
    const actor = this.actor(ctx);
    const after = req.after_index ?? 0;
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) {
      throw invalid('The after_index must be a whole number, 0 or more.');
    }
    let who = this.store.authenticate(actor, this.now());
    if (!who) {
      const token = ctx.token as string;
      if (this.confirmSession) await this.confirmSession(token, ctx.deadline);
      else await this.read(() => this.whoami(actor), ctx);
      who = await this.sessionApplied(actor, ctx.deadline);
    } else {
      this.maybeTouch(actor, who);
    }
    return this.hub.subscribe(who.userId, actor, after, sink);
  }

  // -------------------------------------------------------------------------------------------------

  /** The token's hash; an absurdly long token is refused before it is hashed. */
  private actor(ctx: CallContext): string {
    if (typeof ctx.token !== 'string' || ctx.token === '' || ctx.token.length > MAX_TOKEN_LENGTH) {
      throw unauthenticated(BAD_TOKEN);
    }
    return tokenHash(ctx.token);
  }

  /** Inside a read: the caller's user id, or UNAUTHENTICATED. A stale session gets refreshed. */
  private whoami(actor: string): number {
    const who = this.store.authenticate(actor, this.now());
    if (!who) throw unauthenticated(BAD_TOKEN);
    this.maybeTouch(actor, who);
    return who.userId;
  }

  /**
   * The live session of a token hash: this replica's applied state first (the common case, no round
   * trip); when it is not there, again after a read barrier, since the Login may be committed but not
   * yet applied here (a new leader). Undefined when the cluster does not know it.
   */
  private async liveSession(actor: string, ctx: CallContext): Promise<SessionInfo | undefined> {
    const local = this.store.authenticate(actor, this.now());
    if (local) return local;
    return this.read(() => this.store.authenticate(actor, this.now()), ctx);
  }

  /**
   * Reads do not go through the log, so a session used only to read would expire: when its last
   * refresh is old, propose a small `touch` (apply sets its expiry to at + ttl). Best effort: a replica
   * that does not lead cannot propose, and a failed touch is retried by the next read.
   */
  private maybeTouch(actor: string, session: SessionInfo, relay = true): void {
    const now = this.now();
    const refreshedAt = session.expiresAt - session.ttlMs;
    const after = Math.min(TOUCH_AFTER_MS, Math.floor(session.ttlMs / TOUCH_TTL_FRACTION));
    if (now - refreshedAt < after || this.touching.has(actor)) return;
    this.touching.add(actor);
    this.replicator
      .propose({ type: 'touch', actor, at: now })
      // A follower cannot propose (reads are served there since follower reads): it hands the refresh
      // to the leader over the peer transport, outside the log (touchRelayed there).
      .catch(() => {
        if (relay) this.relayTouch?.(actor);
      })
      .finally(() => this.touching.delete(actor));
  }

  /**
   * A peer asks for a session refresh it could not propose itself (it does not lead). Proposed here
   * only for a session this replica knows to be live and due for a refresh; anything else is ignored,
   * and on a replica that does not lead either the proposal fails quietly (best effort, as maybeTouch).
   */
  touchRelayed(actor: string): void {
    if (!isTokenHash(actor)) return;
    const session = this.store.authenticate(actor, this.now());
    if (session) this.maybeTouch(actor, session, false);
  }

  /** Waits until this replica has applied a session the leader confirmed (bounded). */
  private sessionApplied(actor: string, deadline: number | undefined): Promise<SessionInfo> {
    const found = this.store.authenticate(actor, this.now());
    if (found) return Promise.resolve(found);
    const wait = Math.max(
      0,
      Math.min(SESSION_CATCH_UP_MS, (deadline ?? Number.POSITIVE_INFINITY) - Date.now()),
    );
    return new Promise((resolve, reject) => {
      const done = (err: ChatError | undefined, who?: SessionInfo) => {
        clearTimeout(timer);
        detach();
        if (who) resolve(who);
        else reject(err);
      };
      const detach = this.store.onApplied(() => {
        const who = this.store.authenticate(actor, this.now());
        if (who) done(undefined, who);
      });
      const timer = setTimeout(
        () =>
          done(
            new ChatError(
              status.UNAVAILABLE,
              'This replica has not caught up with the session yet; subscribe again.',
            ),
          ),
        wait,
      );
    });
  }

  private read<T>(query: () => T, ctx: CallContext): Promise<T> {
    return this.replicator.read(query, { deadline: ctx.deadline });
  }

  /**
   * Proposes a command and returns apply's value (or throws its error). An authenticated command is
   * proposed only for a live session; without one, a retry (same key) of a command that session made
   * before it ended gets its stored result, and anything else is refused here, outside the log.
   */
  private async propose(command: Command, ctx: CallContext): Promise<unknown> {
    if (ctx.readOnly) throw new ChatError(status.INTERNAL, 'A read may not write; this is a routing bug.');
    if ('actor' in command && !(await this.liveSession(command.actor, ctx))) {
      const key = command.idempotencyKey;
      const stored =
        key === undefined
          ? undefined
          : await this.read(() => this.store.replayOf(command.actor, command.type, key, this.now()), ctx);
      if (!stored) throw unauthenticated(BAD_TOKEN);
      return unwrap(stored);
    }
    return unwrap(await this.replicator.propose(command, { deadline: ctx.deadline }));
  }
}

function unwrap(result: CommandResult): unknown {
  if (!result.ok) throw new ChatError(result.code, result.message);
  return result.value;
}
