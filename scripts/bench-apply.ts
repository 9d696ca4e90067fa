// Micro-benchmark of the chat state machine's apply (figures only, never assertions): what one applied
// SendMessage costs in-process, and what one authentication lookup costs (every call on the leader
// makes one for the rate limits).
//
//   npx tsx scripts/bench-apply.ts [--commands 20000] [--batch 16] [--rounds 5] [--dir DIR]
//                                  [--baseline /work/main] [--only on|off|baseline] [--count]
//
// Each store is a fresh SQLite file as a replica has it (WAL, synchronous=FULL, the lazy applied index),
// with 64 users logged in and 32 chats; then `--commands` SendMessage entries with idempotency keys, one
// millisecond apart, are applied in batches of `--batch`, spread over the users. Variants, alternated
// round by round so that the machine's other load hits each alike:
//   on        this tree's ChatStore (expiry floors and session cache)
//   off       this tree's ChatStore with { shortcuts: false } (every prune and lookup in SQL)
//   baseline  the ChatStore of another checkout (--baseline DIR: DIR/src/chat/store.ts), if given
// Reported per variant: the median and range over the rounds of wall and CPU µs per command, and µs per
// authenticate() call (64 users' tokens, round-robin). With --count, no timing: one run per variant
// that counts the store's prepared-statement executions per command instead (deterministic, so it
// shows what a change saves where the machine's noise hides it; BEGIN/COMMIT/SAVEPOINT not included).

import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import type { Entry } from '../machines/protocol.js';
import type { Command } from '../src/chat/commands.js';
import { ChatStore } from '../src/chat/store.js';
import { tokenHash } from '../src/chat/tokens.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const COMMANDS = Number(arg('commands', '20000'));
const BATCH = Number(arg('batch', '16'));
const ROUNDS = process.argv.includes('--count') ? 1 : Number(arg('rounds', '5'));
const USERS = 64;
const T0 = 1_700_000_000_000;
const root = fs.mkdtempSync(join(arg('dir', tmpdir()), 'qc-bench-apply-'));

/** The part of ChatStore this bench drives (also what an older checkout's store offers). */
interface Store {
  apply(entries: Entry[]): unknown[];
  appliedIndex(): number;
  authenticate(hash: string, now: number): unknown;
  close(): void;
  db: { prepare(sql: string): { pluck(): { get(...a: unknown[]): unknown } } };
}
type Make = (file: string) => Store;

const variants: [string, Make][] = [
  ['on', (f) => new ChatStore(f)],
  ['off', (f) => new ChatStore(f, { shortcuts: false })],
];
const baseline = arg('baseline', '');
if (baseline) {
  const mod = (await import(pathToFileURL(resolve(baseline, 'src/chat/store.ts')).href)) as {
    ChatStore: new (f: string) => Store;
  };
  variants.push(['baseline', (f) => new mod.ChatStore(f)]);
}

/** --count: every statement prepared from now on counts its executions. */
let executed = 0;
if (process.argv.includes('--count')) {
  type Stmt = Record<string, (...a: unknown[]) => unknown>;
  const proto = Database.prototype as unknown as { prepare: (...a: unknown[]) => Stmt };
  const prepare = proto.prepare;
  proto.prepare = function (this: unknown, ...a: unknown[]) {
    const st = prepare.apply(this, a);
    for (const m of ['run', 'get', 'all', 'iterate']) {
      const f = st[m];
      st[m] = function (this: unknown, ...b: unknown[]) {
        executed++;
        return f.apply(this, b);
      };
    }
    return st;
  };
}

let files = 0;
function entries(from: number, cmds: Command[]): Entry[] {
  return cmds.map((c, i) => ({ index: from + i, term: 1, kind: 'command', data: JSON.stringify(c) }));
}

