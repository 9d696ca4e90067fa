// The pure parts of the harness, the launcher and the benchmark: ports, waiting with deadlines,
// server flags, command-line parsing, percentiles and the status table.
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { encodePut } from '../../src/bench/etcd.js';
import { benchServerArgs, figuresTable, parseBenchArgs, summarize } from '../../src/bench/main.js';
import { median, percentile } from '../../src/bench/rpc.js';
import {
  type ClusterStatus,
  WaitAborted,
  describeExit,
  describeRestartRequest,
  formatStatusTable,
  freePort,
  parseClusterArgs,
  portIsFree,
  serverArgs,
  waitFor,
} from '../../src/server/local-cluster.js';

describe('ports', () => {
  it('hands out distinct bindable ports and sees a bound one as taken', async () => {
    const ports = await Promise.all(Array.from({ length: 8 }, () => freePort()));
    expect(new Set(ports).size).toBe(8);
    for (const p of ports) expect(await portIsFree(p)).toBe(true);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(ports[0], '127.0.0.1', () => r()));
    try {
      expect(await portIsFree(ports[0])).toBe(false);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe('waitFor', () => {
  it('returns the first truthy value of the condition', async () => {
    let n = 0;
    const v = await waitFor(() => (++n >= 3 ? `done after ${n}` : undefined), {
      timeoutMs: 2000,
      intervalMs: 1,
    });
    expect(v).toBe('done after 3');
  });

  it('throws after the deadline, naming what it waited for and the last error', async () => {
    const t0 = Date.now();
    await expect(
      waitFor(
        () => {
          throw new Error('no leader yet');
        },
        { timeoutMs: 150, intervalMs: 10, what: 'a leader' },
      ),
    ).rejects.toThrow('timed out after 150 ms waiting for a leader (last error: no leader yet)');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('server flags', () => {
  it('spells the flags of API.md §1; --peers only when there are peers', () => {
    const spec = {
      id: 'server2',
      host: '127.0.0.1',
      port: 7001,
      httpPort: 7101,
      dataDir: '/tmp/x/server2',
      peers: ['127.0.0.1:7000'],
    };
    expect(serverArgs(spec, ['--heartbeat-ms', '50'], 'warn')).toEqual([
      'server',
      '--id',
      'server2',
      '--port',
      '7001',
      '--host',
      '127.0.0.1',
      '--data-dir',
      '/tmp/x/server2',
      '--http-port',
      '7101',
      '--peers',
      '127.0.0.1:7000',
      '--log-level',
      'warn',
      '--heartbeat-ms',
      '50',
    ]);
    const first = serverArgs({ ...spec, id: 'server1', peers: [], httpPort: undefined });
    expect(first).not.toContain('--peers');
    expect(first).not.toContain('--http-port');
  });
});

describe('quorum-chat cluster arguments', () => {
  it('defaults to 5 replicas from port 5555 in ./data', () => {
    expect(parseClusterArgs([])).toEqual({
      size: 5,
      basePort: 5555,
      dataDir: './data',
      host: '127.0.0.1',
      tls: false,
    });
    expect(parseClusterArgs(['--tls']).tls).toBe(true);
    expect(parseClusterArgs(['--size', '3', '--base-port', '7000', '--data-dir', 'd'])).toMatchObject({
      size: 3,
      basePort: 7000,
      dataDir: 'd',
    });
  });

  it('rejects bad flags with a one-line user error', () => {
    expect(() => parseClusterArgs(['--size', '0'])).toThrow('--size must be an integer from 1 to 9');
    expect(() => parseClusterArgs(['--size'])).toThrow('--size needs a value');
    expect(() => parseClusterArgs(['--bogus'])).toThrow(
      /unknown flag --bogus; see 'quorum-chat cluster --help'/,
    );
  });
});

describe('launcher messages', () => {
  it('describes an exit in a plain sentence', () => {
    const log = (msg: string) => JSON.stringify({ level: 50, msg });
    expect(describeExit('server1', { code: null, signal: 'SIGKILL' })).toBe('server1 was killed (SIGKILL).');
    expect(describeExit('server1', { code: null, signal: 'SIGTERM' })).toBe(
      'server1 was stopped by SIGTERM.',
    );
    expect(describeExit('server1', { code: 0, signal: null })).toBe('server1 stopped cleanly.');
    expect(
      describeExit(
        'server2',
        { code: 1, signal: null },
        `--- start #1 at x\n${log('port 5556 is in use.')}\n`,
      ),
    ).toBe('server2 failed with exit code 1: port 5556 is in use.');
    const removed = log('this replica was removed from the cluster: the configuration ... ; exiting');
    expect(describeExit('server5', { code: 0, signal: null }, `${removed}\n${log('stopped')}`)).toBe(
      'server5 was removed from the cluster, so it stopped itself.',
    );
    // A removal in an earlier run of the same log does not count.
    expect(
      describeExit('server5', { code: null, signal: 'SIGKILL' }, `${removed}\n--- start #2 at y\n`),
    ).toBe('server5 was killed (SIGKILL).');
  });
});

describe('restart requests', () => {
  it('name the replica restarted and the one that relayed the request, not a page', () => {
    expect(describeRestartRequest('server3', true, 'server3')).toBe(
      'Restarting server3 (kill -9, then a start from its data dir), as asked on a /cluster page (through server3 itself).',
    );
    expect(describeRestartRequest('server3', false, 'server1')).toBe(
      'Starting server3 from its data dir, as asked on a /cluster page (through server1).',
    );
  });
});

describe('bench', () => {
  it('parses its flags with the documented defaults', () => {
    expect(parseBenchArgs([])).toMatchObject({
      clients: 64,
      seconds: 10,
      messageBytes: 100,
      failoverTrials: 5,
      out: 'bench-results.json',
    });
    expect(parseBenchArgs(['--clients', '8', '--seconds', '2', '--out', 'r.json'])).toMatchObject({
      clients: 8,
      seconds: 2,
      out: 'r.json',
    });
    expect(() => parseBenchArgs(['--clients', 'many'])).toThrow('--clients must be an integer');
    // Server flags pass through one word at a time, dashes and all.
    expect(
      parseBenchArgs(['--server-arg', '--log-level', '--server-arg', 'info', '--clients', '2']),
    ).toMatchObject({ serverArgs: ['--log-level', 'info'], clients: 2 });
    expect(() => parseBenchArgs(['--server-arg'])).toThrow('--server-arg needs a value');
  });

  it('spreads clients over the replicas by default; --etcd, --stability, --hogs, --skip-reads', () => {
    expect(parseBenchArgs([])).toMatchObject({
      clientsOn: 'spread',
      etcd: false,
      stability: false,
      hogs: 2,
      skipReads: false,
    });
    expect(
      parseBenchArgs(['--clients-on', 'leader', '--etcd', '--stability', '--hogs', '0', '--skip-reads']),
    ).toMatchObject({ clientsOn: 'leader', etcd: true, stability: true, hogs: 0, skipReads: true });
    expect(() => parseBenchArgs(['--clients-on', 'all'])).toThrow('--clients-on must be spread or leader');
    expect(() => parseBenchArgs(['--hogs', '17'])).toThrow('--hogs must be an integer from 0 to 16');
  });

  it('encodes etcd PutRequest{key = 1, value = 2} as protobuf bytes', () => {
    expect([...encodePut('k', 'v')]).toEqual([0x0a, 1, 0x6b, 0x12, 1, 0x76]);
    // Lengths past 127 take a two-byte varint.
    const long = encodePut('a', 'x'.repeat(200));
    expect([...long.subarray(0, 6)]).toEqual([0x0a, 1, 0x61, 0x12, 0xc8, 0x01]);
    expect(long.length).toBe(6 + 200);
  });

  it('prints the four figures with the ratios against etcd', () => {
    const figures = (perSecond: number, p50: number, p99: number, single: number, failover: number) => ({
      system: 'x',
      load: {
        acked: 1,
        errors: {},
        elapsedMs: 1,
        perSecond,
        latency: { count: 1, p50, p99, max: p99, mean: p50 },
      },
      single: {
        acked: 1,
        errors: {},
        elapsedMs: 1,
        perSecond: 1,
        latency: { count: 1, p50: single, p99: single, max: single, mean: single },
      },
      failover: { trials: [], medianMs: failover },
    });
    const lines = figuresTable(figures(1500, 30, 150, 4, 200), figures(1000, 40, 200, 5, 260));
    expect(lines[0]).toBe('figure | etcd | quorum-chat | quorum-chat/etcd');
    expect(lines[1]).toBe('writes/s, N clients | 1000 | 1500 | 1.5x (higher is better)');
    expect(lines[3]).toBe('p99 ms, N clients | 200 | 150 | 0.75x (lower is better)');
    expect(lines[5]).toBe('failover median ms (kill -9 leader) | 260 | 200 | 0.77x (lower is better)');
    expect(figuresTable(figures(1, 2, 3, 4, 5))[1]).toBe('writes/s, N clients | 1');
  });

  it('takes the read phase chat sizes as a comma-separated list', () => {
    expect(parseBenchArgs([]).readChatSizes).toEqual([1000, 100_000]);
    expect(parseBenchArgs([]).tls).toBe(false);
    expect(parseBenchArgs(['--tls']).tls).toBe(true);
    expect(parseBenchArgs(['--read-chat-sizes', '50,200']).readChatSizes).toEqual([50, 200]);
    expect(() => parseBenchArgs(['--read-chat-sizes', '50,x'])).toThrow(
      '--read-chat-sizes must be a comma-separated list of integers from 1 to 1000000',
    );
    expect(() => parseBenchArgs(['--read-chat-sizes', '0'])).toThrow('--read-chat-sizes must be');
    expect(() => parseBenchArgs(['--read-chat-sizes'])).toThrow('--read-chat-sizes needs a value');
  });

  it('lifts the per-user write limits and lowers the scrypt cost, unless the caller set them', () => {
    expect(benchServerArgs([])).toEqual([
      '--write-rate',
      '1000000',
      '--write-burst',
      '1000000',
      '--scrypt-n',
      '16384',
    ]);
    expect(benchServerArgs(['--write-rate', '20'])).toEqual(['--scrypt-n', '16384']);
    expect(benchServerArgs(['--write-burst=40', '--scrypt-n=131072'])).toEqual([]);
  });

  it('computes nearest-rank percentiles', () => {
    const ms = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(percentile(ms, 50)).toBe(50);
    expect(percentile(ms, 99)).toBe(99);
    expect(percentile([], 50)).toBe(0);
    expect(median([5, 1, 3])).toBe(3);
    expect(summarize([3, 1, 2, 10])).toEqual({ count: 4, p50: 2, p99: 10, max: 10, mean: 4 });
  });
});

describe('status table', () => {
  it('has a row per member and marks a silent one down', () => {
    const s: ClusterStatus = {
      node_id: 'server1',
      address: '127.0.0.1:5555',
      role: 'leader',
      term: 3,
      leader_id: 'server1',
      leader_address: '127.0.0.1:5555',
      commit_index: 42,
      last_applied: 41,
      last_log_index: 42,
      snapshot_index: 0,
      members: [],
      state_digest: 'abcdef0123456789',
    };
    const table = formatStatusTable([
      { id: 'server1', address: '127.0.0.1:5555', s },
      { id: 'server2', address: '127.0.0.1:5556', s: undefined },
    ]).split('\n');
    expect(table).toHaveLength(3);
    expect(table[1].split(/\s+/)).toEqual([
      'server1',
      '127.0.0.1:5555',
      'leader',
      '3',
      '42',
      '41',
      'abcdef012345',
    ]);
    expect(table[2].split(/\s+/).slice(0, 3)).toEqual(['server2', '127.0.0.1:5556', 'down']);
  });
});

describe('waitFor aborts', () => {
  it('stops at once on WaitAborted instead of polling to the deadline', async () => {
    const t0 = Date.now();
    await expect(
      waitFor(
        () => {
          throw new WaitAborted('server2 exited');
        },
        { timeoutMs: 60_000 },
      ),
    ).rejects.toThrow('server2 exited');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
