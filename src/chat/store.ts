// ChatStore: the chat state machine over SQLite. `apply` is the only writer; it is deterministic given the
// database and the entries (no clock, no randomness, no locale), so every replica that applies the same
// log holds the same tables, which `stateDigest` checks. The queries are the read side of ChatService.
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Entry } from '../../machines/protocol.js';
import { touchPrivateDatabase } from '../private-files.js';
import type {
  ApplyOutcome,
  SnapshotPayload,
  SnapshotToOptions,
  SnapshotWritten,
  StateMachine,
} from '../raft/interfaces.js';
import type { Command, CommandResult } from './commands.js';
import {
  BAD_CREDENTIALS,
  BAD_TOKEN,
  ChatError,
  denied,
  invalid,
  notFound,
  status,
  unauthenticated,
} from './errors.js';
import { ExpiryFloors } from './expiry-floors.js';
import { foldCase, globMatch, normalizePattern } from './glob.js';
import { CHAT_META_SCHEMA, CHAT_SCHEMA, CHAT_SCHEMA_VERSION } from './schema.js';
import { type CachedSession, SessionCache } from './session-cache.js';
import { ChatSnapshots } from './snapshots.js';
import { MAX_SESSION_TTL_MS, isTokenHash } from './tokens.js';
import type { AddressedEvent, AppliedBatch, Chat, Message, Revocations, User } from './types.js';
import {
  DEFAULT_VIEW_LIMIT,
  checkChatId,
  checkContent,
  checkIdempotencyKey,
  checkMessageId,
  checkMessageIds,
  checkNickname,
  checkUpToId,
  checkUsername,
  checkViewLimit,
} from './validate.js';

/** API.md: a repeated idempotency key is honoured for 24 hours, measured on command times. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

/** A database made by another version of the chat schema (schema.ts says why there is no migration). */
export class SchemaVersionError extends Error {
  constructor(readonly found: string) {
    super(
      `it holds chat schema version ${found}, and this release reads only version ${CHAT_SCHEMA_VERSION} (no migration: the old one kept session tokens in clear); start from an empty data dir`,
    );
    this.name = 'SchemaVersionError';
  }
}

/** A live session as the read side sees it. */
export interface SessionInfo {
  userId: number;
  username: string;
  /** When the session dies unless used again (Unix ms, command time). */
  expiresAt: number;
  ttlMs: number;
}

export interface ChatStoreOptions {
  /** Apply the durability pragmas (WAL, synchronous=FULL). Default true. */
  durable?: boolean;
  /**
   * Lazy applied index (like etcd's consistent index; default true): the apply transaction commits
   * with synchronous=NORMAL, so it pays no fsync of its own. In WAL mode its frames become durable
   * with the next fsync of the file: the Raft log's next flush (same file, synchronous=FULL), or a
   * checkpoint. A crash before that loses the tail of applies, state and applied index together (one
   * transaction), and the replica re-applies them from its durable log on restart. False: every
   * apply transaction is durable before it returns (the old behaviour; for comparison).
   */
  lazyApply?: boolean;
  /**
   * Apply's shortcuts (default true): the expiry floors that skip the idempotency prune and the
   * expired-session delete when they provably delete nothing (expiry-floors.ts), and the session rows
   * cached by token hash (session-cache.ts). False runs every statement as before; the tables come out
   * the same either way (test/unit/chat-apply-floors.test.ts compares them).
   */
  shortcuts?: boolean;
}

interface SessionRow {
  user_id: number;
  username: string;
  expires_at: number;
  ttl_ms: number;
}

interface UserRow {
  id: number;
  username: string;
  username_key: string;
  nickname: string;
  password_hash: string;
}

interface ChatRow {
  id: string;
  user_a: number;
  user_b: number;
}

/** A raw row of HISTORY_PAGE_SQL. */
type HistoryRow = [
  id: number,
  senderId: number,
  content: string,
  sentAt: number,
  read: number,
  editedAt: number,
];

interface MessageRow {
  id: number;
  chat_id: string;
  sender: string;
  content: string;
  sent_at: number;
  read: number;
  edited_at: number;
}

/** What one command accumulates while it runs; kept only if the command succeeds. */
interface CommandEffects {
  events: AddressedEvent[];
  revoked: Revocations;
}

/** SQLite failures that mean the database itself is unusable: never turned into a command result. */
const FATAL_SQLITE = /^SQLITE_(IOERR|FULL|CORRUPT|NOTADB|CANTOPEN|READONLY|NOMEM|BUSY|LOCKED)/;

const COMMAND_TYPES = new Set<unknown>([
  'signup',
  'login',
  'logout',
  'deleteAccount',
  'updateSettings',
  'startChat',
  'sendMessage',
  'getMessages',
  'readMessages',
  'markRead',
  'editMessage',
  'deleteMessages',
  'touch',
] satisfies Command['type'][]);

export type AppliedListener = (batch: AppliedBatch) => void;

export class ChatStore implements StateMachine {
  readonly db: Database.Database;
  private readonly ownsDb: boolean;
  private readonly listeners = new Set<AppliedListener>();
  private digestCache: { index: number; digest: string } | undefined;
  private readonly q: ReturnType<typeof prepareStatements>;
  /** The synchronous level the apply transaction commits with, and the one to put back after it. */
  private readonly applySync: { lazy: Database.Statement; restore: Database.Statement } | undefined;
  private readonly floors: ExpiryFloors;
  private readonly sessionCache: SessionCache;
  /**
   * The apply transaction and each command's savepoint, made once: better-sqlite3 builds four wrapper
   * functions for every db.transaction() call, which cost more than a savepoint's own statements.
   */
  private readonly applyTransaction: (
    entries: Entry[],
    batch: AppliedBatch,
    outcomes: ApplyOutcome[],
  ) => void;
  private readonly commandSavepoint: (
    cmd: Command,
    index: number,
    session: CachedSession | undefined,
    effects: CommandEffects,
  ) => unknown;