function setUp(make: Make): { store: Store; actors: string[]; chats: string[] } {
  const store = make(join(root, `s${files++}.sqlite`));
  const actors: string[] = [];
  const cmds: Command[] = [];
  for (let u = 0; u < USERS; u++) {
    cmds.push({ type: 'signup', at: T0, username: `user${u}`, nickname: `u${u}`, passwordHash: 'scrypt$x' });
  }
  store.apply(entries(1, cmds));
  const logins: Command[] = [];
  for (let u = 0; u < USERS; u++) {
    const userId = store.db.prepare('SELECT id FROM users WHERE username = ?').pluck().get(`user${u}`);
    const hash = tokenHash(`bench-token-${u}-0123456789abcdefghij`);
    actors.push(hash);
    logins.push({
      type: 'login',
      at: T0,
      username: `user${u}`,
      userId: userId as number,
      tokenHash: hash,
      ttlMs: 30 * 24 * 3_600_000,
      idempotencyKey: `login-${u}`,
    });
  }
  store.apply(entries(store.appliedIndex() + 1, logins));
  const starts: Command[] = [];
  for (let u = 0; u < USERS / 2; u++) {
    starts.push({ type: 'startChat', at: T0, actor: actors[u], username: `user${u + USERS / 2}` });
  }
  store.apply(entries(store.appliedIndex() + 1, starts));
  const chats = Array.from({ length: USERS / 2 }, (_, i) => `c${i + 1}`);
  return { store, actors, chats };
}

interface Figures {
  statements: number;
  wallUs: number;
  cpuUs: number;
  authUs: number;
}

function measure(make: Make): Figures {
  const { store, actors, chats } = setUp(make);
  const all: Command[] = [];
  for (let n = 0; n < COMMANDS; n++) {
    const u = n % USERS;
    all.push({
      type: 'sendMessage',
      at: T0 + 1000 + n,
      actor: actors[u],
      chatId: chats[u % (USERS / 2)],
      content: `message ${n} ${'x'.repeat(90)}`,
      idempotencyKey: `k-${n}`,
    });
  }
  const batches: Entry[][] = [];
  let next = store.appliedIndex() + 1;
  for (let i = 0; i < all.length; i += BATCH) {
    const chunk = entries(next, all.slice(i, i + BATCH));
    next += chunk.length;
    batches.push(chunk);
  }
  const executed0 = executed;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const b of batches) store.apply(b);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const statements = (executed - executed0) / COMMANDS;
  const lookups = 100_000;
  const now = T0 + 1000 + COMMANDS;
  const a0 = performance.now();
  for (let i = 0; i < lookups; i++) store.authenticate(actors[i % USERS], now);
  const auth = performance.now() - a0;
  store.close();
  return {
    statements,
    wallUs: (wall * 1000) / COMMANDS,
    cpuUs: (cpu.user + cpu.system) / COMMANDS,
    authUs: (auth * 1000) / lookups,
  };
}

// --only NAME: one variant (for a --cpu-prof of it alone).
const only = arg('only', '');
const chosen = only ? variants.filter(([name]) => name === only) : variants;
const results = new Map<string, Figures[]>(chosen.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, make] of chosen) results.get(name)?.push(measure(make));
}

if (process.argv.includes('--count')) {
  for (const [name, figs] of results) {
    console.log(`${name.padEnd(9)} ${figs[0].statements.toFixed(2)} statements per command`);
  }
  fs.rmSync(root, { recursive: true, force: true });
  process.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs: number[], digits = 1) =>
  `${median(xs).toFixed(digits).padStart(6)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
console.log(
  `${COMMANDS} SendMessage commands in batches of ${BATCH}, ${USERS} users, ${ROUNDS} rounds (median, range)`,
);
console.log('variant   wall µs/command        CPU µs/command         µs/authenticate');
for (const [name, figs] of results) {
  console.log(
    `${name.padEnd(9)} ${fmt(figs.map((f) => f.wallUs)).padEnd(22)} ${fmt(figs.map((f) => f.cpuUs)).padEnd(22)} ${fmt(
      figs.map((f) => f.authUs),
      2,
    )}`,
  );
}
fs.rmSync(root, { recursive: true, force: true });
