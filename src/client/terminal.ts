// `quorum-chat client --server HOST:PORT[,HOST:PORT...]`: the interactive terminal client.
//
// One command per line (node:readline). On a TTY it shows a prompt and prints live events above it
// without garbling what the user is typing; with piped stdin it prints no prompt, runs the lines in
// order and exits at end of input, which is what the tests and scripts use.
import * as readline from 'node:readline';
import { type CommandSpec, parseFlags } from '../cli-flags.js';
import { TLS_CA_FLAG, clientChannelCredentials } from '../tls/credentials.js';
import { UserError } from '../user-error.js';
import {
  type Chat,
  ChatClient,
  ChatClientError,
  type ChatClientOptions,
  type ChatEvent,
  type Delivery,
  type Message,
  type Subscription,
} from './client.js';
import { parseAddressList } from './members.js';
import { CONTINUATION, oneLine, safeLine, textBlock } from './printable.js';

const help = `commands:
  signup <username> <password> [nickname]  create an account and log in (the nickname defaults to the username)
  login <username> <password>              log in; live messages appear as they arrive
  logout                                   log out (revokes this session everywhere)
  whoami                                   who is logged in, and the open chat
  users [pattern] [page]                   list users; pattern is a glob (* any run, ? one character)
  chats                                    your chats, most recent first, with unread counts
  open <user>  (or: chat <user>)           open the chat with a user (starting it if needed): shows the
                                           latest messages, then up to view-limit unread ones
  read [user]                              show the next view-limit unread messages of the open chat
  older  (or: more)                        show the page of messages before the oldest one shown
  send <text>                              send a message to the open chat (others see you typing)
  msg <user> <text>                        send a message to a user without opening the chat
  edit <id> <text>                         replace the text of one of your messages in the open chat
  delete <id> [id...]                      delete your own messages (ids as shown) in the open chat
  settings                                 show your settings
  set view-limit <n>                       how many unread messages one read shows (1 to 1000)
  delete-account <password>                delete your account and all your chats
  help                                     this list
  quit                                     leave (also: exit, Ctrl-D)`;

/** How many messages `open` and `older` show at a time. */
const HISTORY_PAGE = 20;
/** A typing:true is over after this long without a refresh (API.md). */
const TYPING_TTL_MS = 6000;
/** While the user types, SetTyping(true) is repeated at most this often. */
const TYPING_REFRESH_MS = 3000;

export interface TerminalOptions {
  addresses: string[];
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Show a prompt and redraw it around live events. Default: both streams are TTYs. */
  tty?: boolean;
  clientOptions?: ChatClientOptions;
  /** Injected for tests; default Date.now. */
  now?: () => number;
}

interface OpenChat {
  chatId: string;
  user: string;
  /** The oldest message id shown from the history; `older` pages back from it. */
  oldestId: number;
  hasMore: boolean;
  /**
   * Unread messages not delivered yet, as the last delivery (ReadMessages) left them; null until one
   * has answered. A live message is shown (and marked read up to its id) only when this is known to be
   * 0: otherwise older unread ones may wait, and MarkRead would mark them read unseen.
   */
  unread: number | null;
  /** Deliveries in flight. */
  delivering: number;
  /**
   * A live message of the other side was not shown since the last delivery started: the next
   * delivery, not this client's count, says whether it is still unread.
   */
  passedOver: boolean;
  /** The newest message of the other side shown here (and marked read). */
  newestShown: number;
}

/** The session state and the commands. Output goes through `print`, live events through `notify`. */
class Terminal {
  readonly client: ChatClient;
  private user: string | undefined;
  private open: OpenChat | undefined;
  private subscription: Subscription | undefined;
  /** chat_id → the other user's name, for events that carry only the chat id. */
  private readonly chatUsers = new Map<string, string>();
  /** Set when the connection was lost; cleared (with a notice) once a call succeeds again. */
  private lost: string | undefined;
  private probing = false;
  private quietStreamErrors = false;
  /** chat_id → until when the other side counts as typing. */
  private readonly typingUntil = new Map<string, number>();
  private typingSentAt = 0;
  private typingChat: string | undefined;
  private readonly now: () => number;
  busy = false;

  constructor(
    opts: TerminalOptions,
    private readonly print: (line: string) => void,
    private readonly notify: (line: string) => void,
  ) {
    this.now = opts.now ?? Date.now;
    this.client = new ChatClient(opts.addresses, {
      ...opts.clientOptions,
      // Called only after the operation succeeded on `to`: the connection works again.
      onFailover: (from, to) => this.reconnected(to, from),
    });
  }

