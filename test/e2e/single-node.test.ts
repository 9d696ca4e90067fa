// The real `bin/quorum-chat server` process, single node: serve, stop on SIGTERM with exit 0, restart
// from the same data dir with everything still there, and one-line failures for bad starts.
// Needs `npm run build` (or `make build`) first.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../../src/proto.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const launcher = join(root, 'bin', 'quorum-chat');

interface Proc {
  child: ChildProcess;
  stderr: string;
  exit: Promise<number | null>;
}

const started: Proc[] = [];

function run(args: string[]): Proc {
  const child = spawn(launcher, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CI: '1' },
  });
  const proc: Proc = {
    child,
    stderr: '',
    exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  child.stderr?.on('data', (d: Buffer) => {
    proc.stderr += d.toString();
  });
  started.push(proc);
  return proc;
}

/** A port that was free a moment ago (bind to 0, read it, close). */
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

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r?: unknown) => void,
) => void;

function rpc<T>(stub: grpc.Client, method: string, req: unknown, token?: string): Promise<T> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    (stub as unknown as Record<string, Unary>)[method].call(
      stub,
      req,
      md,
      { deadline: Date.now() + 5000 },
      (e, r) => (e ? reject(e) : resolve(r as T)),
    );
  });
}

/** Polls GetStatus until the server answers (bounded in count and time). */
/** Polls GetStatus until the lone replica has elected itself: it starts as a follower and becomes leader
 * after one election timeout, so the first answer may still say "follower". */
async function waitServing(address: string, proc: Proc): Promise<Record<string, unknown>> {
  const stub = new (services().ClusterService)(address, grpc.credentials.createInsecure());
  try {
    const end = Date.now() + 20_000;
    for (let i = 0; i < 400 && Date.now() < end; i++) {
      if (proc.child.exitCode !== null) throw new Error(`server exited early: ${proc.stderr}`);
      try {
        const status = await rpc<Record<string, unknown>>(stub, 'GetStatus', {});
        if (status.role === 'leader') return status;
      } catch {
        // not serving yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`server on ${address} did not start and lead: ${proc.stderr}`);
  } finally {
    stub.close();
  }
}

let dir: string;
beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'src', 'server', 'main.js'))) {
    throw new Error('the server is not built: run `npm run build` (or `make build`) before the e2e tests');
  }
  dir = mkdtempSync(join(tmpdir(), 'qc-e2e-single-'));
});

