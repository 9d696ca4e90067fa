// Disk health as etcd reports it: a replica logs each fsync over --slow-fsync-ms as a warning with its
// duration, counts it in /metrics next to the fsync histogram, and GetStatus carries its recent fsync
// p99, the slow count and its event-loop lag (what `quorum-chat status` and /cluster show).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareDataDir } from '../../src/server/data-dir.js';
import type { ReplicaOptions, RunningReplica } from '../../src/server/replica.js';
import { jsonLines } from '../support/json-lines.js';
import { rpc, startTestNode, stubs } from './server-fixture.js';

describe('disk health', () => {
  let replica: RunningReplica | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await replica?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A one-member cluster in a temp data dir (real fsyncs), with its HTTP server, once it leads. */
  async function startOne(more: Partial<ReplicaOptions> = {}): Promise<RunningReplica> {
    dir = mkdtempSync(join(tmpdir(), 'qc-disk-'));
    const dataDir = join(dir, 'n1');
    prepareDataDir(dataDir, 'n1');
    replica = await startTestNode({ dataDir, httpPort: 0, ...more });
    return replica;
  }

  it('warns about slow fsyncs, counts them in /metrics and reports p99s in GetStatus and /cluster', async () => {
    const { sink, lines } = jsonLines();
    const r = await startOne({
      // Every real fsync takes longer than 0 ms: each one is "slow" here.
      slowFsyncMs: 0,
      logger: pino({ level: 'warn' }, sink),
    });

    const warnings = lines.filter((l) => String(l.msg).startsWith('slow fsync: '));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ level: 40, slow_fsync_ms: 0 });
    expect(warnings[0].fsync_ms).toBeGreaterThanOrEqual(0);
    expect(String(warnings[0].msg)).toMatch(/^slow fsync: \d+\.\d ms \(over 0 ms\)/);

    const { cluster } = stubs(r.address);
    const st = await rpc<Record<string, number>>(cluster, 'GetStatus', {});
    cluster.close();
    expect(st.error).toBeUndefined();
    expect(st.response!.slow_fsyncs).toBeGreaterThanOrEqual(warnings.length);
    expect(st.response!.fsync_p99_ms).toBeGreaterThan(0);
    expect(st.response!.event_loop_lag_p99_ms).toBeGreaterThan(0);

    const text = await (await fetch(`http://127.0.0.1:${r.http!.port}/metrics`)).text();
    expect(text).toContain('# TYPE qc_raft_log_slow_fsyncs_total counter');
    expect(Number(/^qc_raft_log_slow_fsyncs_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(
      warnings.length,
    );
    expect(text).toContain('# TYPE qc_raft_log_fsync_seconds histogram');
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \S+$/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \S+$/m);

    // The /cluster card shows the same two p99s.
    const view = (await (await fetch(`http://127.0.0.1:${r.http!.port}/cluster/status`)).json()) as Record<
      string,
      unknown
    >;
    expect(view.fsyncP99Ms).toBeGreaterThan(0);
    expect(view.loopLagP99Ms).toBeGreaterThan(0);
  });

  it('GetStatus, /cluster and /metrics report one event-loop figure: the highest per-second p99 of the last 10 s', async () => {
    const startedAt = performance.now();
    const r = await startOne();
    // Let some 600 samples of an idle loop gather first: among them, four stalls are under 1 %, so a
    // p99 over a 10 s window (what GetStatus reported before) stays near the 10 ms resolution.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + 6000 - performance.now())));
    // Four stalls of 60 ms, one loop turn apart (each is its own sample). However the once-a-second
    // reset splits them, and even if it hides one (event-loop.ts), some second holds two: its p99.
    for (let i = 0; i < 4; i++) {
      const until = performance.now() + 60;
      while (performance.now() < until) {
        // blocked
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { cluster } = stubs(r.address);
    const st = await rpc<Record<string, number>>(cluster, 'GetStatus', {});
    cluster.close();
    const metrics = await (await fetch(`http://127.0.0.1:${r.http!.port}/metrics`)).text();
    const fromMetrics = 1000 * Number(/^qc_event_loop_delay_p99_seconds (\S+)$/m.exec(metrics)?.[1]);
    const view = (await (await fetch(`http://127.0.0.1:${r.http!.port}/cluster/status`)).json()) as {
      loopLagP99Ms: number;
    };
    expect(st.response!.event_loop_lag_p99_ms).toBeGreaterThanOrEqual(50);
    expect(fromMetrics).toBeGreaterThanOrEqual(50);
    expect(view.loopLagP99Ms).toBeGreaterThanOrEqual(50);
  });
});
