// The status table and the membership commands against fake replicas' ClusterService.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeChange, memberMain, readSecret, transferMain } from '../../src/client/admin.js';
import { ClusterClient } from '../../src/client/client.js';
import { collectStatus, formatStatus } from '../../src/client/status.js';
import { FakeServer, closedAddress, fail, ok } from './client-fake-server.js';

const servers: FakeServer[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.restoreAllMocks();
});

async function fake(): Promise<FakeServer> {
  const s = await FakeServer.start(() => ok({}));
  servers.push(s);
  return s;
}

function status(over: Record<string, unknown>) {
  return {
    node_id: 's1',
    address: '',
    role: 'follower',
    term: 3,
    leader_id: 's1',
    leader_address: '',
    commit_index: 10,
    last_applied: 10,
    last_log_index: 10,
    snapshot_index: 0,
    members: [],
    state_digest: 'abcdef0123456789abcdef',
    ...over,
  };
}

/** A leader s1, a follower s2 that lags, and a member s3 on a closed port. */
async function threeMembers() {
  const s1 = await fake();
  const s2 = await fake();
  const s3 = await closedAddress();
  const members = [
    { id: 's1', address: s1.address, voter: true },
    { id: 's2', address: s2.address, voter: true },
    { id: 's3', address: s3, voter: true },
  ];
  s1.cluster = () =>
    ok(
      status({
        node_id: 's1',
        address: s1.address,
        role: 'leader',
        leader_address: s1.address,
        commit_index: 42,
        last_applied: 42,
        members,
        fsync_p99_ms: 3.5,
        slow_fsyncs: 2,
        event_loop_lag_p99_ms: 12.1,
      }),
    );
  s2.cluster = () =>
    ok(
      status({
        node_id: 's2',
        address: s2.address,
        leader_address: s1.address,
        commit_index: 40,
        last_applied: 37,
        members,
      }),
    );
  return { s1, s2, s3 };
}

describe('status', () => {
  it('asks every listed member and shows role, lag, fsync and event-loop p99, and unreachable members', async () => {
    const { s1, s2, s3 } = await threeMembers();
    const c = new ClusterClient([s2.address]);
    const rows = await collectStatus(s2.address, c);
    c.close();
    const text = formatStatus(rows);
    const lines = text.split('\n');
    expect(lines[0].split(/\s+/)).toEqual([
      'ID',
      'ADDRESS',
      'ROLE',
      'TERM',
      'COMMIT',
      'APPLIED',
      'LAG',
      'FSYNC-P99',
      'LOOP-P99',
      'DIGEST',
    ]);
    expect(lines[1].split(/\s+/)).toEqual([
      's1',
      s1.address,
      'leader',
      '3',
      '42',
      '42',
      '0',
      '3.5ms',
      '12.1ms',
      'abcdef012345',
    ]);
    expect(lines[2].split(/\s+/)).toEqual([
      's2',
      s2.address,
      'follower',
      '3',
      '40',
      '37',
      '5',
      '0ms',
      '0ms',
      'abcdef012345',
    ]);
    expect(lines[3]).toMatch(new RegExp(`^s3\\s+${s3}\\s+-.*UNREACHABLE \\(UNAVAILABLE: `));
    expect(lines[4]).toBe(`leader s1 (${s1.address}), term 3; 2 of 3 members answered; slow fsyncs: s1 2`);
  });

  it('flags replicas whose digests differ at the same applied index', async () => {
    const { s1, s2 } = await threeMembers();
    const members = [
      { id: 's1', address: s1.address, voter: true },
      { id: 's2', address: s2.address, voter: true },
    ];
    s2.cluster = () =>
      ok(
        status({
          node_id: 's2',
          address: s2.address,
          last_applied: 42,
          commit_index: 42,
          members,
          state_digest: 'ff00',
        }),
      );
    s1.cluster = () =>
      ok(
        status({
          node_id: 's1',
          role: 'leader',
          address: s1.address,
          commit_index: 42,
          last_applied: 42,
          members,
        }),
      );
    const c = new ClusterClient([s1.address]);
    const text = formatStatus(await collectStatus(s1.address, c));
    c.close();
    expect(text.split('\n').at(-1)).toBe(
      `leader s1 (${s1.address}), term 3; 2 of 2 members answered; DIGESTS DIFFER at applied index 42`,
    );
  });
});