  /** Opens (and creates) the chat tables in the SQLite file `path`, or in an already open database. */
  constructor(pathOrDb: string | Database.Database, opts: ChatStoreOptions = {}) {
    this.ownsDb = typeof pathOrDb === 'string';
    if (typeof pathOrDb === 'string') touchPrivateDatabase(pathOrDb);
    this.db = typeof pathOrDb === 'string' ? new Database(pathOrDb) : pathOrDb;
    try {
      if (opts.durable !== false && this.ownsDb) {
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = FULL');
      }
      // The version first: the tables of another version must not meet this version's statements.
      this.db.exec(CHAT_META_SCHEMA);
      const version = this.db
        .prepare('SELECT value FROM chat_meta WHERE key = ?')
        .pluck()
        .get('schema_version');
      if (version !== undefined && version !== String(CHAT_SCHEMA_VERSION)) {
        throw new SchemaVersionError(String(version));
      }
      this.db.exec(CHAT_SCHEMA);
      if (version === undefined) {
        this.db
          .prepare('INSERT INTO chat_meta (key, value) VALUES (?, ?)')
          .run('schema_version', String(CHAT_SCHEMA_VERSION));
      }
      this.db.prepare('INSERT OR IGNORE INTO applied (id, idx) VALUES (1, 0)').run();
      this.q = prepareStatements(this.db);
      this.applySync = lazyApplyStatements(this.db, opts.lazyApply ?? true);
      const shortcuts = opts.shortcuts ?? true;
      const q = this.q;
      this.floors = new ExpiryFloors(
        {
          idempotency: () => q.minIdempotencyAt.get() as number | null,
          sessions: () => q.minSessionExpiry.get() as number | null,
        },
        shortcuts,
      );
      this.floors.rebuild();
      // Without shortcuts nothing stays cached: every lookup reads the tables.
      this.sessionCache = new SessionCache(shortcuts ? undefined : 0);
      this.applyTransaction = this.db.transaction((entries, batch, outcomes) =>
        this.applyInTransaction(entries, batch, outcomes),
      );
      this.commandSavepoint = this.db.transaction((cmd, index, session, effects) =>
        this.execute(cmd, index, session, effects),
      );
    } catch (err) {
      if (this.ownsDb) this.db.close();
      throw err;
    }
  }

  close(): void {
    this.listeners.clear();
    this.sessionCache.clear();
    if (this.ownsDb && this.db.open) this.db.close();
  }

  /** Called after every committed batch, with the events it produced and the sessions it revoked. */
  onApplied(listener: AppliedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  appliedIndex(): number {
    return this.q.getApplied.get() as number;
  }

  /** StateMachine.restore: replace the chat tables with a snapshot's (src/chat/snapshots.ts). */
  restore(payload: SnapshotPayload): void {
    try {
      new ChatSnapshots(this.db).restore(payload);
    } finally {
      // Other tables now (or, after a failure, possibly): nothing remembered about the old ones holds.
      this.sessionCache.clear();
      this.forgetFloors(true);
    }
  }

  /** The floors after the tables changed under them: read again, or unknown if they cannot be read. */
  private forgetFloors(rebuild: boolean): void {
    this.floors.forget();
    if (!rebuild) return;
    try {
      this.floors.rebuild();
    } catch {
      // Unknown floors make every check run its DELETE, which reads them again.
    }
  }

  /** SnapshotSource.snapshotTo: copy the chat tables in the background (src/chat/snapshots.ts). */
  snapshotTo(file: string, opts: SnapshotToOptions): Promise<SnapshotWritten | undefined> {
    return new ChatSnapshots(this.db).snapshotTo(file, opts);
  }

  // -------------------------------------------------------------------------------------------------
  // Apply

  /**
   * Applies consecutive committed entries in ONE transaction that also records the applied index.
   * Entries at or below the applied index are skipped (already applied); a gap is a host bug and throws.
   * Each command runs in its own savepoint, so a command that fails changes nothing but still
   * consumes its index and yields its error as data.
   */
  apply(entries: Entry[]): ApplyOutcome[] {
    const outcomes: ApplyOutcome[] = [];
    const batch: AppliedBatch = { lastIndex: 0, events: [], revoked: { tokenHashes: [], userIds: [] } };
    // The level is per connection and cannot change inside a transaction: set it around this one.
    this.applySync?.lazy.run();
    try {
      this.applyTransaction(entries, batch, outcomes);
    } catch (err) {
      // Rolled back: a refresh mirrored in the cache, or a DELETE that raised a floor, is undone.
      this.sessionCache.clear();
      this.forgetFloors(false);
      throw err;
    } finally {
      this.applySync?.restore.run();
    }
    if (outcomes.length > 0) {
      for (const listener of this.listeners) {
        try {
          listener(batch);
        } catch {
          // A broken listener (a closed stream) must not undo or repeat a committed batch.
        }
      }
    }
    return outcomes;
  }

  /** The body of the apply transaction (applyTransaction): every entry, then the applied index. */
  private applyInTransaction(entries: Entry[], batch: AppliedBatch, outcomes: ApplyOutcome[]): void {
    let applied = this.appliedIndex();
    for (const entry of entries) {
      if (entry.index <= applied) continue;
      if (entry.index !== applied + 1) {
        throw new Error(`apply: entry ${entry.index} does not follow the applied index ${applied}`);
      }
      let result: CommandResult | undefined;
      if (entry.kind === 'command') {
        const effects: CommandEffects = { events: [], revoked: { tokenHashes: [], userIds: [] } };
        result = this.applyCommand(entry.data, entry.index, effects, batch.revoked);
        batch.events.push(...effects.events);
        batch.revoked.tokenHashes.push(...effects.revoked.tokenHashes);
        batch.revoked.userIds.push(...effects.revoked.userIds);
      }
      applied = entry.index;
      outcomes.push({ index: entry.index, term: entry.term, result });
    }
    this.q.setApplied.run(applied);
    batch.lastIndex = applied;
  }

  /** `expired` collects the sessions this command's time ended, whatever the command's outcome. */
  private applyCommand(
    data: string,
    index: number,
    effects: CommandEffects,
    expired: Revocations,
  ): CommandResult {
    let cmd: Command;
    try {
      cmd = JSON.parse(data) as Command;
    } catch {
      return fail(invalid('The command is not valid JSON.'));
    }
    if (typeof cmd !== 'object' || cmd === null || !COMMAND_TYPES.has(cmd.type)) {
      return fail(invalid('The command has no known type.'));
    }
    if (typeof cmd.at !== 'number' || !Number.isSafeInteger(cmd.at) || cmd.at < 0) {
      return fail(invalid('The command has no valid time.'));
    }
    let key: string | undefined;
    try {
      key = checkIdempotencyKey(cmd.idempotencyKey);
    } catch (err) {
      return fail(err as ChatError);
    }
    // Both housekeeping steps run only when a floor shows something may be due (expiry-floors.ts).
    const cutoff = cmd.at - IDEMPOTENCY_WINDOW_MS;
    if (this.floors.idempotencyDue(cutoff)) {
      this.q.pruneIdempotency.run(cutoff);
      this.floors.idempotencyPruned();
    }
    // Sessions die at their expiry, judged by the command's time (deterministic on every replica).
    if (this.floors.sessionsDue(cmd.at)) {
      const dead = this.q.expiredSessions.all(cmd.at) as string[];
      if (dead.length > 0) {
        this.q.deleteExpiredSessions.run(cmd.at);
        for (const hash of dead) this.sessionCache.forget(hash);
        expired.tokenHashes.push(...dead);
      }
      this.floors.sessionsPruned();
    }
    const method: string = cmd.type;

    // Who is calling: the account behind the session for authenticated commands, the (case-folded)
    // username for Signup and Login. The idempotency table is keyed by it.
    const authed = cmd.type !== 'signup' && cmd.type !== 'login';
    const actor = authed ? (cmd as { actor?: unknown }).actor : undefined;
    let session: CachedSession | undefined;
    let caller: string | undefined;
    if (authed) {
      if (typeof actor === 'string') session = this.liveSession(actor, cmd.at);
      if (session) {
        caller = `u:${session.userId}`;
        // Every use refreshes the session, whatever the command's outcome.
        this.q.refreshSession.run(cmd.at, actor);
        this.sessionCache.refreshed(actor as string, cmd.at);
      }
    } else {
      const name = (cmd as { username?: unknown }).username;
      if (typeof name === 'string') caller = `n:${foldCase(name)}`;
    }

    if (key !== undefined) {
      // A retry of Logout or DeleteAccount arrives after its session is gone: find it by the token hash.
      const row = (
        caller !== undefined
          ? this.q.idempotencyByCaller.get(caller, method, key)
          : typeof actor === 'string'
            ? this.q.idempotencyByActor.get(actor, method, key)
            : undefined
      ) as { result: string; actor: string | null } | undefined;
      if (row) {
        const stored = JSON.parse(row.result) as StoredResult;
        // The token of a Login is in no row: its retry gets a new one (docs/design/sessions.md).
        if (cmd.type === 'login' && stored.ok && caller !== undefined) {
          return this.rotateLogin(cmd, caller, key, row.actor, effects);
        }
        return this.replayed(stored);
      }
    }

    let result: CommandResult;
    try {
      if (authed && !session) throw unauthenticated(BAD_TOKEN);
      const value = this.commandSavepoint(cmd, index, session, effects);
      result = { ok: true, value };
    } catch (err) {
      effects.events.length = 0;
      effects.revoked.tokenHashes.length = 0;
      effects.revoked.userIds.length = 0;
      if (err instanceof ChatError) {
        result = fail(err);
      } else {
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'string' && FATAL_SQLITE.test(code)) throw err;
        result = {
          ok: false,
          code: status.INTERNAL,
          message: `The command failed: ${(err as Error).message}`,
        };
      }
    }
    if (key !== undefined && caller !== undefined) {
      // For Login the row remembers the session it created (by hash), so that a retry can rotate it.
      const rowActor = cmd.type === 'login' ? cmd.tokenHash : actor;
      this.q.saveIdempotency.run(
        caller,
        method,
        key,
        typeof rowActor === 'string' ? rowActor : null,
        cmd.at,
        JSON.stringify(storedForm(result)),
      );
      this.floors.idempotencyWritten(cmd.at);
    }
    return result;
  }

