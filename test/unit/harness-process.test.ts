// The process side of the e2e harness (src/server/local-cluster.ts), against a stand-in server that
// serves GetStatus: starting with the right flags, signalling by pid, restarting on the same data dir,
// leader and convergence queries, the monotonicity check, and stopping everything.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../src/server/local-cluster.js';

const fake = join(import.meta.dirname, '..', 'e2e', 'support', 'fake-server.mjs');

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('LocalCluster with a stand-in server', () => {
  let cluster: LocalCluster | undefined;
  let root = '';
  afterEach(async () => {
    await cluster?.stopAll();
    cluster = undefined;
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  async function three(): Promise<LocalCluster> {
    root = fs.mkdtempSync(join(os.tmpdir(), 'qc-harness-'));
    const c = new LocalCluster({ root, command: [process.execPath, fake] });
    const first = await c.define('server1');
    await c.define('server2', { peers: [first.address] });
    await c.define('server3', { peers: [first.address] });
    for (const id of c.ids()) c.start(id);
    cluster = c;
    return c;
  }

  it('starts each replica with its own data dir under one root, its ports and --peers of the first', async () => {
    const c = await three();
    const lead = await c.waitForLeader({ timeoutMs: 15_000 });
    expect(lead.node_id).toBe('server1');
    const conv = await c.waitForConvergence({ timeoutMs: 10_000 });
    expect(conv.map((s) => s.node_id).sort()).toEqual(['server1', 'server2', 'server3']);
    for (const id of c.ids()) {
      const r = c.get(id);
      expect(fs.existsSync(join(root, id, 'term'))).toBe(true);
      expect(r.spec.dataDir).toBe(join(root, id));
      const out = fs.readFileSync(r.stdoutPath, 'utf8');
      expect(out).toContain(`listening on ${r.address}`);
      expect(out).toContain(id === 'server1' ? 'with peers -' : `with peers ${c.get('server1').address}`);
    }
    const ports = c.ids().flatMap((id) => [c.get(id).spec.port, c.get(id).spec.httpPort]);
    expect(new Set(ports).size).toBe(6);
  });

  it('signals by pid: SIGSTOP hides a replica from queries, SIGKILL ends it, restart reuses its data dir', async () => {
    const c = await three();
    await c.waitForConvergence({ timeoutMs: 10_000 });
    const r2 = c.get('server2');
    const pid = r2.pid!;

    await c.kill('server2', 'SIGSTOP');
    expect(r2.paused).toBe(true);
    expect([...(await c.statuses()).keys()].sort()).toEqual(['server1', 'server3']);
    await c.kill('server2', 'SIGCONT');
    expect((await c.status('server2', 3000))?.node_id).toBe('server2');

    await c.kill('server2', 'SIGKILL');
    expect(r2.alive).toBe(false);
    expect(r2.lastExit?.signal).toBe('SIGKILL');
    expect(isRunning(pid)).toBe(false);
    await expect(c.kill('server2', 'SIGKILL')).rejects.toThrow(/not running/);

    await c.restart('server2');
    expect(r2.pid).not.toBe(pid);
    const s = await c.waitForConvergence({ timeoutMs: 10_000 });
    expect(s.find((x) => x.node_id === 'server2')?.term).toBe(2); // second start on the same data dir
    expect(c.monotonicViolations).toEqual([]);
  });

  it('notes a term that goes backwards across a restart', async () => {
    const c = await three();
    await c.waitForConvergence({ timeoutMs: 10_000 });
    await c.kill('server3', 'SIGKILL');
    await c.restart('server3');
    await c.waitForConvergence({ timeoutMs: 10_000 }); // observes term 2
    await c.kill('server3', 'SIGKILL');
    fs.writeFileSync(join(root, 'server3', 'term'), '0'); // the next start reports term 1
    await c.restart('server3');
    await c.waitForConvergence({ timeoutMs: 10_000 });
    expect(c.monotonicViolations).toEqual(['server3: term went from 2 to 1']);
  });

  it('stopAll SIGTERMs every process (also a paused one) and they exit cleanly', async () => {
    const c = await three();
    await c.waitForConvergence({ timeoutMs: 10_000 });
    await c.kill('server1', 'SIGSTOP');
    const pids = c.ids().map((id) => c.get(id).pid!);
    await c.stopAll();
    for (const id of c.ids()) {
      expect(c.get(id).alive).toBe(false);
      expect(c.get(id).lastExit).toEqual({ code: 0, signal: null });
    }
    for (const pid of pids) expect(isRunning(pid)).toBe(false);
  });
});

describe('waiting on a replica that died', () => {
  it('fails at once, quoting its last output, rather than at the deadline', async () => {
    const root = fs.mkdtempSync(join(os.tmpdir(), 'qc-harness-'));
    // A "server" that prints one line and exits 1, like a server refusing its flags.
    const c = new LocalCluster({
      root,
      command: [process.execPath, '-e', 'console.error("quorum-chat: bad flag"); process.exit(1)'],
    });
    try {
      await c.define('server1');
      c.start('server1');
      const t0 = Date.now();
      await expect(c.waitForVoters(['server1'], 60_000)).rejects.toThrow(
        /server1 failed with exit code 1: quorum-chat: bad flag/,
      );
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await c.stopAll();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