  get prompt(): string {
    if (!this.user) return '> ';
    return this.open ? `${this.user}@${this.open.user}> ` : `${this.user}> `;
  }

  /** Runs one input line; returns false when the user asked to quit. */
  async run(line: string): Promise<boolean> {
    const text = line.trim();
    if (text === '' || text.startsWith('#')) return true;
    const [cmd] = text.split(/\s+/, 1);
    const rest = text.slice(cmd.length).trim();
    const args = rest === '' ? [] : rest.split(/\s+/);
    const before = this.client.successes;
    try {
      const go = await this.dispatch(cmd.toLowerCase(), args, rest);
      // Only a call that went through shows the connection works again ('help' proves nothing).
      if (this.lost && this.client.successes > before && this.client.address)
        this.reconnected(this.client.address);
      return go;
    } catch (err) {
      if (err instanceof ChatClientError) this.print(`Error: ${sentence(err.message)} (${err.codeName})`);
      else if (err instanceof UsageError) this.print(`Usage: ${err.message}`);
      else this.print(`Error: ${sentence(err instanceof Error ? err.message : String(err))}`);
      return true;
    }
  }

  /** A key was typed into the current line (TTY only): tell the other side, at most every few seconds. */
  onTyping(line: string): void {
    const open = this.open;
    if (!open || !/^send\s+\S/i.test(line)) return;
    const now = this.now();
    if (this.typingChat === open.chatId && now - this.typingSentAt < TYPING_REFRESH_MS) return;
    this.typingChat = open.chatId;
    this.typingSentAt = now;
    this.client.setTyping(open.chatId, true).catch(() => {}); // best effort
  }

  close(): void {
    this.stopTyping();
    this.subscription?.close();
    this.client.close();
  }

  private stopTyping(): void {
    const chat = this.typingChat;
    if (chat === undefined) return;
    this.typingChat = undefined;
    this.typingSentAt = 0;
    this.client.setTyping(chat, false).catch(() => {}); // best effort; it expires by itself anyway
  }