  /** The session row of a token hash if it is live at `at`: the cache, else the tables (then cached). */
  private liveSession(hash: string, at: number): CachedSession | undefined {
    let row = this.sessionCache.get(hash);
    if (!row) {
      const r = this.q.sessionByHash.get(hash) as SessionRow | undefined;
      if (!r) return undefined;
      row = { userId: r.user_id, username: r.username, expiresAt: r.expires_at, ttlMs: r.ttl_ms };
      this.sessionCache.fill(hash, row);
    }
    return row.expiresAt > at ? row : undefined;
  }

  /**
   * A stored idempotent result as the retry gets it. A delivery (ReadMessages) stores only the ids it
   * delivered; the messages are rebuilt from the tables, as they are now: a message deleted since the
   * first attempt is left out (its sender took it back, and the reader was told with messages_deleted),
   * an edited one shows its new content.
   */
  private replayed(stored: StoredResult): CommandResult {
    if (!('delivered' in stored)) return stored;
    const { message_ids, ...rest } = stored.delivered;
    const messages: Message[] = [];
    for (const id of message_ids) {
      const row = this.q.messageView.get(id) as MessageRow | undefined;
      if (row) messages.push(toMessage(row));
    }
    return { ok: true, value: { messages, ...rest } };
  }

  private execute(
    cmd: Command,
    index: number,
    session: CachedSession | undefined,
    fx: CommandEffects,
  ): unknown {
    const me = session ? session.userId : 0;
    switch (cmd.type) {
      case 'signup':
        return this.signup(cmd);
      case 'login':
        return this.login(cmd);
      case 'logout':
        this.q.deleteSession.run(cmd.actor);
        this.sessionCache.forget(cmd.actor);
        fx.revoked.tokenHashes.push(cmd.actor);
        return {};
      case 'deleteAccount':
        return this.deleteAccount(me, cmd.userId, index, fx);
      case 'updateSettings': {
        const viewLimit = checkViewLimit(cmd.viewLimit);
        this.q.setViewLimit.run(me, viewLimit);
        return { view_limit: viewLimit };
      }
      case 'startChat':
        return this.startChat(me, cmd.username, cmd.at, index, fx);
      case 'sendMessage':
        // applyCommand refused an authenticated command without a live session before this point.
        if (!session) throw unauthenticated(BAD_TOKEN);
        return this.sendMessage(session, cmd.chatId, cmd.content, cmd.at, index, fx);
      // v1's GetMessages delivered like ReadMessages (its page of history is gone): a v1 log replays
      // to the same read flags.
      case 'getMessages':
      case 'readMessages':
        return this.readMessages(me, cmd.chatId, index, fx);
      case 'markRead':
        return this.markRead(me, cmd.chatId, cmd.upToId, index, fx);
      case 'editMessage':
        return this.editMessage(me, cmd.chatId, cmd.messageId, cmd.content, cmd.at, index, fx);
      case 'deleteMessages':
        return this.deleteMessages(me, cmd.chatId, cmd.messageIds, index, fx);
      case 'touch':
        return {}; // applyCommand refreshed the session already
      default:
        throw invalid(`Unknown command type '${String((cmd as { type: unknown }).type).slice(0, 40)}'.`);
    }
  }

