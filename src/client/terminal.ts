// `quorum-chat client --server HOST:PORT[,HOST:PORT...]`: the interactive terminal client.
//
// One command per line (node:readline). On a TTY it shows a prompt and prints live events above it
// without garbling what the user is typing; with piped stdin it prints no prompt, runs the lines in
// order and exits at end of input, which is what the tests and scripts use.
import * as readline from 'node:readline';
import { type CommandSpec, parseFlags } from '../cli-flags.js';
import { UserError } from '../user-error.js';
import {
  type Chat,
  ChatClient,
  ChatClientError,
  type ChatClientOptions,
  type ChatEvent,
  type Message,
  type Subscription,
} from './client.js';
import { parseAddressList } from './members.js';

const help = `commands:
  signup <username> <password> [nickname]  create an account (the nickname defaults to the username)
  login <username> <password>              log in; live messages appear as they arrive
  logout                                   log out (revokes this session everywhere)
  whoami                                   who is logged in, and the open chat
  users [pattern] [page]                   list users; pattern is a glob (* any run, ? one character)
  chats                                    your chats, most recent first, with unread counts
  open <user>  (or: chat <user>)           open the chat with a user, starting it if needed
  send <text>                              send a message to the open chat
  msg <user> <text>                        send a message to a user without opening the chat
  read [user]                              show the open chat; marks up to view-limit unread as read
  delete <id> [id...]                      delete your own messages (ids as shown by read) in the open chat
  settings                                 show your settings
  set view-limit <n>                       how many unread messages one read shows (1 to 1000)
  delete-account <password>                delete your account and all your chats
  help                                     this list
  quit                                     leave (also: exit, Ctrl-D)`;

export interface TerminalOptions {
  addresses: string[];
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Show a prompt and redraw it around live events. Default: both streams are TTYs. */
  tty?: boolean;
  clientOptions?: ChatClientOptions;
}

interface OpenChat {
  chatId: string;
  user: string;
}

/** The session state and the commands. Output goes through `print`, live events through `notify`. */
class Terminal {
  readonly client: ChatClient;
  private user: string | undefined;
  private open: OpenChat | undefined;
  private subscription: Subscription | undefined;
  /** chat_id → the other user's name, for events that carry only the chat id. */
  private readonly chatUsers = new Map<string, string>();
  private lastNoticeAddress: string | undefined;
  private quietStreamErrors = false;
  busy = false;

