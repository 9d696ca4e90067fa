// The launcher link (src/server/launcher-link.ts): a supervised replica asks `quorum-chat cluster`
// (LocalCluster with supervise) over IPC to restart a replica by id. Real child processes (a stand-in
// server) for the launcher's side; a fake channel for the replica's side (answers, timeouts, refs).
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type IpcProcess, launcherOf } from '../../src/server/launcher-link.js';
import { LocalCluster, waitFor } from '../../src/server/local-cluster.js';

const standIn = join(import.meta.dirname, 'launcher-stand-in.ts');

describe('LocalCluster supervising replicas', () => {
  let cluster: LocalCluster | undefined;
  let root = '';
  afterEach(async () => {
    await cluster?.stopAll();
    cluster = undefined;
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  /** Replicas asked for (`<id> by <asker>`), as the launcher was told. */
  let asked: string[] = [];

  async function two(supervise: boolean): Promise<LocalCluster> {
    root = fs.mkdtempSync(join(os.tmpdir(), 'qc-launcher-'));
    asked = [];
    const c = new LocalCluster({
      root,
      command: [process.execPath, '--import', 'tsx', standIn],
      supervise,
      onRestartRequest: (id, by) => asked.push(`${id} by ${by}`),
    });
    await c.define('server1');
    await c.define('server2');
    cluster = c;
    return c;
  }

  const out = (c: LocalCluster, id: string) => fs.readFileSync(c.get(id).stdoutPath, 'utf8');

  it('restarts the replica a replica names (itself included) by pid, and refuses an unknown one', async () => {
    const c = await two(true);
    c.start('server2');
    await waitFor(() => out(c, 'server2').includes('started server2 #1'), {
      timeoutMs: 15_000,
      what: 'server2',
    });
    const firstPid = c.get('server2').pid;
    c.start('server1');
    await waitFor(() => c.get('server2').starts === 2 && c.get('server1').starts === 2, {
      timeoutMs: 20_000,
      what: 'both replicas restarted',
    });
    await waitFor(() => out(c, 'server1').includes('started server1 #2'), {
      timeoutMs: 15_000,
      what: 'server1 #2',
    });
    await waitFor(() => out(c, 'server2').includes('started server2 #2'), {
      timeoutMs: 15_000,
      what: 'server2 #2',
    });
    const said = out(c, 'server1');
    expect(said).toContain('asked server2: server2 is restarting: kill -9, then a start from its data dir.');
    expect(said).toContain('asked nobody: refused: this launcher runs no replica nobody.');
    expect(said).toContain('asked server1: server1 is restarting: kill -9, then a start from its data dir.');
    // Killed by signal, then started again on the same data dir with a new pid.
    expect(c.get('server2').lastExit?.signal).toBe('SIGKILL');
    expect(c.get('server2').pid).not.toBe(firstPid);
    expect(c.get('server1').lastExit?.signal).toBe('SIGKILL');
    expect(asked).toEqual(['server2 by server1', 'server1 by server1']);
    expect(c.live().length).toBe(2);
  });

  it('gives an unsupervised replica no launcher', async () => {
    const c = await two(false);
    c.start('server1');
    await waitFor(() => out(c, 'server1').includes('no launcher'), { timeoutMs: 15_000, what: 'server1' });
    expect(c.get('server1').starts).toBe(1);
  });
});

describe('launcherOf (the replica side)', () => {
  function fakeProcess() {
    const listeners = new Set<(m: unknown) => void>();
    const sent: { requestId: number; id: string }[] = [];
    let unrefs = 0;
    const proc: IpcProcess = {
      connected: true,
      send: (m) => {
        sent.push(m as { requestId: number; id: string });
        return true;
      },
      on: (_e, l) => listeners.add(l),
      off: (_e, l) => listeners.delete(l),
      channel: { unref: () => unrefs++ },
    };
    const deliver = (m: unknown) => {
      for (const l of [...listeners]) l(m);
    };
    return { proc, sent, listeners, deliver, unrefs: () => unrefs };
  }

  it('exists only under a launcher with a connected channel', () => {
    const { proc } = fakeProcess();
    expect(launcherOf(proc, {})).toBeUndefined();
    expect(launcherOf({ ...proc, connected: false }, { QC_LAUNCHER: '1' })).toBeUndefined();
    expect(launcherOf(proc, { QC_LAUNCHER: '1' })).toBeDefined();
  });

  it('matches answers to requests, and listens (holding the channel) only while one is pending', async () => {
    const f = fakeProcess();
    const l = launcherOf(f.proc, { QC_LAUNCHER: '1' })!;
    const a = l.restart('server2');
    const b = l.restart('server3');
    expect(f.listeners.size).toBe(1);
    expect(f.sent.map((m) => m.id)).toEqual(['server2', 'server3']);
    f.deliver({ type: 'qc-launcher-reply', requestId: f.sent[1].requestId, ok: false, message: 'no.' });
    f.deliver({ type: 'something else' });
    f.deliver({ type: 'qc-launcher-reply', requestId: f.sent[0].requestId, ok: true, message: 'yes.' });
    await expect(a).resolves.toBe('yes.');
    await expect(b).rejects.toThrow('no.');
    expect(f.listeners.size).toBe(0);
    expect(f.unrefs()).toBeGreaterThanOrEqual(2);
  });

  it('gives up when the launcher does not answer', async () => {
    const f = fakeProcess();
    const l = launcherOf(f.proc, { QC_LAUNCHER: '1' }, 50)!;
    await expect(l.restart('server2')).rejects.toThrow('did not answer within 50 ms');
    expect(f.listeners.size).toBe(0);
  });
});