  /** The next id of a sequence: one UPDATE ... RETURNING, and an INSERT only for its first id. */
  private nextId(name: 'user' | 'chat' | 'message'): number {
    const next = this.q.bumpSeq.get(name) as number | undefined;
    if (next !== undefined) return next;
    this.q.setSeq.run(name, 1);
    return 1;
  }

  private signup(cmd: Extract<Command, { type: 'signup' }>): { user: User } {
    const username = checkUsername(cmd.username);
    const nickname = checkNickname(cmd.nickname);
    if (typeof cmd.passwordHash !== 'string' || !cmd.passwordHash.startsWith('scrypt$')) {
      throw invalid('The command carries no password hash.');
    }
    if (this.q.userByKey.get(foldCase(username))) {
      throw new ChatError(status.ALREADY_EXISTS, `The username '${username}' is taken.`);
    }
    const id = this.nextId('user');
    this.q.insertUser.run(id, username, foldCase(username), nickname, cmd.passwordHash, cmd.at);
    this.q.setViewLimit.run(id, DEFAULT_VIEW_LIMIT);
    return { user: { username, nickname, view_limit: DEFAULT_VIEW_LIMIT } };
  }

  /** What a Login entry must hold; the account it names, or a ChatError. */
  private checkLogin(cmd: Extract<Command, { type: 'login' }>): { user: UserRow; ttl: number } {
    // The leader verified the password of account `userId`; if that account was deleted (or replaced
    // by a new one under the same name) in the meantime, the login fails like a wrong password.
    const user = this.q.userById.get(cmd.userId) as UserRow | undefined;
    if (!user || typeof cmd.username !== 'string' || user.username_key !== foldCase(cmd.username)) {
      throw unauthenticated(BAD_CREDENTIALS);
    }
    if (!isTokenHash(cmd.tokenHash)) throw invalid('The command carries no token hash.');
    const ttl = cmd.ttlMs;
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_SESSION_TTL_MS) {
      throw invalid('The command carries no valid session TTL.');
    }
    return { user, ttl };
  }

  /** The reply carries no token: the leader, which minted it, adds it (service.ts). */
  private login(cmd: Extract<Command, { type: 'login' }>): { user: User } {
    const { user, ttl } = this.checkLogin(cmd);
    this.q.insertSession.run(cmd.tokenHash, user.id, cmd.at, cmd.at + ttl, ttl);
    this.sessionCache.forget(cmd.tokenHash);
    this.floors.sessionWritten(cmd.at + ttl);
    return { user: this.userView(user.id) };
  }

  /**
   * A Login retried with the key of one that succeeded: the retry proved the password again and
   * brings a new token hash; the session the first attempt created takes it, so exactly one session
   * stays and the first token stops working. If that session has ended (Logout, expiry), nothing is
   * created: the key stands for a session that is over.
   */
  private rotateLogin(
    cmd: Extract<Command, { type: 'login' }>,
    caller: string,
    key: string,
    previous: string | null,
    fx: CommandEffects,
  ): CommandResult {
    try {
      const { user, ttl } = this.checkLogin(cmd);
      const live = previous === null ? undefined : (this.q.session.get(previous, cmd.at) as SessionRow);
      if (!live || live.user_id !== user.id) {
        throw unauthenticated(
          'The session of the first login with this idempotency key has ended; log in again.',
        );
      }
      this.q.rotateSession.run(cmd.tokenHash, cmd.at + ttl, ttl, previous);
      this.sessionCache.forget(previous as string);
      this.sessionCache.forget(cmd.tokenHash);
      this.floors.sessionWritten(cmd.at + ttl);
      this.q.setIdempotencyActor.run(cmd.tokenHash, caller, 'login', key);
      fx.revoked.tokenHashes.push(previous as string);
      return { ok: true, value: { user: this.userView(user.id) } };
    } catch (err) {
      if (err instanceof ChatError) return fail(err);
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && FATAL_SQLITE.test(code)) throw err;
      return { ok: false, code: status.INTERNAL, message: `The command failed: ${(err as Error).message}` };
    }
  }

  private deleteAccount(me: number, verifiedId: unknown, index: number, fx: CommandEffects): object {
    if (verifiedId !== me) throw unauthenticated(BAD_TOKEN);
    const user = this.q.userById.get(me) as UserRow;
    for (const chat of this.q.chatsOf.all(me, me) as ChatRow[]) {
      const other = chat.user_a === me ? chat.user_b : chat.user_a;
      this.q.deleteChatMessages.run(chat.id);
      this.q.deleteChat.run(chat.id);
      fx.events.push({ userId: other, event: { index, chat_removed: { chat_id: chat.id } } });
    }
    this.q.deleteSessionsOf.run(me);
    this.sessionCache.forgetUser(me);
    this.q.deleteSettings.run(me);
    this.q.deleteUser.run(me);
    // A new account under the same name must inherit nothing, not even a Signup replay.
    this.q.deleteIdempotencyOf.run(`n:${user.username_key}`);
    fx.revoked.userIds.push(me);
    return {};
  }

  private startChat(me: number, username: unknown, at: number, index: number, fx: CommandEffects): Chat {
    if (typeof username !== 'string' || username === '') throw invalid('The username is required.');
    const other = this.q.userByKey.get(foldCase(username)) as UserRow | undefined;
    if (!other) throw notFound('No such user.');
    if (other.id === me) throw invalid('You cannot start a chat with yourself.');
    const [a, b] = me < other.id ? [me, other.id] : [other.id, me];
    const existing = this.q.chatByPair.get(a, b) as ChatRow | undefined;
    if (existing) return this.chatView(existing.id, me);
    const seq = this.nextId('chat');
    const id = `c${seq}`;
    this.q.insertChat.run(id, seq, a, b, at, at);
    fx.events.push({ userId: other.id, event: { index, chat_started: this.chatView(id, other.id) } });
    return this.chatView(id, me);
  }

  /** The chat if `me` takes part in it; NOT_FOUND otherwise (an outsider learns nothing). */
  private memberChat(chatId: unknown, me: number): ChatRow {
    const id = checkChatId(chatId);
    const chat = this.q.chatById.get(id) as ChatRow | undefined;
    if (!chat || (chat.user_a !== me && chat.user_b !== me)) throw notFound('No such chat.');
    return chat;
  }

  private sendMessage(
    sender: CachedSession,
    chatId: unknown,
    content: unknown,
    at: number,
    index: number,
    fx: CommandEffects,
  ): Message {
    const me = sender.userId;
    const text = checkContent(content);
    const chat = this.memberChat(chatId, me);
    const id = this.nextId('message');
    this.q.insertMessage.run(id, chat.id, me, text, at);
    this.q.touchChat.run(at, chat.id);
    // The row just inserted, as messageView() would read it back (test/unit/chat-store.test.ts checks it).
    const message: Message = {
      message_id: id,
      chat_id: chat.id,
      sender: sender.username,
      content: text,
      sent_at: at,
      read: false,
      edited_at: 0,
    };
    fx.events.push({ userId: otherOf(chat, me), event: { index, message_received: message } });
    return message;
  }

  /** ReadMessages: the oldest `view_limit` messages unread for `me`, now marked read. */
  private readMessages(
    me: number,
    chatId: unknown,
    index: number,
    fx: CommandEffects,
  ): { messages: Message[]; unread_remaining: number } {
    const chat = this.memberChat(chatId, me);
    const other = otherOf(chat, me);
    const viewLimit = (this.q.viewLimit.get(me) as number | undefined) ?? DEFAULT_VIEW_LIMIT;
    const ids = this.q.oldestUnreadIds.all(chat.id, other, viewLimit) as number[];
    for (const id of ids) this.q.markOneRead.run(id);
    const messages = ids.map((id) => this.messageView(id));
    // Delivered oldest first: every message of the sender up to the last one delivered is now read.
    if (ids.length > 0) this.readReceipt(chat, me, other, ids[ids.length - 1], index, fx);
    return { messages, unread_remaining: this.q.unreadCount.get(chat.id, other) as number };
  }

  /** MarkRead: every message of the other side with id <= upToId is read. */
  private markRead(
    me: number,
    chatId: unknown,
    upToId: unknown,
    index: number,
    fx: CommandEffects,
  ): { unread_remaining: number } {
    const bound = checkUpToId(upToId);
    const chat = this.memberChat(chatId, me);
    const other = otherOf(chat, me);
    // The receipt names the newest message this call marked: the sender's messages up to it are read.
    const newest = this.q.newestUnreadUpTo.get(chat.id, other, bound) as number | null;
    if (newest !== null) {
      this.q.markReadUpTo.run(chat.id, other, bound);
      this.readReceipt(chat, me, other, newest, index, fx);
    }
    return { unread_remaining: this.q.unreadCount.get(chat.id, other) as number };
  }

  /** messages_read to the sender, only when this command newly read something. */
  private readReceipt(
    chat: ChatRow,
    me: number,
    sender: number,
    upToId: number,
    index: number,
    fx: CommandEffects,
  ) {
    const reader = this.q.userById.get(me) as UserRow;
    fx.events.push({
      userId: sender,
      event: { index, messages_read: { chat_id: chat.id, reader: reader.username, up_to_id: upToId } },
    });
  }

  private editMessage(
    me: number,
    chatId: unknown,
    messageId: unknown,
    content: unknown,
    at: number,
    index: number,
    fx: CommandEffects,
  ): Message {
    const id = checkMessageId(messageId);
    const text = checkContent(content);
    const chat = this.memberChat(chatId, me);
    const sender = this.q.messageSender.get(id, chat.id) as number | undefined;
    if (sender === undefined) throw notFound(`Message ${id} does not exist in this chat.`);
    if (sender !== me) throw denied('Only the sender can edit a message.');
    this.q.editMessage.run(text, at, id);
    const message = this.messageView(id);
    fx.events.push({ userId: otherOf(chat, me), event: { index, message_edited: message } });
    return message;
  }

  private deleteMessages(
    me: number,
    chatId: unknown,
    ids: unknown,
    index: number,
    fx: CommandEffects,
  ): { deleted_count: number } {
    const chat = this.memberChat(chatId, me);
    const wanted = checkMessageIds(ids);
    const senders = wanted.map((id) => {
      const sender = this.q.messageSender.get(id, chat.id) as number | undefined;
      if (sender === undefined) throw notFound(`Message ${id} does not exist in this chat.`);
      return sender;
    });
    if (senders.some((s) => s !== me)) {
      throw denied('You can delete only your own messages; nothing was deleted.');
    }
    for (const id of wanted) this.q.deleteMessage.run(id);
    const other = chat.user_a === me ? chat.user_b : chat.user_a;
    fx.events.push({
      userId: other,
      event: { index, messages_deleted: { chat_id: chat.id, message_ids: wanted } },
    });
    return { deleted_count: wanted.length };
  }

  // -------------------------------------------------------------------------------------------------
  // Views (used by apply and by the queries)

  private userView(id: number): User {
    const row = this.q.userView.get(id) as User;
    return { username: row.username, nickname: row.nickname, view_limit: row.view_limit };
  }

  private chatView(chatId: string, viewer: number): Chat {
    return this.q.chatView.get(viewer, viewer, viewer, chatId) as Chat;
  }

  private messageView(id: number): Message {
    return toMessage(this.q.messageView.get(id) as MessageRow);
  }

  // -------------------------------------------------------------------------------------------------
  // Queries (read side; the service runs them through Replicator.read for linearizability)

  /**
   * The live session behind a token hash at time `now` (this replica's clock), or undefined when the
   * token is unknown, revoked or expired.
   */
  authenticate(hash: string, now: number): SessionInfo | undefined {
    const row = this.liveSession(hash, now);
    // A copy: the cached row changes as the session is refreshed.
    return row
      ? { userId: row.userId, username: row.username, expiresAt: row.expiresAt, ttlMs: row.ttlMs }
      : undefined;
  }

  /**
   * The stored result of an authenticated command that `actor` (a token hash) made with `key` within
   * the idempotency window before `now`: how a retry whose session has ended since gets its answer.
   */
  replayOf(actor: string, method: Command['type'], key: string, now: number): CommandResult | undefined {
    const row = this.q.idempotencyOfActor.get(actor, method, key, now - IDEMPOTENCY_WINDOW_MS) as
      | string
      | undefined;
    return row === undefined ? undefined : this.replayed(JSON.parse(row) as StoredResult);
  }

  /** What Login and DeleteAccount need to verify a password on the leader. */
  credentialsByName(username: string): { userId: number; passwordHash: string } | undefined {
    const row = this.q.userByKey.get(foldCase(username)) as UserRow | undefined;
    return row ? { userId: row.id, passwordHash: row.password_hash } : undefined;
  }

  credentialsById(userId: number): { userId: number; passwordHash: string } | undefined {
    const row = this.q.userById.get(userId) as UserRow | undefined;
    return row ? { userId: row.id, passwordHash: row.password_hash } : undefined;
  }

  listUsers(
    callerId: number,
    pattern: string,
    page: number,
    pageSize: number,
  ): { users: User[]; page: number; total_pages: number; total_count: number } {
    const p = normalizePattern(pattern);
    const first = (page - 1) * pageSize;
    const users: User[] = [];
    let count = 0;
    // No username is longer than 32 characters: a pattern needing more literal characters matches nothing.
    if (p.filter((c) => c !== '*').length <= 32) {
      for (const row of this.q.allUsers.iterate(callerId) as Iterable<User>) {
        if (!globMatch(p, row.username)) continue;
        if (count >= first && users.length < pageSize) {
          users.push({ username: row.username, nickname: row.nickname, view_limit: row.view_limit });
        }
        count++;
      }
    }
    return { users, page, total_pages: Math.ceil(count / pageSize), total_count: count };
  }

  /**
   * One page of GetMessages: oldest first, the newest `limit` messages with id < beforeId (0: no bound)
   * that `userId` may see (their own, and the other side's they have read), and whether older ones
   * exist. NOT_FOUND when the chat does not exist or `userId` is not in it.
   */
  history(
    userId: number,
    chatId: string,
    beforeId: number,
    limit: number,
  ): { messages: Message[]; has_more: boolean } {
    const chat = this.memberChat(chatId, userId);
    const other = otherOf(chat, userId);
    const rows = this.q.historyPage.all({
      chat: chat.id,
      me: userId,
      other,
      before: beforeId === 0 ? Number.MAX_SAFE_INTEGER : beforeId,
      n: limit + 1,
    }) as HistoryRow[];
    const has_more = rows.length > limit;
    const names = new Map<number, string | undefined>([
      [userId, this.q.usernameById.get(userId) as string | undefined],
      [other, this.q.usernameById.get(other) as string | undefined],
    ]);
    // The query returns newest first; the page is the `limit` newest, shown oldest first.
    const messages: Message[] = [];
    for (let i = Math.min(rows.length, limit) - 1; i >= 0; i--) {
      const [id, senderId, content, sentAt, read, editedAt] = rows[i];
      const sender = names.get(senderId);
      if (sender === undefined) continue; // as the users join did: no row for a sender without an account
      messages.push({
        message_id: id,
        chat_id: chat.id,
        sender,
        content,
        sent_at: sentAt,
        read: read === 1,
        edited_at: editedAt,
      });
    }
    return { messages, has_more };
  }

  /** SetTyping's check: `userId` is in the chat; who receives the notice, under which name. */
  typingTarget(userId: number, chatId: string): { senderId: number; recipientId: number; username: string } {
    const chat = this.memberChat(chatId, userId);
    const me = this.q.userById.get(userId) as UserRow;
    return { senderId: userId, recipientId: otherOf(chat, userId), username: me.username };
  }

  getSettings(userId: number): { view_limit: number } {
    return { view_limit: (this.q.viewLimit.get(userId) as number | undefined) ?? DEFAULT_VIEW_LIMIT };
  }

  /** The caller's chats, most recent activity first. */
  listChats(userId: number): { chats: Chat[] } {
    return { chats: this.q.chatsView.all(userId, userId, userId) as Chat[] };
  }

  /**
   * SHA-256 (hex) over all user-visible chat state in a canonical order: users with their settings,
   * chats, messages with read flags. Sessions and the idempotency table are not user-visible.
   */
  stateDigest(): string {
    const index = this.appliedIndex();
    if (this.digestCache?.index === index) return this.digestCache.digest;
    const steps = this.digestSteps();
    let step = steps.next();
    while (!step.done) step = steps.next();
    const digest = step.value as string;
    this.digestCache = { index, digest };
    return digest;
  }

  /**
   * The same digest, computed a few thousand rows per event-loop turn: for a database nobody writes
   * meanwhile (a backup's copy), where a large state must not hold the event loop in one piece.
   */
  async stateDigestInSteps(
    opts: { rowsPerStep?: number; pause?: () => Promise<void> } = {},
  ): Promise<string> {
    const pause = opts.pause ?? (() => new Promise<void>((r) => setImmediate(r)));
    const steps = this.digestSteps(opts.rowsPerStep);
    let step = steps.next();
    while (!step.done) {
      await pause();
      step = steps.next();
    }
    return step.value as string;
  }

  /** stateDigest's work, yielding every `rowsPerStep` rows; returns the hex digest. */
  private *digestSteps(rowsPerStep = 5000): Generator<void, string> {
    const every = Math.max(1, rowsPerStep);
    const h = createHash('sha256');
    let rows = 0;
    const line = (v: unknown[]) => h.update(`${JSON.stringify(v)}\n`);
    const queries: [string, string][] = [
      [
        'u',
        'SELECT u.username, u.nickname, s.view_limit FROM users u LEFT JOIN settings s ON s.user_id = u.id ORDER BY u.id',
      ],
      [
        'c',
        `SELECT c.id, a.username, b.username, c.created_at, c.last_activity_at FROM chats c
         JOIN users a ON a.id = c.user_a JOIN users b ON b.id = c.user_b ORDER BY c.seq`,
      ],
      [
        'm',
        `SELECT m.id, m.chat_id, u.username, m.content, m.sent_at, m.read, m.edited_at FROM messages m
         JOIN users u ON u.id = m.sender_id ORDER BY m.id`,
      ],
    ];
    for (const [tag, sql] of queries) {
      for (const r of this.db.prepare(sql).raw().iterate() as Iterable<unknown[]>) {
        line([tag, ...r]);
        if (++rows % every === 0) yield;
      }
    }
    return h.digest('hex');
  }

  /** A consistent copy of the whole database file (online backup API). Snapshots use snapshots.ts. */
  async backupTo(path: string): Promise<void> {
    await this.db.backup(path);
  }
}

