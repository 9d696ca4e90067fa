// `quorum-chat bench` end to end at tiny sizes: the read phase seeds its chats, measures GetMessages on
// the leader only and spread over the replicas, runs the mixed workload, and writes every figure into
// the results file. It checks that the figures are there and positive, never that they are fast.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { launcherPath, serverMissingReason } from '../../src/server/local-cluster.js';

const dir = fs.mkdtempSync(join(os.tmpdir(), 'qc-bench-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function runBench(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // On timeout execFile sends SIGTERM to this pid (the launcher execs node), and the bench stops its
    // cluster on SIGTERM.
    const child = execFile(
      launcherPath,
      ['bench', ...args],
      { timeout: timeoutMs, cwd: dir },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

function expectPositiveFigures(f: {
  ok: number;
  perSecond: number;
  latency: { count: number; p50: number; p99: number };
  errors: Record<string, number>;
}): void {
  expect(f.ok).toBeGreaterThan(0);
  expect(f.perSecond).toBeGreaterThan(0);
  expect(f.latency.count).toBeGreaterThan(0);
  expect(f.latency.p50).toBeGreaterThan(0);
  expect(f.latency.p99).toBeGreaterThanOrEqual(f.latency.p50);
  // Pages come back full: the seeding made every message visible to both readers.
  expect(f.errors.SHORT_PAGE).toBeUndefined();
}

describe('bench read phase', () => {
  it('reports GetMessages and mixed figures on the console and in the results file', async () => {
    expect(serverMissingReason()).toBeUndefined();
    const out = join(dir, 'results.json');
    const r = await runBench(
      [
        '--size',
        '3',
        '--clients',
        '8',
        '--seconds',
        '2',
        '--single-seconds',
        '0',
        '--failover-trials',
        '0',
        '--read-chat-sizes',
        '50,200',
        '--out',
        out,
      ],
      200_000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/chat of 200 messages: seeded 200 in [\d.]+ s/);
    expect(r.stdout).toMatch(/ratio p50\(200\)\/p50\(50\): leader only [\d.]+, spread [\d.]+/);
    expect(r.stdout).toMatch(/ratio mixed ops\/s \/ write-only writes\/s: [\d.]+/);

    const res = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(res.load.perSecond).toBeGreaterThan(0);
    const reads = res.reads;
    expect(reads.clients).toBe(8);
    expect(reads.replicas).toBe(3);
    expect(reads.chats.map((c: { size: number }) => c.size)).toEqual([50, 200]);
    for (const c of reads.chats) {
      expect(c.seed.messages).toBe(c.size);
      expect(c.seed.ms).toBeGreaterThan(0);
      expectPositiveFigures(c.leaderOnly);
      expectPositiveFigures(c.spread);
      expect(c.leaderOnly.byKind.GetMessages).toBe(c.leaderOnly.ok);
      expect(c.spreadOverLeader).toBeGreaterThan(0);
    }
    expectPositiveFigures(reads.mixed);
    expect(reads.mixed.byKind.GetMessages).toBeGreaterThan(0);
    expect(reads.mixed.byKind.GetMessages + (reads.mixed.byKind.SendMessage ?? 0)).toBe(reads.mixed.ok);
    expect(reads.ratios.p50LargestOverSmallest.leaderOnly).toBeGreaterThan(0);
    expect(reads.ratios.p50LargestOverSmallest.spread).toBeGreaterThan(0);
    expect(reads.ratios.spreadOverLeader['50']).toBeGreaterThan(0);
    expect(reads.ratios.spreadOverLeader['200']).toBeGreaterThan(0);
    expect(reads.ratios.mixedOverWriteOnly).toBeGreaterThan(0);
    expect(typeof reads.clean).toBe('boolean');
  });
});
