// `quorum-chat cluster` (`make run`): starts N replicas on consecutive ports, waits for an N-voter
// cluster, prints the status table, the web UI URLs and the client command; SIGTERM stops them all
// and exits 0; run again on the same data dir, it restarts them from disk.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { services } from '../../src/proto.js';
import { freePort, launcherPath, portIsFree, unary } from '../../src/server/local-cluster.js';
import { type ClusterStatus, waitFor } from './harness.js';
import { describeWithServer } from './support/checks.js';

const size = 3;

/** A base port P with P..P+size-1 and their HTTP ports (+1000) all free. */
async function consecutivePorts(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await freePort();
    if (p + size + 1000 > 65_535) continue;
    const all = Array.from({ length: size }, (_, i) => [p + i, p + i + 1000]).flat();
    const free = await Promise.all(all.map((q) => portIsFree(q)));
    if (free.every(Boolean)) return p;
  }
  throw new Error('no run of free ports found');
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function runCluster(base: number, dataDir: string): Run {
  let text = '';
  const child = spawn(
    launcherPath,
    ['cluster', '--size', String(size), '--base-port', String(base), '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (d) => {
    text += d;
  });
  child.stderr?.on('data', (d) => {
    text += d;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => text, exited };
}

function pidsIn(text: string): number[] {
  return [...text.matchAll(/\(pid (\d+),/g)].map((m) => Number(m[1]));
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeWithServer('quorum-chat cluster (make run)', () => {
  let root = '';
  const started: Run[] = [];
  const serverPids: number[] = [];
  afterEach(async () => {
    for (const r of started)
      if (r.child.exitCode === null && r.child.pid) process.kill(r.child.pid, 'SIGKILL');
    for (const pid of serverPids) if (running(pid)) process.kill(pid, 'SIGKILL');
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('forms a cluster of N voters, stops cleanly on SIGTERM, and restarts from its data dirs', async () => {
    root = fs.mkdtempSync(join(os.tmpdir(), 'qc-cluster-cmd-'));
    const dataDir = join(root, 'data');
    const base = await consecutivePorts();
    const addresses = Array.from({ length: size }, (_, i) => `127.0.0.1:${base + i}`);

    for (const round of ['fresh', 'restart']) {
      const run = runCluster(base, dataDir);
      started.push(run);
      await waitFor(() => run.output().includes('make run-client') || run.child.exitCode !== null, {
        timeoutMs: 90_000,
        what: `the ${round} cluster to report ready`,
      });
      const out = run.output();
      expect(run.child.exitCode, out).toBeNull();
      expect(out).toContain(`make run-client SERVER=${addresses.join(',')}`);
      for (let i = 0; i < size; i++) expect(out).toContain(`http://127.0.0.1:${base + i + 1000}/`);
      const pids = pidsIn(out);
      expect(pids).toHaveLength(size);
      serverPids.push(...pids);
      for (let i = 0; i < size; i++) expect(fs.existsSync(join(dataDir, `server${i + 1}`))).toBe(true);

      const { ClusterService } = services();
      const client = new ClusterService(addresses[0], grpc.credentials.createInsecure());
      try {
        const s = await unary<ClusterStatus>(client, 'GetStatus', {});
        expect(
          s.members
            .filter((m) => m.voter)
            .map((m) => m.address)
            .sort(),
        ).toEqual([...addresses].sort());
      } finally {
        client.close();
      }

      process.kill(run.child.pid!, 'SIGTERM');
      const code = await Promise.race([
        run.exited,
        new Promise<'hung'>((r) => setTimeout(r, 30_000, 'hung')),
      ]);
      expect(code, run.output()).toBe(0);
      for (const pid of pids) expect(running(pid), `server pid ${pid}`).toBe(false);
    }
  });
});
