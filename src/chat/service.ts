// ChatService: one method per RPC of API.md. Each write is "prepared" here, on the leader (validate,
// read the clock into `at`, hash passwords, mint tokens), then proposed through the Replicator; the
// apply result comes back as data and is turned into a response or a ChatError. Reads run through
// Replicator.read. The service knows nothing of gRPC metadata or of Raft: callers hand it a decoded
// request and a CallContext.
import type { Command, CommandResult } from './commands.js';
import { BAD_CREDENTIALS, BAD_TOKEN, ChatError, invalid, status, unauthenticated } from './errors.js';
import type { EventHub, EventSink } from './events.js';
import { DEFAULT_COST, type ScryptCost, hashPassword, verifyPassword } from './password.js';
import type { Replicator } from './replicator.js';
import type { ChatStore } from './store.js';
import { newToken, tokenHash } from './tokens.js';
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
  checkViewLimit,
} from './validate.js';

/** What the transport knows about a call: the bearer token, the idempotency key and the deadline. */
export interface CallContext {
  token?: string;
  idempotencyKey?: string;
  /** Absolute deadline, Unix ms. */
  deadline?: number;
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
}

export class ChatService {
  private readonly now: () => number;
  private readonly cost: ScryptCost;
  private readonly mintToken: () => string;
  private readonly typing: TypingFanout | undefined;
  private dummyHash: Promise<string> | undefined;

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
    const passwordHash = await hashPassword(password, this.cost);
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
    // Same work and same answer whether the user is unknown or the password wrong.
    const ok = await verifyPassword(password, cred ? cred.passwordHash : await this.dummy());
    if (!cred || !ok) throw unauthenticated(BAD_CREDENTIALS);
    return this.propose(
      {
        type: 'login',
        username,
        userId: cred.userId,
        token: this.mintToken(),
        at: this.now(),
        idempotencyKey: key,
      },
      ctx,
    ) as Promise<{ token: string; user: User }>;
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
    const who = await this.read(() => {
      const session = this.store.authenticate(actor);
      return session ? this.store.credentialsById(session.userId) : undefined;
    }, ctx);
    if (who) {
      if (!(await verifyPassword(password, who.passwordHash))) throw unauthenticated('Wrong password.');
    } else if (key === undefined) {
      throw unauthenticated(BAD_TOKEN);
    }
    // With no session but a key, this may be the retry of a DeleteAccount that already succeeded:
    // apply answers with the stored result, or UNAUTHENTICATED (userId 0 matches no session).
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
    if (typeof req.username !== 'string' || req.username === '') throw invalid('The username is required.');
    return this.propose(
      { type: 'startChat', actor, username: req.username, at: this.now(), idempotencyKey: key },
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
   * the token locally, then streams the caller's events; returns the function that ends the stream.
   */
  subscribe(req: Req, ctx: CallContext, sink: EventSink): () => void {
    const actor = this.actor(ctx);
    const who = this.store.authenticate(actor);
    if (!who) throw unauthenticated(BAD_TOKEN);
    const after = req.after_index ?? 0;
    if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) {
      throw invalid('The after_index must be a whole number, 0 or more.');
    }
    return this.hub.subscribe(who.userId, actor, after, sink);
  }

  // -------------------------------------------------------------------------------------------------

  private actor(ctx: CallContext): string {
    if (typeof ctx.token !== 'string' || ctx.token === '') throw unauthenticated(BAD_TOKEN);
    return tokenHash(ctx.token);
  }

  /** Inside a read: the caller's user id, or UNAUTHENTICATED. */
  private whoami(actor: string): number {
    const who = this.store.authenticate(actor);
    if (!who) throw unauthenticated(BAD_TOKEN);
    return who.userId;
  }

  private read<T>(query: () => T, ctx: CallContext): Promise<T> {
    return this.replicator.read(query, { deadline: ctx.deadline });
  }

  private async propose(command: Command, ctx: CallContext): Promise<unknown> {
    const result: CommandResult = await this.replicator.propose(command, { deadline: ctx.deadline });
    if (!result.ok) throw new ChatError(result.code, result.message);
    return result.value;
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= hashPassword('not a real password', this.cost);
    return this.dummyHash;
  }
}
