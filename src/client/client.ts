// ChatClient: the library every bundled client uses (terminal, web gateway, benchmark).
//
// It follows the contract's client rules (API.md §2): `authorization: Bearer <token>` after login, a
// fresh `idempotency-key` per logical mutating operation reused on every retry of it, retries with
// exponential backoff and jitter on transport trouble only, moving through the members, bounded by the
// operation's deadline, a RESOURCE_EXHAUSTED retried only after its `retry-after-ms` and only when that
// fits in the deadline, and the member list and leader preference refreshed from x-members / x-leader.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { type BackoffOptions, backoffDelay } from './backoff.js';
import { unaryAttempt } from './call.js';
import { ChatClientError, isRetryable } from './errors.js';
import { Members } from './members.js';
import { type SubscribeHandlers, type SubscribeOptions, Subscription } from './subscription.js';
import type { Chat, Delivery, HistoryPage, LoginResult, Message, Settings, User, UserPage } from './types.js';

export { ChatClientError } from './errors.js';
export { Subscription } from './subscription.js';
export type { SubscribeHandlers, SubscribeOptions } from './subscription.js';
export type * from './types.js';

export interface ChatClientOptions {
  /** Total budget of one logical operation, all retries included (ms). Default 5000. */
  deadlineMs?: number;
  /** Cap on one attempt, so that a hung replica leaves time to try another (ms). Default 2000. */
  attemptTimeoutMs?: number;
  /** Hard cap on attempts per operation, whatever the deadline. Default 50. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** How replicas are dialled: plaintext by default, TLS with a CA (tls/credentials.ts). */
  credentials?: grpc.ChannelCredentials;
  /** A token from an earlier login (e.g. the web gateway's session). */
  token?: string;
  /** Injected for deterministic tests. Defaults: Math.random, Date.now, setTimeout, randomUUID. */
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  newIdempotencyKey?: () => string;
  /** Called when an operation had to leave a failing replica and succeeded on another one. */
  onFailover?: (from: string, to: string) => void;
}

/** Per-call options. */
export interface CallOptions {
  /** Overrides the client's deadlineMs for this operation. */
  deadlineMs?: number;
  /** Use this idempotency key instead of a fresh one (e.g. a key the web gateway got from a browser). */
  idempotencyKey?: string;
}

export interface ListUsersOptions extends CallOptions {
  /** Case-insensitive glob; empty means `*`. */
  pattern?: string;
  /** From 1. */
  page?: number;
  /** 1..100; 0 means the server's default (20). */
  pageSize?: number;
}

interface OpSpec {
  /** Mutating operations carry an idempotency key. */
  mutating: boolean;
  /** Every call but Signup and Login carries the token. */
  auth: boolean;
}

/** The wait a RESOURCE_EXHAUSTED asks for (`retry-after-ms`), or undefined for any other answer. */
function rateLimitWait(e: ChatClientError): number | undefined {
  return e.code === grpc.status.RESOURCE_EXHAUSTED ? e.retryAfterMs : undefined;
}