describe('membership commands', () => {
  it('sends the change to the leader with the cluster secret and returns its status', async () => {
    const { s1, s2 } = await threeMembers();
    const base = s1.cluster;
    s1.cluster = (method, req, srv) =>
      method === 'AddMember'
        ? ok(
            status({
              node_id: 's1',
              role: 'leader',
              members: [{ id: String(req.id), address: String(req.address), voter: true }],
            }),
          )
        : base(method, req, srv);
    const c = new ClusterClient([s2.address], { secret: 's3cret', random: () => 0.5 });
    const st = await c.addMember('s4', '127.0.0.1:7004');
    c.close();
    expect(st.members).toEqual([{ id: 's4', address: '127.0.0.1:7004', voter: true }]);
    expect(s2.callsOf('AddMember')).toHaveLength(0);
    expect(s1.callsOf('AddMember').map((x) => [x.authorization, x.request])).toEqual([
      ['Bearer s3cret', { id: 's4', address: '127.0.0.1:7004' }],
    ]);
  });

  it('retries a change when the leader answers UNAVAILABLE, but not when the secret is refused', async () => {
    const { s1, s2 } = await threeMembers();
    const base = s1.cluster;
    let n = 0;
    s1.cluster = (method, req, srv) => {
      if (method !== 'TransferLeadership') return base(method, req, srv);
      n++;
      return n === 1
        ? fail(grpc.status.UNAVAILABLE, 'A change is in progress.')
        : ok(status({ node_id: 's2', role: 'leader' }));
    };
    const c = new ClusterClient([s1.address], { secret: 'x', random: () => 0, sleep: async () => {} });
    await expect(c.transferLeadership('s2')).resolves.toMatchObject({ node_id: 's2', role: 'leader' });
    expect(s1.callsOf('TransferLeadership').map((x) => x.request)).toEqual([
      { to_id: 's2' },
      { to_id: 's2' },
    ]);
    s2.cluster = () => fail(grpc.status.UNAUTHENTICATED, 'Bad cluster secret.');
    s1.cluster = s2.cluster;
    await expect(c.removeMember('s2')).rejects.toMatchObject({
      codeName: 'UNAUTHENTICATED',
      message: 'Bad cluster secret.',
    });
    c.close();
  });

  it('member add / transfer read the secret file and print the resulting status', async () => {
    const { s1 } = await threeMembers();
    const base = s1.cluster;
    s1.cluster = (method, req, srv) =>
      method === 'GetStatus'
        ? base(method, req, srv)
        : ok(
            status({
              node_id: 's1',
              role: 'leader',
              leader_id: 's1',
              leader_address: s1.address,
              members: [{ id: 's9', address: '127.0.0.1:7009', voter: false }],
            }),
          );
    const dir = mkdtempSync(join(tmpdir(), 'qc-admin-'));
    dirs.push(dir);
    const secretFile = join(dir, 'cluster.secret');
    writeFileSync(secretFile, 'top-secret\n');
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => printed.push(s));
    await expect(
      memberMain([
        'add',
        '--id',
        's9',
        '--address',
        '127.0.0.1:7009',
        '--server',
        s1.address,
        '--cluster-secret-file',
        secretFile,
      ]),
    ).resolves.toBe(0);
    await expect(transferMain(['--server', s1.address, '--cluster-secret-file', secretFile])).resolves.toBe(
      0,
    );
    expect(s1.callsOf('AddMember')[0].authorization).toBe('Bearer top-secret');
    expect(s1.callsOf('TransferLeadership')[0].request).toEqual({ to_id: '' });
    expect(printed[0]).toContain('s1 (');
    expect(printed[0]).toContain('  s9  127.0.0.1:7009  learner');
    // Each ends with one line saying what it did.
    expect(printed[1]).toMatch(
      /^s9 \(127.0.0.1:7009\) was added as a learner; the cluster has 0 voters \(term \d+\)$/,
    );
    expect(printed[3]).toBe('s1 already led; leadership did not move (term 3)');
  });

  it('says in one line what a change did', () => {
    const before = status({ node_id: 's3', role: 'leader', leader_id: 's3', term: 13 });
    const members = [
      { id: 's1', address: 'a:1', voter: true },
      { id: 's2', address: 'a:2', voter: true },
      { id: 's6', address: 'a:6', voter: true },
    ];
    const after = status({ node_id: 's3', role: 'follower', leader_id: 's2', term: 14, members });
    expect(describeChange({ kind: 'transfer' }, before, after)).toBe(
      'leadership moved from s3 to s2 (term 14)',
    );
    expect(describeChange({ kind: 'transfer' }, { ...before, leader_id: '' }, after)).toBe(
      'leadership went to s2 (term 14); no leader was known before',
    );
    expect(describeChange({ kind: 'add', id: 's6', address: 'a:6' }, before, after)).toBe(
      's6 (a:6) was added as a voter; the cluster has 3 voters (term 14)',
    );
    expect(describeChange({ kind: 'remove', id: 's5' }, before, after)).toBe(
      's5 was removed; the cluster has 3 voters (term 14)',
    );
  });

  it('explains a missing secret file and missing flags in one line', async () => {
    expect(() => readSecret('/nonexistent/cluster.secret')).toThrow(
      'cannot read the cluster secret from /nonexistent/cluster.secret (ENOENT)',
    );
    // Without the flag, the tools follow the server's rule (the parent of the data dir) and say so.
    expect(() => readSecret(undefined, '/nonexistent/data/server1')).toThrow(
      /^cannot read the cluster secret from \/nonexistent\/data\/cluster.secret \(ENOENT\); the secret is --cluster-secret-file, or else cluster.secret in the parent of the data dir/,
    );
    await expect(memberMain(['add', '--server', '127.0.0.1:1'])).rejects.toThrow(
      '--id ID and --address HOST:PORT are required',
    );
    await expect(memberMain(['frobnicate'])).rejects.toThrow("member: unknown action 'frobnicate'");
    await expect(transferMain(['--bogus'])).rejects.toThrow(/^transfer: /);
  });
});