afterAll(async () => {
  for (const p of started) {
    if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid) {
      process.kill(p.child.pid, 'SIGKILL');
      await withTimeout(p.exit, 10_000, 'killed server exit').catch(() => {});
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('bin/quorum-chat server (single node)', () => {
  it('serves, stops on SIGTERM with exit 0, and restarts with all data', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const args = [
      'server',
      '--id',
      'solo',
      '--port',
      String(port),
      '--data-dir',
      join(dir, 'solo'),
      '--http-port',
      String(await freePort()),
    ];
    const first = run(args);
    const status0 = await waitServing(address, first);
    expect(status0).toMatchObject({ node_id: 'solo', role: 'leader', address });

    const chat = new (services().ChatService)(address, grpc.credentials.createInsecure());
    await rpc(chat, 'Signup', { username: 'alice', nickname: 'Alice', password: 'password123' });
    await rpc(chat, 'Signup', { username: 'bob', nickname: 'Bob', password: 'password123' });
    const { token: alice } = await rpc<{ token: string }>(chat, 'Login', {
      username: 'alice',
      password: 'password123',
    });
    const { token: bob } = await rpc<{ token: string }>(chat, 'Login', {
      username: 'bob',
      password: 'password123',
    });
    const c = await rpc<{ chat_id: string }>(chat, 'StartChat', { username: 'bob' }, alice);
    await rpc(chat, 'SendMessage', { chat_id: c.chat_id, content: 'first' }, alice);
    await rpc(chat, 'SendMessage', { chat_id: c.chat_id, content: 'second' }, alice);
    await rpc(chat, 'UpdateSettings', { view_limit: 1 }, bob);
    const got = await rpc<{ messages: { content: string }[]; unread_remaining: number }>(
      chat,
      'ReadMessages',
      { chat_id: c.chat_id },
      bob,
    );
    expect(got.messages.map((m) => m.content)).toEqual(['first']);
    expect(got.unread_remaining).toBe(1);
    const before = await waitServing(address, first);
    chat.close();

    first.child.kill('SIGTERM');
    expect(await withTimeout(first.exit, 15_000, 'SIGTERM exit')).toBe(0);

    const second = run(args);
    const after = await waitServing(address, second);
    // A restarted one-member cluster elects itself again and commits a noop of its new term, so the
    // applied index may grow by that entry; the user-visible state (the digest) must be identical.
    expect(after.last_applied).toBeGreaterThanOrEqual(before.last_applied as number);
    expect(after.state_digest).toBe(before.state_digest);
    const chat2 = new (services().ChatService)(address, grpc.credentials.createInsecure());
    // The old tokens are still valid after the restart; the read flags and settings survived.
    const chats = await rpc<{ chats: { chat_id: string; unread_count: number }[] }>(
      chat2,
      'ListChats',
      {},
      bob,
    );
    expect(chats.chats).toEqual([
      expect.objectContaining({ chat_id: c.chat_id, unread_count: 1, other_user: 'alice' }),
    ]);
    expect(await rpc(chat2, 'GetSettings', {}, bob)).toEqual({ view_limit: 1 });
    // History holds what bob has read; delivery picks up where it stopped before the restart.
    const history = await rpc<{ messages: { content: string }[]; has_more: boolean }>(
      chat2,
      'GetMessages',
      { chat_id: c.chat_id },
      bob,
    );
    expect(history).toMatchObject({ messages: [{ content: 'first' }], has_more: false });
    const again = await rpc<{ messages: { content: string }[]; unread_remaining: number }>(
      chat2,
      'ReadMessages',
      { chat_id: c.chat_id },
      bob,
    );
    expect(again.messages.map((m) => m.content)).toEqual(['second']);
    expect(again.unread_remaining).toBe(0);
    const dup = await rpc(chat2, 'Signup', {
      username: 'ALICE',
      nickname: 'x',
      password: 'password123',
    }).catch((e) => e);
    expect((dup as grpc.ServiceError).code).toBe(grpc.status.ALREADY_EXISTS);

    // A second server on the same port fails in one line.
    const clash = run(['server', '--id', 'other', '--port', String(port), '--data-dir', join(dir, 'other')]);
    expect(await withTimeout(clash.exit, 15_000, 'port clash exit')).not.toBe(0);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    expect(clash.stderr).toMatch(/in use/);

    chat2.close();
    second.child.kill('SIGINT');
    expect(await withTimeout(second.exit, 15_000, 'SIGINT exit')).toBe(0);
  });

  it('exits non-zero with one line for a bad flag, a foreign data dir and another node’s data dir', async () => {
    const port = await freePort();
    const bad = run(['server', '--id', 'x', '--port', String(port), '--no-such-flag', '1']);
    expect(await withTimeout(bad.exit, 15_000, 'bad flag exit')).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toEqual([
      "quorum-chat: server: unknown flag --no-such-flag; see 'quorum-chat server --help'",
    ]);

    const f = mkdtempSync(join(dir, 'foreign-'));
    writeFileSync(join(f, 'notes.txt'), 'not a replica');
    const fp = run(['server', '--id', 'x', '--port', String(port), '--data-dir', f]);
    expect(await withTimeout(fp.exit, 15_000, 'foreign dir exit')).not.toBe(0);
    expect(fp.stderr.trim().split('\n')).toHaveLength(1);
    expect(fp.stderr).toMatch(/not a quorum-chat data dir/);

    const own = join(dir, 'owned');
    const a = run([
      'server',
      '--id',
      'a',
      '--port',
      String(port),
      '--data-dir',
      own,
      '--http-port',
      String(await freePort()),
    ]);
    await waitServing(`127.0.0.1:${port}`, a);
    a.child.kill('SIGTERM');
    expect(await withTimeout(a.exit, 15_000, 'exit')).toBe(0);
    const b = run(['server', '--id', 'b', '--port', String(port), '--data-dir', own]);
    expect(await withTimeout(b.exit, 15_000, 'wrong node exit')).not.toBe(0);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
    expect(b.stderr).toMatch(/belongs to node 'a'/);
  });
});