const sleepReal = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ChatClient {
  readonly members: Members;
  private authToken: string | undefined;
  private readonly deadlineMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly newKey: () => string;
  private readonly onFailover: ((from: string, to: string) => void) | undefined;
  private readonly subscriptions = new Set<Subscription>();
  private lastAddress: string | undefined;
  private succeeded = 0;

  constructor(addresses: string[], opts: ChatClientOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.members = new Members(addresses, { now: this.now, credentials: opts.credentials });
    this.authToken = opts.token;
    this.deadlineMs = opts.deadlineMs ?? 5000;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 2000;
    this.maxAttempts = opts.maxAttempts ?? 50;
    this.backoff = opts.backoff ?? {};
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? sleepReal;
    this.newKey = opts.newIdempotencyKey ?? randomUUID;
    this.onFailover = opts.onFailover;
  }

  /** The session token, once logged in. */
  get token(): string | undefined {
    return this.authToken;
  }

  set token(value: string | undefined) {
    this.authToken = value;
  }

  /** How many operations have succeeded so far (a caller can tell whether one did since it looked). */
  get successes(): number {
    return this.succeeded;
  }

  /** The address the last successful call went to. */
  get address(): string | undefined {
    return this.lastAddress;
  }

  signup(username: string, nickname: string, password: string, opts?: CallOptions): Promise<User> {
    return this.call<{ user: User }>(
      'Signup',
      { username, nickname, password },
      { mutating: true, auth: false },
      opts,
    ).then((r) => r.user);
  }

  /** Logs in and keeps the token for every later call. */
  async login(username: string, password: string, opts?: CallOptions): Promise<LoginResult> {
    // Login creates a session (a replicated write), so a retry must not create a second one.
    const r = await this.call<LoginResult>(
      'Login',
      { username, password },
      { mutating: true, auth: false },
      opts,
    );
    this.authToken = r.token;
    return r;
  }

  async logout(opts?: CallOptions): Promise<void> {
    try {
      await this.call('Logout', {}, { mutating: true, auth: true }, opts);
      this.authToken = undefined;
    } catch (err) {
      // A token the server no longer knows is as good as logged out.
      if (err instanceof ChatClientError && err.code === grpc.status.UNAUTHENTICATED)
        this.authToken = undefined;
      throw err;
    }
  }

  async deleteAccount(password: string, opts?: CallOptions): Promise<void> {
    await this.call('DeleteAccount', { password }, { mutating: true, auth: true }, opts);
    this.authToken = undefined;
  }

  listUsers(opts: ListUsersOptions = {}): Promise<UserPage> {
    const req = { pattern: opts.pattern ?? '', page: opts.page ?? 0, page_size: opts.pageSize ?? 0 };
    return this.call<UserPage>('ListUsers', req, { mutating: false, auth: true }, opts);
  }

  getSettings(opts?: CallOptions): Promise<Settings> {
    return this.call<Settings>('GetSettings', {}, { mutating: false, auth: true }, opts);
  }

  updateSettings(viewLimit: number, opts?: CallOptions): Promise<Settings> {
    return this.call<Settings>(
      'UpdateSettings',
      { view_limit: viewLimit },
      { mutating: true, auth: true },
      opts,
    );
  }

  startChat(username: string, opts?: CallOptions): Promise<Chat> {
    return this.call<Chat>('StartChat', { username }, { mutating: true, auth: true }, opts);
  }

  /** Most recent activity first. */
  listChats(opts?: CallOptions): Promise<Chat[]> {
    return this.call<{ chats: Chat[] }>('ListChats', {}, { mutating: false, auth: true }, opts).then(
      (r) => r.chats,
    );
  }

  sendMessage(chatId: string, content: string, opts?: CallOptions): Promise<Message> {
    return this.call<Message>(
      'SendMessage',
      { chat_id: chatId, content },
      { mutating: true, auth: true },
      opts,
    );
  }

  /** One page of history (a pure read, no key): oldest first, the newest `limit` visible messages with
   * an id below `beforeId` (0 or absent: the newest page). */
  getMessages(
    chatId: string,
    page: { beforeId?: number; limit?: number } = {},
    opts?: CallOptions,
  ): Promise<HistoryPage> {
    return this.call<HistoryPage>(
      'GetMessages',
      { chat_id: chatId, before_id: page.beforeId ?? 0, limit: page.limit ?? 0 },
      { mutating: false, auth: true },
      opts,
    );
  }

  /** Delivers the oldest view_limit unread messages and marks them read (a replicated write), so it
   * carries an idempotency key: a retry gets the same delivery instead of silently skipping it. */
  readMessages(chatId: string, opts?: CallOptions): Promise<Delivery> {
    return this.call<Delivery>('ReadMessages', { chat_id: chatId }, { mutating: true, auth: true }, opts);
  }

  /** Marks the other side's messages up to `upToId` read; returns how many are still unread. */
  markRead(chatId: string, upToId: number, opts?: CallOptions): Promise<number> {
    return this.call<{ unread_remaining: number }>(
      'MarkRead',
      { chat_id: chatId, up_to_id: upToId },
      { mutating: true, auth: true },
      opts,
    ).then((r) => r.unread_remaining);
  }

  /** Edits one of the caller's own messages; returns it with its new edited_at. */
  editMessage(chatId: string, messageId: number, content: string, opts?: CallOptions): Promise<Message> {
    return this.call<Message>(
      'EditMessage',
      { chat_id: chatId, message_id: messageId, content },
      { mutating: true, auth: true },
      opts,
    );
  }

  /** Ephemeral (not in the log, so no key): tells the other participant whether the caller is typing.
   * Refresh a `true` every few seconds; receivers drop it after 6 s without one. */
  setTyping(chatId: string, typing: boolean, opts?: CallOptions): Promise<void> {
    return this.call<object>(
      'SetTyping',
      { chat_id: chatId, typing },
      { mutating: false, auth: true },
      opts,
    ).then(() => undefined);
  }

  /** Returns the number of messages deleted. */
  deleteMessages(chatId: string, messageIds: number[], opts?: CallOptions): Promise<number> {
    return this.call<{ deleted_count: number }>(
      'DeleteMessages',
      { chat_id: chatId, message_ids: messageIds },
      { mutating: true, auth: true },
      opts,
    ).then((r) => r.deleted_count);
  }

  /** Opens a resumable event stream with the current token (see Subscription). */
  subscribe(handlers: SubscribeHandlers, opts: SubscribeOptions = {}): Subscription {
    const sub = new Subscription(
      this.members,
      () => this.authMetadata(),
      handlers,
      { random: this.random, sleep: this.sleep, backoff: this.backoff, ...opts },
      () => this.subscriptions.delete(sub),
    );
    this.subscriptions.add(sub);
    sub.start();
    return sub;
  }

  /** Ends every subscription and closes every channel. */
  close(): void {
    for (const s of [...this.subscriptions]) s.close();
    this.members.close();
  }

  private authMetadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.authToken) md.set('authorization', `Bearer ${this.authToken}`);
    return md;
  }

  /** One logical operation: attempts on successive members until success, a non-retryable answer, the
   * deadline, or maxAttempts. */
  private async call<Res>(
    method: string,
    request: object,
    spec: OpSpec,
    opts: CallOptions = {},
  ): Promise<Res> {
    const deadlineAt = this.now() + (opts.deadlineMs ?? this.deadlineMs);
    const md = spec.auth ? this.authMetadata() : new grpc.Metadata();
    // One key for the whole operation: every retry below reuses it, so the operation applies once.
    if (spec.mutating) md.set('idempotency-key', opts.idempotencyKey ?? this.newKey());
    let lastError: ChatClientError | undefined;
    let failedFrom: string | undefined;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const remaining = deadlineAt - this.now();
      if (remaining <= 0) break;
      const address = this.members.pick();
      try {
        const res = await unaryAttempt<Res>(
          this.members,
          address,
          this.members.chatStub(address),
          method,
          request,
          md,
          Math.min(remaining, this.attemptTimeoutMs),
        );
        if (failedFrom !== undefined && failedFrom !== address) this.onFailover?.(failedFrom, address);
        this.lastAddress = address;
        this.succeeded++;
        return res;
      } catch (err) {
        const e = err as ChatClientError;
        const wait = e instanceof ChatClientError ? rateLimitWait(e) : undefined;
        if (wait !== undefined) {
          // A rate limit or a full hashing queue: wait what the server asked (plus a little jitter so
          // that throttled clients do not return in lockstep), on the same replica, with the same key;
          // when that does not fit in the operation's deadline, report it now instead of hammering.
          const pause = wait + Math.round(wait * 0.1 * this.random());
          if (attempt === this.maxAttempts || pause >= deadlineAt - this.now()) throw e;
          lastError = e;
          await this.sleep(pause);
          continue;
        }
        if (!(e instanceof ChatClientError) || !isRetryable(e)) throw err;
        lastError = e;
        failedFrom ??= address;
        this.members.markFailed(address);
        const left = deadlineAt - this.now();
        if (left <= 0 || attempt === this.maxAttempts) break;
        await this.sleep(Math.min(left, backoffDelay(attempt, this.random, this.backoff)));
      }
    }
    throw (
      lastError ??
      new ChatClientError(grpc.status.DEADLINE_EXCEEDED, 'The deadline ran out before any attempt.')
    );
  }
}

export { ClusterClient, type ClusterClientOptions } from './cluster-client.js';