function fail(err: ChatError): CommandResult {
  return { ok: false, code: err.code, message: err.message };
}

function toMessage(row: MessageRow): Message {
  return {
    message_id: row.id,
    chat_id: row.chat_id,
    sender: row.sender,
    content: row.content,
    sent_at: row.sent_at,
    read: row.read === 1,
    edited_at: row.edited_at,
  };
}

function otherOf(chat: ChatRow, me: number): number {
  return chat.user_a === me ? chat.user_b : chat.user_a;
}

/** What the idempotency table keeps: a delivery as its message ids, never the messages themselves. */
type StoredResult =
  | CommandResult
  | { ok: true; delivered: { message_ids: number[]; unread_remaining: number } };

function storedForm(result: CommandResult): StoredResult {
  if (!result.ok) return result;
  const v = result.value as { messages?: unknown; unread_remaining?: unknown } | null;
  if (v && Array.isArray(v.messages) && typeof v.unread_remaining === 'number') {
    return {
      ok: true,
      delivered: {
        message_ids: (v.messages as Message[]).map((m) => m.message_id),
        unread_remaining: v.unread_remaining,
      },
    };
  }
  return result;
}

// The chat as `viewer` sees it: the other participant, what is unread for the viewer, the last message.
const CHAT_VIEW_COLUMNS = `
  c.id AS chat_id,
  o.username AS other_user,
  o.nickname AS other_nickname,
  (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id AND m.sender_id = o.id AND m.read = 0) AS unread_count,
  COALESCE((SELECT m.sent_at FROM messages m WHERE m.chat_id = c.id ORDER BY m.id DESC LIMIT 1), 0) AS last_message_at
  FROM chats c JOIN users o ON o.id = CASE WHEN c.user_a = ? THEN c.user_b ELSE c.user_a END`;

