// The terminal client as users run it: `bin/quorum-chat client` processes with piped stdin, two users
// chatting through a real `bin/quorum-chat server`. Needs `npm run build` (or `make build`) first.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterClient } from '../../src/client/client.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const launcher = join(root, 'bin', 'quorum-chat');
const built = existsSync(join(root, 'dist', 'src', 'server', 'main.js'));

interface Proc {
  name: string;
  child: ChildProcess;
  out: string;
  exit: Promise<number | null>;
}

const procs: Proc[] = [];

function start(name: string, args: string[], stdin: 'pipe' | 'ignore'): Proc {
  const child = spawn(launcher, args, { stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
  const p: Proc = { name, child, out: '', exit: new Promise((r) => child.on('exit', (code) => r(code))) };
  child.stdout?.on('data', (d: Buffer) => {
    p.out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    p.out += d.toString();
  });
  procs.push(p);
  return p;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls until `cond` holds; fails with `what` and the process output after `timeoutMs`. */
async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await cond()) return;
    if (Date.now() > end) {
      const dump = procs.map((p) => `--- ${p.name} ---\n${p.out.slice(-2000)}`).join('\n');
      throw new Error(`timed out waiting for ${what}\n${dump}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A terminal client: `type` sends lines, `expectLine` waits for an output line matching. */
function terminal(name: string, server: string) {
  const p = start(name, ['client', '--server', server], 'pipe');
  const lines = () => p.out.split('\n');
  return {
    proc: p,
    lines,
    type: (...l: string[]) => p.child.stdin?.write(l.map((x) => `${x}\n`).join('')),
    expectLine: async (match: string | RegExp, from = 0) => {
      const ok = (l: string) => (typeof match === 'string' ? l === match : match.test(l));
      await until(() => lines().slice(from).some(ok), `${name} to print ${match}`);
      return lines().findIndex((l, i) => i >= from && ok(l));
    },
    end: () => p.child.stdin?.end(),
  };
}

/** `bin/quorum-chat server` as a single-member cluster; resolves once it leads. */
async function startServer(name: string, port: number, dataDir: string): Promise<Proc> {
  const httpPort = await freePort();
  const address = `127.0.0.1:${port}`;
  const proc = start(
    name,
    ['server', '--id', 's1', '--port', String(port), '--http-port', String(httpPort), '--data-dir', dataDir],
    'ignore',
  );
  const status = new ClusterClient([address], { statusTimeoutMs: 500 });
  try {
    await until(async () => {
      try {
        return (await status.getStatus()).role === 'leader';
      } catch {
        return false;
      }
    }, `${name} to lead`);
  } finally {
    status.close();
  }
  return proc;
}

describe('terminal client against a real server', () => {
  let dir = '';
  let server: Proc;
  let address = '';

  beforeAll(async () => {
    if (!built) throw new Error('bin/quorum-chat is not built (dist/ is missing); run npm run build first');
    dir = mkdtempSync(join(tmpdir(), 'qc-terminal-'));
    const port = await freePort();
    address = `127.0.0.1:${port}`;
    server = await startServer('server', port, join(dir, 's1'));
  });

  afterAll(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid) {
        process.kill(p.child.pid, p === server ? 'SIGTERM' : 'SIGKILL');
      }
    }
    await Promise.race([Promise.all(procs.map((p) => p.exit)), new Promise((r) => setTimeout(r, 10_000))]);
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid)
        process.kill(p.child.pid, 'SIGKILL');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lets two users sign up, chat live, read, delete, change settings and delete an account', async () => {
    const alice = terminal('alice', address);
    const bob = terminal('bob', address);

    // Sign-up logs in at once.
    alice.type('signup alice password1 Alice');
    await alice.expectLine('signed up as alice (Alice)');
    await alice.expectLine('logged in as alice (Alice)');
    bob.type('signup alice whatever123', 'signup bob password2 Bob');
    await bob.expectLine(/^Error: [A-Z].+\. \(ALREADY_EXISTS\)$/);
    await bob.expectLine('logged in as bob (Bob)');

    alice.type('users', 'open bob', 'send hello bob');
    await alice.expectLine('  bob (Bob)');
    await alice.expectLine('chat with bob (Bob)');
    await alice.expectLine('  no messages yet');
    const sentAt = await alice.expectLine(/^sent #\d+$/);
    const firstId = Number(alice.lines()[sentAt].slice('sent #'.length));

    // Live, through Subscribe: bob sees the chat start and the message without asking. Its text comes
    // with ReadMessages (the view limit holds), so the notice only says that it is there.
    await bob.expectLine('alice (Alice) started a chat with you');
    await bob.expectLine(`new message #${firstId} from alice; type 'read alice' to see it`);
    let mark = bob.lines().length - 1;
    bob.type('chats');
    await bob.expectLine(/^ {2}alice \(Alice\) {2}1 unread/, mark);
    mark = bob.lines().length - 1;
    // Opening the chat delivers the unread message (ReadMessages) and marks it read...
    bob.type('read alice');
    await bob.expectLine(new RegExp(`^ {2}#${firstId} \\d\\d:\\d\\d:\\d\\d alice: hello bob$`), mark);
    // ...which alice sees live as a read receipt.
    await alice.expectLine(`bob read your messages up to #${firstId}`);
    bob.type('msg alice hi alice', 'set view-limit 0', 'set view-limit 2', 'settings');
    await bob.expectLine(/^sent #\d+ to alice$/);
    await bob.expectLine(/^Error: [A-Z].+\. \(INVALID_ARGUMENT\)$/);
    await bob.expectLine('view-limit set to 2');
    await bob.expectLine('view-limit: 2');

    // Alice has the chat open and nothing unread: bob's reply shows in it at once and is marked read.
    const replyAt = await alice.expectLine(/^ {2}#\d+ \d\d:\d\d:\d\d bob: hi alice$/);
    const replyId = Number(/#(\d+)/.exec(alice.lines()[replyAt])?.[1]);
    await bob.expectLine(`alice read your messages up to #${replyId}`);

    // An edit reaches bob live, and the history shows it as edited (and read).
    alice.type(`edit ${firstId} hello bob, edited`);
    await alice.expectLine(`edited #${firstId}`);
    await bob.expectLine(`alice edited #${firstId}: hello bob, edited`);
    mark = alice.lines().length - 1;
    alice.type('open bob');
    await alice.expectLine(
      new RegExp(`^ {2}#${firstId} .* alice: hello bob, edited {2}\\(edited\\) {2}\\(read\\)$`),
      mark,
    );
    await alice.expectLine(new RegExp(`^ {2}#${replyId} .* bob: hi alice$`), mark);
    alice.type(`delete ${firstId}`);
    await alice.expectLine('deleted 1 message');
    await bob.expectLine('alice deleted 1 message');

    bob.type('delete-account password2');
    await bob.expectLine('account bob deleted');
    await alice.expectLine('the chat with bob was removed (account deleted)');
    mark = alice.lines().length - 1;
    alice.type('chats', 'open bob');
    await alice.expectLine('no chats yet; start one with: open <user>', mark);
    await alice.expectLine(/^Error: [A-Z].+\. \(NOT_FOUND\)$/, mark);

    alice.type('logout');
    await alice.expectLine('logged out alice');
    alice.end();
    bob.end();
    expect(await alice.proc.exit).toBe(0);
    expect(await bob.proc.exit).toBe(0);
    // Nothing else went wrong on either side: every error line is one the script provoked.
    const errors = [...alice.lines(), ...bob.lines()].filter((l) => l.startsWith('Error'));
    expect(errors, errors.join('\n')).toHaveLength(3);
  });

  it('pages back through a long chat with older', async () => {
    const erin = terminal('erin', address);
    const finn = terminal('finn', address);
    erin.type('signup erin password5');
    finn.type('signup finn password6');
    await erin.expectLine('logged in as erin (erin)');
    await finn.expectLine('logged in as finn (finn)');
    // 45 messages: the latest 20 show on open, then two pages of older ones.
    erin.type('open finn', ...Array.from({ length: 45 }, (_, i) => `send n${i + 1}`));
    await erin.expectLine(/^sent #\d+$/);
    await until(() => erin.lines().filter((l) => /^sent #\d+$/.test(l)).length === 45, '45 sends');
    let mark = erin.lines().length - 1;
    erin.type('open finn');
    await erin.expectLine(/ erin: n45$/, mark);
    const shown = () =>
      erin
        .lines()
        .slice(mark)
        .filter((l) => / erin: n\d+$/.test(l))
        .map((l) => l.split(': ')[1]);
    expect(shown()).toEqual(Array.from({ length: 20 }, (_, i) => `n${i + 26}`));
    expect(erin.lines().slice(mark)).toContain("  (older messages: type 'older')");
    mark = erin.lines().length - 1;
    erin.type('older');
    await erin.expectLine("  (more: type 'older' again)", mark);
    expect(shown()).toEqual(Array.from({ length: 20 }, (_, i) => `n${i + 6}`));
    mark = erin.lines().length - 1;
    erin.type('older');
    await erin.expectLine(/ erin: n5$/, mark);
    expect(shown()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    mark = erin.lines().length - 1;
    erin.type('older');
    await erin.expectLine('  no older messages', mark);
    erin.end();
    finn.end();
    expect(await erin.proc.exit).toBe(0);
    expect(await finn.proc.exit).toBe(0);
  });

  it('keeps the session through a server crash: a one-line notice, then live messages again', async () => {
    const carol = terminal('carol', address);
    const dave = terminal('dave', address);
    carol.type('signup carol password3');
    dave.type('signup dave password4');
    await carol.expectLine('logged in as carol (carol)');
    await dave.expectLine('logged in as dave (dave)');
    dave.type('msg carol before the crash');
    const beforeAt = await dave.expectLine(/^sent #\d+ to carol$/);
    const beforeId = Number(/#(\d+)/.exec(dave.lines()[beforeAt])?.[1]);
    const beforeNotice = `new message #${beforeId} from dave; type 'read dave' to see it`;
    await carol.expectLine(beforeNotice);

    // kill -9 and restart on the same port and data dir: the stream breaks, the client resumes.
    process.kill(server.child.pid!, 'SIGKILL');
    await server.exit;
    server = await startServer('server-restarted', Number(address.split(':')[1]), join(dir, 's1'));
    await carol.expectLine(`(lost the connection to ${address}; retrying)`);
    await carol.expectLine(`(reconnected to ${address})`);

    // The token survives the restart (it is replicated state), and so do the chat and its messages.
    const mark = carol.lines().length - 1;
    dave.type('msg carol after the crash');
    const afterAt = await dave.expectLine(/^sent #\d+ to carol$/, beforeAt + 1);
    const afterId = Number(/#(\d+)/.exec(dave.lines()[afterAt])?.[1]);
    await carol.expectLine(`new message #${afterId} from dave; type 'read dave' to see it`, mark);
    carol.type('read dave');
    await carol.expectLine(/^ {2}#\d+ .* dave: before the crash$/, mark);
    await carol.expectLine(/^ {2}#\d+ .* dave: after the crash$/, mark);
    carol.end();
    dave.end();
    expect(await carol.proc.exit).toBe(0);
    expect(await dave.proc.exit).toBe(0);
    // Each message was shown live exactly once: no replay after the resume.
    expect(carol.lines().filter((l) => l === beforeNotice)).toHaveLength(1);
    expect(carol.lines().filter((l) => l.startsWith('Error'))).toEqual([]);
  });
});
