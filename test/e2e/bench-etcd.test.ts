// `quorum-chat bench --etcd` end to end at tiny sizes: a local etcd 3.4 (Debian's etcd-server, at
// /usr/bin/etcd; CI installs it) and Quorum Chat driven in one run by the same driver, the four figures
// of each and the ratios in the results file. It checks that the figures are there, never that they are
// fast. Without etcd the test fails (it says how to install it).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { etcdMissingReason } from '../../src/bench/etcd.js';
import { launcherPath, serverMissingReason } from '../../src/server/local-cluster.js';

const dir = fs.mkdtempSync(join(os.tmpdir(), 'qc-bench-etcd-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('bench --etcd', () => {
  it('measures etcd and Quorum Chat in one run and writes both with the ratios', async () => {
    expect(serverMissingReason()).toBeUndefined();
    expect(etcdMissingReason()).toBeUndefined();
    const out = join(dir, 'results.json');
    const args = ['bench', '--etcd', '--skip-reads', '--size', '3', '--clients', '6', '--seconds', '2'];
    args.push('--single-seconds', '1', '--failover-trials', '1', '--out', out);
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(launcherPath, args, { timeout: 200_000, cwd: dir }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /\[etcd\] failover 1\/1: killed etcd\d, next write acknowledged after [\d.]+ ms/,
    );
    expect(r.stdout).toMatch(/figure \| etcd \| quorum-chat \| quorum-chat\/etcd/);
    const res = JSON.parse(fs.readFileSync(out, 'utf8'));
    for (const f of [res.etcd, res]) {
      expect(f.load.perSecond).toBeGreaterThan(0);
      expect(f.load.latency.p99).toBeGreaterThanOrEqual(f.load.latency.p50);
      expect(f.single.latency.p50).toBeGreaterThan(0);
      expect(f.failover.medianMs).toBeGreaterThan(0);
    }
    expect(res.ratios.writesPerSecond).toBeGreaterThan(0);
    expect(res.ratios.failoverMedian).toBeGreaterThan(0);
  });
});