const MESSAGE_COLUMNS = `m.id, m.chat_id, u.username AS sender, m.content, m.sent_at, m.read, m.edited_at
  FROM messages m JOIN users u ON u.id = m.sender_id`;

// A page of history, newest first: three ordered ranges of the (chat_id, sender_id, read, id) index
// merged (EXPLAIN: MERGE (UNION ALL)), so SQLite stops after @n rows whatever the chat's size. Raw rows
// [id, sender_id, content, sent_at, read, edited_at], without the users join: a page has only two
// senders, whose names history() looks up once (it is the hot read, served on every replica).
export const HISTORY_PAGE_SQL = `SELECT m.id, m.sender_id, m.content, m.sent_at, m.read, m.edited_at FROM messages m JOIN (
    SELECT id FROM messages WHERE chat_id = @chat AND sender_id = @me AND read = 0 AND id < @before
    UNION ALL
    SELECT id FROM messages WHERE chat_id = @chat AND sender_id = @me AND read = 1 AND id < @before
    UNION ALL
    SELECT id FROM messages WHERE chat_id = @chat AND sender_id = @other AND read = 1 AND id < @before
    ORDER BY id DESC LIMIT @n
  ) p ON p.id = m.id ORDER BY m.id DESC`;

/** The caller's chats with their unread counts and last message (ListChats). */
export const CHATS_VIEW_SQL = `SELECT ${CHAT_VIEW_COLUMNS} WHERE c.user_a = ? OR c.user_b = ? ORDER BY c.last_activity_at DESC, c.seq DESC`;