  constructor(
    opts: TerminalOptions,
    private readonly print: (line: string) => void,
    private readonly notify: (line: string) => void,
  ) {
    this.client = new ChatClient(opts.addresses, {
      ...opts.clientOptions,
      onFailover: (_from, to) => this.noticeAddress(to),
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
    try {
      return await this.dispatch(cmd.toLowerCase(), args, rest);
    } catch (err) {
      if (err instanceof ChatClientError) this.print(`error: ${err.codeName}: ${err.message}`);
      else if (err instanceof UsageError) this.print(`usage: ${err.message}`);
      else this.print(`error: ${err instanceof Error ? err.message : String(err)}`);
      return true;
    }
  }

  close(): void {
    this.subscription?.close();
    this.client.close();
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
        this.print(`signed up as ${u.username} (${u.nickname}); now: login ${u.username} <password>`);
        return true;
      }
      case 'login':
        await this.login(args);
        return true;
      case 'logout':
        this.needLogin();
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
      case 'chat': {
        if (args.length !== 1) throw new UsageError(`${cmd} <user>`);
        const chat = await this.startChat(args[0]);
        this.open = { chatId: chat.chat_id, user: chat.other_user };
        const unread =
          chat.unread_count > 0
            ? `${chat.unread_count} unread; type 'read' to show them`
            : 'no unread messages';
        this.print(`opened chat with ${chat.other_user} (${chat.other_nickname}): ${unread}`);
        return true;
      }
      case 'send': {
        if (!rest) throw new UsageError('send <text>');
        const open = this.needOpen();
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
        await this.read(args);
        return true;
      case 'delete': {
        const open = this.needOpen();
        const ids = args.map((a) => Number(a.replace(/^#/, '')));
        if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
          throw new UsageError('delete <id> [id...]  (message ids as shown by read)');
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
        await this.leaving(() => this.client.deleteAccount(args[0]));
        this.print(`account ${this.user} deleted`);
        this.user = undefined;
        this.open = undefined;
        return true;
      }
      default:
        this.print(`unknown command '${cmd}'; type 'help' for the list`);
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
    this.subscription?.close();
    const r = await this.client.login(username, password);
    this.user = r.user.username;
    this.open = undefined;
    this.chatUsers.clear();
    this.print(`logged in as ${r.user.username} (${r.user.nickname})`);
    this.subscription = this.client.subscribe({
      onEvent: (e) => this.onEvent(e),
      onReconnect: (address) => this.noticeAddress(address),
      onError: (e) => {
        if (!this.quietStreamErrors) this.notify(`error: ${e.codeName}: ${e.message} (live updates stopped)`);
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
    for (const u of r.users) this.print(`  ${u.username} (${u.nickname})`);
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
      const last = c.last_message_at > 0 ? `  last ${clock(c.last_message_at)}` : '';
      this.print(`  ${c.other_user} (${c.other_nickname})${unread}${last}`);
    }
  }

  private async read(args: string[]): Promise<void> {
    if (args.length > 1) throw new UsageError('read [user]');
    if (args.length === 1) {
      const chat = await this.startChat(args[0]);
      this.open = { chatId: chat.chat_id, user: chat.other_user };
    }
    const open = this.needOpen();
    const page = await this.client.getMessages(open.chatId);
    if (page.messages.length === 0) this.print(`no messages with ${open.user} yet`);
    for (const m of page.messages) this.print(this.formatMessage(m));
    if (page.unread_remaining > 0) {
      this.print(`${page.unread_remaining} more unread; type 'read' again to see them`);
    }
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
    return `  #${m.message_id} ${clock(m.sent_at)} ${m.sender}: ${m.content}${seen}`;
  }

  private onEvent(e: ChatEvent): void {
    switch (e.event) {
      case 'message_received': {
        const m = e.message_received;
        if (m.sender === this.user) return; // our own message, sent from here or another session
        this.chatUsers.set(m.chat_id, m.sender);
        this.notify(`new message from ${m.sender}: ${m.content}`);
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
        this.notify(`${c.other_user} (${c.other_nickname}) started a chat with you`);
        return;
      }
    }
  }

  private noticeAddress(address: string): void {
    if (address === this.lastNoticeAddress) return;
    this.lastNoticeAddress = address;
    this.notify(`(reconnected to ${address})`);
  }

  private needLogin(): void {
    if (!this.user) throw new Error('not logged in; login <username> <password> (or signup first)');
  }

  private needOpen(): OpenChat {
    this.needLogin();
    if (!this.open) throw new Error('no chat is open; open <user> first');
    return this.open;
  }
}

class UsageError extends Error {}

function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Runs the terminal client on the given streams until quit or end of input; returns the exit code. */
export async function runTerminal(opts: TerminalOptions): Promise<number> {
  const out = opts.output;
  const tty =
    opts.tty ??
    ((out as { isTTY?: boolean }).isTTY === true && (opts.input as { isTTY?: boolean }).isTTY === true);
  const rl = readline.createInterface({ input: opts.input, output: tty ? out : undefined, terminal: tty });
  const print = (line: string) => out.write(`${line}\n`);
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
  synopsis: ['client --server HOST:PORT[,HOST:PORT...]'],
  about: 'The interactive terminal client. It fails over between the replicas it knows.',
  flags: {
    server: { short: 's', value: 'HOST:PORT,...', help: 'one or more replicas (required)' },
  },
  notes: `once running, type these ${help}`,
};

export async function main(argv: string[]): Promise<number> {
  const values = parseFlags(clientCommand, argv) as { server?: string };
  const addresses = parseAddressList(values.server ?? '');
  if (addresses.length === 0) throw new UserError('client: --server HOST:PORT[,HOST:PORT...] is required');
  for (const a of addresses) {
    if (!/^[^\s:]+:\d{1,5}$/.test(a) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(a)) {
      throw new UserError(`client: '${a}' is not HOST:PORT`);
    }
  }
  return runTerminal({ addresses, input: process.stdin, output: process.stdout });
}
