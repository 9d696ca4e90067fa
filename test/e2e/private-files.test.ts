// Private files through the real `bin/quorum-chat server` (issue 13, finding 4): started from a shell
// with umask 022, the data dir and every file in it (database, WAL, SHM, marker, snapshots) and the
// cluster secret are owner-only; a data dir whose modes were loosened later is made private again at
// the next start, with a log line. Needs `npm run build` first.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../../src/proto.js';
import { freePort } from '../../src/server/local-cluster.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const launcher = join(root, 'bin', 'quorum-chat');

interface Proc {
  child: ChildProcess;
  stderr: string;
  exit: Promise<number | null>;
}
const started: Proc[] = [];

/** The server as a shell with umask 022 starts it (exec: the pid is the server's). */
function serve(args: string[]): Proc {
  const child = spawn('/bin/sh', ['-c', 'umask 022 && exec "$0" "$@"', launcher, 'server', ...args], {
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

function call<T>(client: grpc.Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...a: unknown[]) => void>)[method].call(
      client,
      req,
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (e: Error | null, r: T) => (e ? reject(e) : resolve(r)),
    );
  });
}

/** Polls GetStatus until `ok` holds (bounded in count and time). */
async function statusUntil(
  address: string,
  proc: Proc,
  ok: (s: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const stub = new (services().ClusterService)(address, grpc.credentials.createInsecure());
  try {
    const end = Date.now() + 20_000;
    for (let i = 0; i < 1000 && Date.now() < end; i++) {
      if (proc.child.exitCode !== null) throw new Error(`server exited early: ${proc.stderr}`);
      const s = await call<Record<string, unknown>>(stub, 'GetStatus', {}).catch(() => undefined);
      if (s && ok(s)) return s;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`server on ${address} did not get there: ${proc.stderr}`);
  } finally {
    stub.close();
  }
}

async function stop(proc: Proc): Promise<void> {
  proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    proc.exit,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('server did not stop')), 15_000);
    }),
  ]).finally(() => clearTimeout(timer));
  expect(code).toBe(0);
}

/** `relative/path mode` for the tree under `dir`, itself included. */
function modes(base: string, dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    out.push(`${p.slice(base.length) || '/'} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) visit(join(p, n));
  };
  visit(dir);
  return out;
}

function allPrivate(base: string, dir: string): string[] {
  return modes(base, dir).map((l) => {
    const path = l.slice(0, l.lastIndexOf(' '));
    return `${path} ${fs.statSync(join(base, path)).isDirectory() ? '700' : '600'}`;
  });
}

let base: string;
beforeAll(() => {
  if (!fs.existsSync(join(root, 'dist', 'src', 'server', 'main.js'))) {
    throw new Error('the server is not built: run `npm run build` before the e2e tests');
  }
  base = fs.mkdtempSync(join(tmpdir(), 'qc-e2e-private-'));
});

afterAll(async () => {
  for (const p of started) {
    if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid)
      process.kill(p.child.pid, 'SIGKILL');
  }
  fs.rmSync(base, { recursive: true, force: true });
});

describe('private data dir (real server under umask 022)', () => {
  it('creates everything owner-only, and makes a loosened data dir private again at start-up', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const dir = join(base, 'data', 'n1');
    const args = [
      '--id',
      'n1',
      '--port',
      String(port),
      '--http-port',
      String(httpPort),
      '--data-dir',
      dir,
      '--snapshot-every',
      '3',
    ];
    const address = `127.0.0.1:${port}`;
    let proc = serve(args);
    await statusUntil(address, proc, (s) => s.role === 'leader');
    // A few writes, so that the replica takes a snapshot (every 3 entries).
    const chat = new (services().ChatService)(address, grpc.credentials.createInsecure());
    try {
      for (const name of ['alice', 'bob', 'carol']) {
        await call(chat, 'Signup', { username: name, nickname: name, password: 'password1' });
      }
    } finally {
      chat.close();
    }
    await statusUntil(address, proc, (s) => Number(s.snapshot_index) > 0);
    const names = fs.readdirSync(dir).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        'quorum-chat.json',
        'replica.sqlite',
        'replica.sqlite-shm',
        'replica.sqlite-wal',
        'snapshots',
      ]),
    );
    expect(fs.readdirSync(join(dir, 'snapshots'))).toContain('snapshot.meta');
    // The parent it created holds the cluster secret: private too.
    const parent = join(base, 'data');
    expect(modes(base, parent)).toEqual(allPrivate(base, parent));
    expect(modes(base, join(parent, 'cluster.secret'))).toEqual(['/data/cluster.secret 600']);
    expect(modes(base, dir)).toContain('/data/n1/replica.sqlite-wal 600');
    expect(proc.stderr).not.toContain('readable by other local users');
    await stop(proc);

    // Loosen everything, as an old version or a careless copy would have left it.
    const loosen = (p: string) => {
      const st = fs.lstatSync(p);
      fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) loosen(join(p, n));
    };
    loosen(parent);
    expect(modes(base, dir)).toContain('/data/n1/replica.sqlite 644');

    proc = serve(args);
    await statusUntil(address, proc, (s) => s.role === 'leader');
    expect(modes(base, dir)).toEqual(allPrivate(base, dir));
    expect(modes(base, join(parent, 'cluster.secret'))).toEqual(['/data/cluster.secret 600']);
    const lines = proc.stderr.split('\n').filter((l) => l.includes('readable by other local users'));
    expect(lines.length).toBe(2); // one for the data dir, one for the secret
    expect(lines[0]).toContain(dir);
    await stop(proc);
  });
});