  private async dispatch(cmd: string, args: string[], rest: string): Promise<boolean> {
    switch (cmd) {
      case 'help':
      case '?':
        this.print(help);
        return true;
      case 'quit':
      case 'exit':
        return false;
      case 'signup': {
        const [username, password, ...nick] = args;
        if (!username || !password) throw new UsageError('signup <username> <password> [nickname]');
        const u = await this.client.signup(username, nick.join(' ') || username, password);
        this.print(`signed up as ${u.username} (${u.nickname})`);
        // As on the web page: a new account is logged in at once.
        await this.login([username, password]);
        return true;
      }
      case 'login':
        await this.login(args);
        return true;
      case 'logout':
        this.needLogin();
        this.stopTyping();
        await this.leaving(() => this.client.logout());
        this.print(`logged out ${this.user}`);
        this.user = undefined;
        this.open = undefined;
        return true;
      case 'whoami':
        this.print(
          this.user
            ? `${this.user}${this.open ? `, chat with ${this.open.user} open` : ''}`
            : 'not logged in',
        );
        return true;
      case 'users':
        await this.users(args);
        return true;
      case 'chats':
        await this.chats();
        return true;
      case 'open':
      case 'chat':
        if (args.length !== 1) throw new UsageError(`${cmd} <user>`);
        await this.openChat(args[0]);
        return true;
      case 'send': {
        if (!rest) throw new UsageError('send <text>');
        const open = this.needOpen();
        this.stopTyping();
        const m = await this.client.sendMessage(open.chatId, rest);
        this.print(`sent #${m.message_id}`);
        return true;
      }
      case 'msg': {
        const [to] = args;
        const content = rest.slice(to?.length ?? 0).trim();
        if (!to || !content) throw new UsageError('msg <user> <text>');
        const chat = await this.startChat(to);
        const m = await this.client.sendMessage(chat.chat_id, content);
        this.print(`sent #${m.message_id} to ${chat.other_user}`);
        return true;
      }
      case 'read':
        if (args.length > 1) throw new UsageError('read [user]');
        if (args.length === 1 && args[0].toLowerCase() !== this.open?.user.toLowerCase()) {
          await this.openChat(args[0]);
          return true;
        }
        await this.readUnread(this.needOpen());
        return true;
      case 'older':
      case 'more':
        if (args.length > 0) throw new UsageError(`${cmd}`);
        await this.older(this.needOpen());
        return true;
      case 'edit': {
        const open = this.needOpen();
        const id = Number((args[0] ?? '').replace(/^#/, ''));
        const content = rest.slice(args[0]?.length ?? 0).trim();
        if (!Number.isSafeInteger(id) || id <= 0 || !content) throw new UsageError('edit <id> <text>');
        const m = await this.client.editMessage(open.chatId, id, content);
        this.print(`edited #${m.message_id}`);
        return true;
      }
      case 'delete': {
        const open = this.needOpen();
        const ids = args.map((a) => Number(a.replace(/^#/, '')));
        if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
          throw new UsageError('delete <id> [id...]  (message ids as shown)');
        }
        const n = await this.client.deleteMessages(open.chatId, ids);
        this.print(`deleted ${n} message${n === 1 ? '' : 's'}`);
        return true;
      }
      case 'settings': {
        this.needLogin();
        const s = await this.client.getSettings();
        this.print(`view-limit: ${s.view_limit}`);
        return true;
      }
      case 'set': {
        const [key, value] = args;
        const n = Number(value);
        if (key !== 'view-limit' || args.length !== 2 || !Number.isInteger(n))
          throw new UsageError('set view-limit <n>');
        this.needLogin();
        const s = await this.client.updateSettings(n);
        this.print(`view-limit set to ${s.view_limit}`);
        return true;
      }
      case 'delete-account': {
        if (args.length !== 1) throw new UsageError('delete-account <password>');
        this.needLogin();
        this.stopTyping();
        await this.leaving(() => this.client.deleteAccount(args[0]));
        this.print(`account ${this.user} deleted`);
        this.user = undefined;
        this.open = undefined;
        return true;
      }
      default:
        this.print(`Unknown command '${oneLine(cmd)}'; type 'help' for the list.`);
        return true;
    }
  }

  /**
   * Runs a call that ends the session. The server ends our event stream as the session is revoked,
   * possibly before the call's reply arrives, so the stream's UNAUTHENTICATED is expected meanwhile and
   * not reported; the subscription is closed once the call succeeds.
   */
  private async leaving(call: () => Promise<void>): Promise<void> {
    this.quietStreamErrors = true;
    try {
      await call();
      this.subscription?.close();
      this.subscription = undefined;
    } finally {
      this.quietStreamErrors = false;
    }
  }

  private async login(args: string[]): Promise<void> {
    const [username, password] = args;
    if (!username || !password || args.length !== 2) throw new UsageError('login <username> <password>');
    this.stopTyping();
    this.subscription?.close();
    const r = await this.client.login(username, password);
    this.user = r.user.username;
    this.open = undefined;
    this.chatUsers.clear();
    this.typingUntil.clear();
    this.print(`logged in as ${r.user.username} (${oneLine(r.user.nickname)})`);
    this.subscription = this.client.subscribe({
      onEvent: (e) => this.onEvent(e),
      onDisconnect: (address) => this.disconnected(address),
      onReconnect: () => this.probe(),
      onError: (e) => {
        if (!this.quietStreamErrors)
          this.notify(`Error: ${sentence(e.message)} (${e.codeName}); live updates stopped.`);
      },
    });
    const chats = await this.client.listChats();
    for (const c of chats) this.chatUsers.set(c.chat_id, c.other_user);
    const unread = chats.filter((c) => c.unread_count > 0);
    if (unread.length > 0) {
      const total = unread.reduce((n, c) => n + c.unread_count, 0);
      this.print(
        `${total} unread message${total === 1 ? '' : 's'} from ${unread.map((c) => c.other_user).join(', ')}`,
      );
    }
  }

  private async users(args: string[]): Promise<void> {
    this.needLogin();
    const pattern = args[0] ?? '';
    const page = args[1] === undefined ? 1 : Number(args[1]);
    if (args.length > 2 || !Number.isInteger(page) || page < 1)
      throw new UsageError('users [pattern] [page]');
    const r = await this.client.listUsers({ pattern, page });
    for (const u of r.users) this.print(`  ${u.username} (${oneLine(u.nickname)})`);
    const pages = Math.max(1, r.total_pages);
    this.print(`page ${r.page || page} of ${pages}, ${r.total_count} user${r.total_count === 1 ? '' : 's'}`);
  }

  private async chats(): Promise<void> {
    this.needLogin();
    const chats = await this.client.listChats();
    if (chats.length === 0) {
      this.print('no chats yet; start one with: open <user>');
      return;
    }
    for (const c of chats) {
      this.chatUsers.set(c.chat_id, c.other_user);
      const unread = c.unread_count > 0 ? `  ${c.unread_count} unread` : '';
      const last = c.last_message_at > 0 ? `  last ${when(c.last_message_at, this.now())}` : '';
      this.print(`  ${c.other_user} (${oneLine(c.other_nickname)})${unread}${last}`);
    }
  }

  /** Opens a chat: the latest page of history (GetMessages), then the first batch of unread ones. */
  private async openChat(username: string): Promise<void> {
    this.stopTyping();
    const chat = await this.startChat(username);
    const open: OpenChat = {
      chatId: chat.chat_id,
      user: chat.other_user,
      oldestId: 0,
      hasMore: false,
      unread: null,
      delivering: 0,
      passedOver: false,
      newestShown: 0,
    };
    this.open = open;
    this.print(`chat with ${chat.other_user} (${oneLine(chat.other_nickname)})`);
    const page = await this.client.getMessages(open.chatId, { limit: HISTORY_PAGE });
    if (this.open !== open) return;
    if (page.has_more) this.print("  (older messages: type 'older')");
    this.showHistory(open, page.messages, page.has_more);
    if (page.messages.length === 0 && chat.unread_count === 0) this.print('  no messages yet');
    if (chat.unread_count > 0) await this.readUnread(open);
    // Otherwise the count stays unknown: the chat's count was taken when StartChat applied, and live
    // messages that arrived before the chat opened here were only announced. The first live message
    // now asks ReadMessages rather than marking everything up to it read.
  }

  private showHistory(open: OpenChat, messages: Message[], hasMore: boolean): void {
    for (const m of messages) {
      this.print(this.formatMessage(m));
      if (m.sender !== this.user) open.newestShown = Math.max(open.newestShown, m.message_id);
    }
    if (messages.length > 0) open.oldestId = messages[0].message_id;
    open.hasMore = hasMore;
  }

  /**
   * ReadMessages: the next view-limit unread messages, now marked read. They are printed even if the
   * user has opened another chat meanwhile: marked read, they would not come again. `auto`: started by
   * a live message, not by a command, so it prints through `notify` and says nothing when empty.
   */
  private async readUnread(open: OpenChat, auto = false): Promise<void> {
    const out = auto ? this.notify : this.print;
    open.delivering++;
    open.passedOver = false;
    let batch: Delivery;
    try {
      batch = await this.client.readMessages(open.chatId);
    } catch (err) {
      // Nothing is known about what waits: the next live message asks again.
      open.passedOver = true;
      throw err;
    } finally {
      open.delivering--;
    }
    if (batch.messages.length === 0) {
      if (!auto) out('  no unread messages');
    } else out(`  -- unread${this.open === open ? '' : ` (chat with ${open.user})`} --`);
    for (const m of batch.messages) {
      out(this.formatMessage(m));
      open.newestShown = Math.max(open.newestShown, m.message_id);
    }
    open.unread = batch.unread_remaining;
    if (batch.unread_remaining > 0) {
      out(`${batch.unread_remaining} more unread; type 'read' for the next ones`);
    } else if (open.passedOver && open.delivering === 0 && this.open === open) {
      // A live message came during this delivery: it may be newer than what the delivery saw.
      this.deliverLive(open);
    }
  }

  /** A delivery a live message started: its failure is a notice, not a command's error. */
  private deliverLive(open: OpenChat): void {
    this.readUnread(open, true).catch((err) => {
      const text = err instanceof Error ? err.message : String(err);
      this.notify(`Error: ${sentence(text)}; type 'read' for the new messages.`);
    });
  }

  private async older(open: OpenChat): Promise<void> {
    if (open.oldestId === 0 || !open.hasMore) {
      this.print('  no older messages');
      return;
    }
    const page = await this.client.getMessages(open.chatId, { beforeId: open.oldestId, limit: HISTORY_PAGE });
    if (page.messages.length === 0) this.print('  no older messages');
    this.showHistory(open, page.messages, page.has_more);
    if (page.has_more) this.print("  (more: type 'older' again)");
  }

  private async startChat(username: string): Promise<Chat> {
    this.needLogin();
    const chat = await this.client.startChat(username);
    this.chatUsers.set(chat.chat_id, chat.other_user);
    return chat;
  }

  private formatMessage(m: Message): string {
    const mine = m.sender === this.user;
    const seen = mine && m.read ? '  (read)' : '';
    const edited = m.edited_at ? '  (edited)' : '';
    return `  #${m.message_id} ${when(m.sent_at, this.now())} ${m.sender}: ${textBlock(m.content, CONTINUATION)}${edited}${seen}`;
  }

  private onEvent(e: ChatEvent): void {
    switch (e.event) {
      case 'message_received': {
        const m = e.message_received;
        if (m.sender === this.user) return; // our own message, sent from here or another session
        this.chatUsers.set(m.chat_id, m.sender);
        this.typingUntil.delete(m.chat_id);
        const open = this.open;
        if (open?.chatId !== m.chat_id) {
          // Its text comes through ReadMessages, at most view-limit at a time, as on the web page.
          this.notify(`new message #${m.message_id} from ${m.sender}; type 'read ${m.sender}' to see it`);
          return;
        }
        // Shown already: it came with a delivery before its event.
        if (m.message_id <= open.newestShown) return;
        if (open.unread === 0 && open.delivering === 0 && !open.passedOver) {
          // Shown in the open chat with nothing older waiting: it has been read, so say so.
          this.notify(this.formatMessage(m));
          open.newestShown = m.message_id;
          this.client.markRead(m.chat_id, m.message_id).catch(() => {
            // Still unread on the server: it comes again with the next 'read'.
          });
          return;
        }
        open.passedOver = true;
        if (open.delivering > 0) return; // the delivery in flight asks again when it ends
        if (open.unread === null || open.unread === 0) {
          this.deliverLive(open);
          return;
        }
        open.unread++;
        this.notify(
          `new message #${m.message_id} from ${m.sender}; ${open.unread} unread, type 'read' for the next ones`,
        );
        return;
      }
      case 'message_edited': {
        const m = e.message_edited;
        if (m.sender === this.user) return;
        // An unread message's text is not shown before it is delivered. In the open chat, everything
        // up to the newest message shown has been shown or read: deliveries go oldest first.
        const open = this.open;
        const seen = m.read || (open?.chatId === m.chat_id && m.message_id <= open.newestShown);
        this.notify(
          seen
            ? `${m.sender} edited #${m.message_id}: ${textBlock(m.content, CONTINUATION)}`
            : `${m.sender} edited #${m.message_id} (unread)`,
        );
        return;
      }
      case 'messages_read': {
        const r = e.messages_read;
        if (r.reader === this.user) return;
        this.notify(`${r.reader} read your messages up to #${r.up_to_id}`);
        return;
      }
      case 'typing': {
        const t = e.typing;
        if (t.username === this.user) return;
        const was = (this.typingUntil.get(t.chat_id) ?? 0) > this.now();
        if (t.typing) this.typingUntil.set(t.chat_id, this.now() + TYPING_TTL_MS);
        else this.typingUntil.delete(t.chat_id);
        // One line when someone starts typing; a refresh or the end says nothing more.
        if (t.typing && !was) this.notify(`${t.username} is typing…`);
        return;
      }
      case 'messages_deleted': {
        const d = e.messages_deleted;
        const who = this.chatUsers.get(d.chat_id) ?? 'someone';
        const n = d.message_ids.length;
        if (who !== this.user) this.notify(`${who} deleted ${n} message${n === 1 ? '' : 's'}`);
        return;
      }
      case 'chat_removed': {
        const id = e.chat_removed.chat_id;
        const who = this.chatUsers.get(id) ?? 'a user';
        this.chatUsers.delete(id);
        if (this.open?.chatId === id) this.open = undefined;
        this.notify(`the chat with ${who} was removed (account deleted)`);
        return;
      }
      case 'chat_started': {
        const c = e.chat_started;
        // A chat we started ourselves is already known; only announce one the other side started.
        if (this.chatUsers.has(c.chat_id)) return;
        this.chatUsers.set(c.chat_id, c.other_user);
        this.notify(`${c.other_user} (${oneLine(c.other_nickname)}) started a chat with you`);
        return;
      }
    }
  }

  /** The event stream broke: say so once; "reconnected" waits until a call succeeds again. */
  private disconnected(address: string): void {
    if (this.lost) return;
    this.lost = address;
    this.notify(`(lost the connection to ${address}; retrying)`);
  }

  /**
   * The stream is open again, which only shows that one replica accepts connections: a call that needs
   * the cluster (ListChats goes through ReadIndex, so a leader must answer) confirms it serves.
   */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      for (let i = 0; i < 60 && this.lost && this.user && this.subscription; i++) {
        try {
          await this.client.listChats();
          if (this.client.address) this.reconnected(this.client.address);
          return;
        } catch {
          // Not serving yet (no leader, or unreachable); the library already backed off.
        }
      }
    } finally {
      this.probing = false;
    }
  }

  private reconnected(address: string, from?: string): void {
    if (!this.lost && from === undefined) return;
    this.lost = undefined;
    this.notify(`(reconnected to ${address})`);
  }

  private needLogin(): void {
    if (!this.user) throw new Error('Not logged in; use login <username> <password> (or signup first).');
  }

  private needOpen(): OpenChat {
    this.needLogin();
    if (!this.open) throw new Error('No chat is open; use open <user> first.');
    return this.open;
  }
}

class UsageError extends Error {}

/** One sentence: starts with a capital letter and ends with a period (servers of older builds did not). */
function sentence(text: string): string {
  const t = text.trim();
  if (t === '') return 'The call failed.';
  const first = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

const two = (n: number) => String(n).padStart(2, '0');

/** HH:MM:SS for today; an earlier day gets its date in front, so the time is never lost. */
export function when(ms: number, now: number): string {
  const d = new Date(ms);
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  if (d.toDateString() === new Date(now).toDateString()) return time;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
}

/** Runs the terminal client on the given streams until quit or end of input; returns the exit code. */
export async function runTerminal(opts: TerminalOptions): Promise<number> {
  const out = opts.output;
  const tty =
    opts.tty ??
    ((out as { isTTY?: boolean }).isTTY === true && (opts.input as { isTTY?: boolean }).isTTY === true);
  const rl = readline.createInterface({ input: opts.input, output: tty ? out : undefined, terminal: tty });
  const print = (line: string) => out.write(`${safeLine(line)}\n`);
  let term: Terminal | undefined;
  // A live event must not land in the middle of what the user is typing: clear the prompt line, print
  // the event, then redraw the prompt with the user's partial input (prompt(true) keeps the cursor).
  const notify = (line: string) => {
    if (!tty || term?.busy) {
      print(line);
      return;
    }
    readline.clearLine(out, 0);
    readline.cursorTo(out, 0);
    print(line);
    rl.prompt(true);
  };
  term = new Terminal(opts, print, notify);
  rl.on('SIGINT', () => rl.close());
  if (tty) {
    // readline has consumed the key by the time this runs, so rl.line is the line as typed so far.
    opts.input.on('keypress', () => setImmediate(() => term?.onTyping(rl.line)));
  }
  if (tty) {
    print("quorum chat: type 'help' for commands");
    rl.setPrompt(term.prompt);
    rl.prompt();
  }
  try {
    for await (const line of rl) {
      term.busy = true;
      const go = await term.run(line);
      term.busy = false;
      if (!go) break;
      if (tty) {
        rl.setPrompt(term.prompt);
        rl.prompt();
      }
    }
  } finally {
    rl.close();
    term.close();
  }
  return 0;
}

export const clientCommand: CommandSpec = {
  name: 'client',
  synopsis: ['client --server HOST:PORT[,HOST:PORT...] [--tls-ca-file FILE]'],
  about: 'The interactive terminal client. It fails over between the replicas it knows.',
  flags: {
    server: { short: 's', value: 'HOST:PORT,...', help: 'one or more replicas (required)' },
    ...TLS_CA_FLAG,
  },
  notes: `once running, type these ${help}`,
};

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags(clientCommand, argv) as { server?: string; 'tls-ca-file'?: string };
  const addresses = parseAddressList(values.server ?? '');
  if (addresses.length === 0) throw new UserError('client: --server HOST:PORT[,HOST:PORT...] is required');
  for (const a of addresses) {
    if (!/^[^\s:]+:\d{1,5}$/.test(a) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(a)) {
      throw new UserError(`client: '${a}' is not HOST:PORT`);
    }
  }
  const credentials = clientChannelCredentials(values['tls-ca-file']);
  return runTerminal({
    addresses,
    input: process.stdin,
    output: process.stdout,
    clientOptions: { credentials },
  });
}