/**
 * The statements that lower `synchronous` to NORMAL around an apply and put the connection's level
 * back, or none when not lazy or when the file is not in WAL mode (NORMAL without WAL could tear).
 */
function lazyApplyStatements(
  db: Database.Database,
  lazy: boolean,
): { lazy: Database.Statement; restore: Database.Statement } | undefined {
  if (!lazy || db.memory) return undefined;
  if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return undefined;
  const level = Number(db.pragma('synchronous', { simple: true }));
  if (level <= 1) return undefined; // already OFF or NORMAL: nothing to lower
  return {
    lazy: db.prepare('PRAGMA synchronous = NORMAL'),
    restore: db.prepare(`PRAGMA synchronous = ${level}`),
  };
}

function prepareStatements(db: Database.Database) {
  return {
    getApplied: db.prepare('SELECT idx FROM applied WHERE id = 1').pluck(),
    setApplied: db.prepare('UPDATE applied SET idx = ? WHERE id = 1'),
    bumpSeq: db.prepare('UPDATE sequences SET value = value + 1 WHERE name = ? RETURNING value').pluck(),
    setSeq: db.prepare(
      'INSERT INTO sequences (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    ),
    pruneIdempotency: db.prepare('DELETE FROM idempotency WHERE at <= ?'),
    idempotencyByCaller: db.prepare(
      'SELECT result, actor FROM idempotency WHERE caller = ? AND method = ? AND key = ?',
    ),
    idempotencyByActor: db.prepare(
      'SELECT result, actor FROM idempotency WHERE actor = ? AND method = ? AND key = ? ORDER BY at LIMIT 1',
    ),
    idempotencyOfActor: db
      .prepare(
        'SELECT result FROM idempotency WHERE actor = ? AND method = ? AND key = ? AND at > ? ORDER BY at LIMIT 1',
      )
      .pluck(),
    saveIdempotency: db.prepare(
      'INSERT OR REPLACE INTO idempotency (caller, method, key, actor, at, result) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    setIdempotencyActor: db.prepare(
      'UPDATE idempotency SET actor = ? WHERE caller = ? AND method = ? AND key = ?',
    ),
    deleteIdempotencyOf: db.prepare('DELETE FROM idempotency WHERE caller = ?'),
    // Live at a time: expires_at is the first instant the session is dead.
    session: db.prepare(
      `SELECT s.user_id, u.username, s.expires_at, s.ttl_ms FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.token_hash = ? AND s.expires_at > ?`,
    ),
    // The row whatever its expiry: what the session cache keeps (liveness is judged per lookup).
    sessionByHash: db.prepare(
      `SELECT s.user_id, u.username, s.expires_at, s.ttl_ms FROM sessions s JOIN users u ON u.id = s.user_id
       WHERE s.token_hash = ?`,
    ),
    minSessionExpiry: db.prepare('SELECT MIN(expires_at) FROM sessions').pluck(),
    minIdempotencyAt: db.prepare('SELECT MIN(at) FROM idempotency').pluck(),
    insertSession: db.prepare(
      'INSERT INTO sessions (token_hash, user_id, created_at, expires_at, ttl_ms) VALUES (?, ?, ?, ?, ?)',
    ),
    refreshSession: db.prepare(
      'UPDATE sessions SET expires_at = MAX(expires_at, ? + ttl_ms) WHERE token_hash = ?',
    ),
    rotateSession: db.prepare(
      'UPDATE sessions SET token_hash = ?, expires_at = ?, ttl_ms = ? WHERE token_hash = ?',
    ),
    expiredSessions: db.prepare('SELECT token_hash FROM sessions WHERE expires_at <= ?').pluck(),
    deleteExpiredSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
    deleteSession: db.prepare('DELETE FROM sessions WHERE token_hash = ?'),
    deleteSessionsOf: db.prepare('DELETE FROM sessions WHERE user_id = ?'),
    userByKey: db.prepare('SELECT * FROM users WHERE username_key = ?'),
    userById: db.prepare('SELECT * FROM users WHERE id = ?'),
    userView: db.prepare(
      'SELECT u.username, u.nickname, COALESCE(s.view_limit, 6) AS view_limit FROM users u LEFT JOIN settings s ON s.user_id = u.id WHERE u.id = ?',
    ),
    allUsers: db.prepare(
      `SELECT u.username, u.nickname, COALESCE(s.view_limit, 6) AS view_limit FROM users u
       LEFT JOIN settings s ON s.user_id = u.id WHERE u.id <> ? ORDER BY u.username_key, u.username`,
    ),
    insertUser: db.prepare(
      'INSERT INTO users (id, username, username_key, nickname, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    deleteUser: db.prepare('DELETE FROM users WHERE id = ?'),
    viewLimit: db.prepare('SELECT view_limit FROM settings WHERE user_id = ?').pluck(),
    setViewLimit: db.prepare(
      'INSERT INTO settings (user_id, view_limit) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET view_limit = excluded.view_limit',
    ),
    deleteSettings: db.prepare('DELETE FROM settings WHERE user_id = ?'),
    chatById: db.prepare('SELECT id, user_a, user_b FROM chats WHERE id = ?'),
    chatByPair: db.prepare('SELECT id, user_a, user_b FROM chats WHERE user_a = ? AND user_b = ?'),
    chatsOf: db.prepare('SELECT id, user_a, user_b FROM chats WHERE user_a = ? OR user_b = ? ORDER BY seq'),
    insertChat: db.prepare(
      'INSERT INTO chats (id, seq, user_a, user_b, created_at, last_activity_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    touchChat: db.prepare('UPDATE chats SET last_activity_at = MAX(last_activity_at, ?) WHERE id = ?'),
    deleteChat: db.prepare('DELETE FROM chats WHERE id = ?'),
    chatView: db.prepare(`SELECT ${CHAT_VIEW_COLUMNS} WHERE (c.user_a = ? OR c.user_b = ?) AND c.id = ?`),
    chatsView: db.prepare(CHATS_VIEW_SQL),
    insertMessage: db.prepare(
      'INSERT INTO messages (id, chat_id, sender_id, content, sent_at, read) VALUES (?, ?, ?, ?, ?, 0)',
    ),
    messageView: db.prepare(`SELECT ${MESSAGE_COLUMNS} WHERE m.id = ?`),
    messageSender: db.prepare('SELECT sender_id FROM messages WHERE id = ? AND chat_id = ?').pluck(),
    deleteMessage: db.prepare('DELETE FROM messages WHERE id = ?'),
    deleteChatMessages: db.prepare('DELETE FROM messages WHERE chat_id = ?'),
    // Unread for the reader = sent by the other side and not read: (chat_id, sender_id, read, id).
    oldestUnreadIds: db
      .prepare('SELECT id FROM messages WHERE chat_id = ? AND sender_id = ? AND read = 0 ORDER BY id LIMIT ?')
      .pluck(),
    markOneRead: db.prepare('UPDATE messages SET read = 1 WHERE id = ?'),
    newestUnreadUpTo: db
      .prepare('SELECT MAX(id) FROM messages WHERE chat_id = ? AND sender_id = ? AND read = 0 AND id <= ?')
      .pluck(),
    markReadUpTo: db.prepare(
      'UPDATE messages SET read = 1 WHERE chat_id = ? AND sender_id = ? AND read = 0 AND id <= ?',
    ),
    editMessage: db.prepare('UPDATE messages SET content = ?, edited_at = ? WHERE id = ?'),
    unreadCount: db
      .prepare('SELECT COUNT(*) FROM messages WHERE chat_id = ? AND sender_id = ? AND read = 0')
      .pluck(),
    historyPage: db.prepare(HISTORY_PAGE_SQL).raw(),
    usernameById: db.prepare('SELECT username FROM users WHERE id = ?').pluck(),
  };
}
