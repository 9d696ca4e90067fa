// A replica runs from a production-only install: `npm ci --omit=dev` into a temp copy of package.json
// and package-lock.json, with the built dist/, bin/, proto/ and diagrams/ beside it. Anything the server
// imports at run time but package.json lists as a devDependency (as grpc-health-check once was) makes
// this replica fail to start. The install builds better-sqlite3 (about 1.5 min); one for the whole file.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { services } from '../../src/proto.js';
import {
  type ClusterStatus,
  freePort,
  projectRoot,
  serverMissingReason,
  unary,
  waitFor,
} from '../../src/server/local-cluster.js';

const run = promisify(execFile);

describe('production-only install', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;

  beforeAll(async () => {
    expect(serverMissingReason()).toBeUndefined();
    dir = mkdtempSync(join(tmpdir(), 'qc-prod-'));
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(projectRoot, f), join(dir, f));
    for (const d of ['dist', 'bin', 'proto', 'diagrams']) {
      cpSync(join(projectRoot, d), join(dir, d), { recursive: true });
    }
    await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], {
      cwd: dir,
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  }, 660_000);

  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has the runtime dependencies and none of the dev-only ones', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    // The lock marks packages only dev dependencies need (`dev: true`); some, like @types/node, are
    // also pulled in by runtime ones and rightly stay.
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    for (const name of Object.keys(pkg.dependencies)) {
      expect(existsSync(join(dir, 'node_modules', name)), name).toBe(true);
    }
    const devOnly = Object.keys(pkg.devDependencies).filter((n) => lock.packages[`node_modules/${n}`]?.dev);
    expect(devOnly).toContain('vitest');
    for (const name of devOnly) expect(existsSync(join(dir, 'node_modules', name)), name).toBe(false);
  });

  it('starts a replica that serves GetStatus and stops cleanly', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    let stderr = '';
    child = spawn(
      join(dir, 'bin', 'quorum-chat'),
      [
        'server',
        '--id',
        'p1',
        '--port',
        String(port),
        '--http-port',
        String(httpPort),
        '--data-dir',
        join(dir, 'data', 'p1'),
      ],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const c = child;
    exited = new Promise((resolve) => c.once('exit', (code) => resolve(code)));
    const stub = new (services().ClusterService)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const s = await waitFor(
        async () => {
          if (c.exitCode !== null) throw new Error(`the replica exited with ${c.exitCode}: ${stderr}`);
          const st = await unary<ClusterStatus>(stub, 'GetStatus', {}, { deadlineMs: 1000 });
          return st.role === 'leader' ? st : undefined;
        },
        { timeoutMs: 30_000, what: 'the production replica to lead its one-member cluster' },
      );
      expect(s.node_id).toBe('p1');
      expect(s.members).toEqual([{ id: 'p1', address: `127.0.0.1:${port}`, voter: true }]);
      expect(await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
    } finally {
      stub.close();
    }
    process.kill(c.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
  });
});
