// The etcd side of `bench --etcd` (issue 10): a local 5-member etcd 3.4 (Debian's etcd-server, pre-vote,
// heartbeat 30 ms, election 150 ms, temp data dirs, stopped by pid) and a caller that writes to it the
// way ChatCaller writes to Quorum Chat: one gRPC channel per member, the client pinned to one member,
// the next member on failure. The write is KV.Put. Its request is two protobuf fields (key = 1,
// value = 2), encoded here by hand, so the bench needs no copy of etcd's .proto files; the response
// is not decoded (a successful status is the acknowledgement). Leaders are found through etcd's v3
// JSON gateway (POST /v3/maintenance/status).
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { fastReconnect, freePort, waitFor } from '../server/local-cluster.js';
import { killAll } from './processes.js';
import { grpcCode, retryableCodes } from './rpc.js';

export const ETCD_BIN = process.env.QC_ETCD_BIN ?? '/usr/bin/etcd';

export function etcdMissingReason(): string | undefined {
  if (fs.existsSync(ETCD_BIN)) return undefined;
  return `${ETCD_BIN} not found: install etcd 3.4 with \`sudo apt-get install etcd-server\` (or set QC_ETCD_BIN)`;
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dir: string;
  proc?: ChildProcess;
}

/** Five (or `size`) etcd members on 127.0.0.1, each with its own data dir under `root`. */
export class EtcdCluster {
  private members: Member[] = [];

  constructor(
    private readonly root: string,
    private readonly size: number,
  ) {}

  addresses(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** The live members' pids. */
  pids(): number[] {
    return this.members.flatMap((m) => (m.proc?.pid === undefined ? [] : [m.proc.pid]));
  }

  /** The pid of member `index`, if it is running. */
  pid(index: number): number | undefined {
    return this.members[index]?.proc?.pid;
  }

  async start(): Promise<void> {
    for (let i = 1; i <= this.size; i++) {
      this.members.push({
        name: `etcd${i}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dir: join(this.root, `etcd${i}`),
      });
    }
    for (const m of this.members) this.spawn(m);
    await this.waitForLeader({ timeoutMs: 30_000 });
  }

  private spawn(m: Member): void {
    const cluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const args = [
      `--name=${m.name}`,
      `--data-dir=${m.dir}`,
      `--listen-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
      `--initial-cluster=${cluster}`,
      '--initial-cluster-state=new',
      '--initial-cluster-token=qc-bench',
      '--pre-vote',
      '--heartbeat-interval=30',
      '--election-timeout=150',
      '--logger=zap',
      '--log-level=error',
    ];
    const log = fs.openSync(join(this.root, `${m.name}.log`), 'a');
    m.proc = spawn(ETCD_BIN, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
  }

  /** The leader's member index and client address, asking every live member. */
  async leader(): Promise<{ index: number; address: string } | undefined> {
    const seen = await Promise.all(
      this.members.map((m) => (m.proc ? memberStatus(m.clientPort) : undefined)),
    );
    for (const s of seen) {
      if (!s?.leader) continue;
      const index = seen.findIndex((x) => x?.memberId === s.leader);
      if (index >= 0) return { index, address: this.addresses()[index] };
    }
    return undefined;
  }

  async waitForLeader(
    opts: { not?: number; timeoutMs?: number } = {},
  ): Promise<{ index: number; address: string }> {
    return waitFor(
      async () => {
        const l = await this.leader();
        return l && l.index !== opts.not ? l : undefined;
      },
      { timeoutMs: opts.timeoutMs ?? 10_000, what: 'an etcd leader' },
    );
  }

  /** Every live member's raft term and the leader it knows (member ids in hex, as etcd reports). */
  async views(): Promise<{ term: number; leader?: string }[]> {
    const seen = await Promise.all(
      this.members.map((m) => (m.proc ? memberStatus(m.clientPort) : undefined)),
    );
    return seen
      .filter((s) => s !== undefined)
      .map((s) => ({ term: s.raftTerm, leader: s.leader || undefined }));
  }

  kill(index: number): void {
    const m = this.members[index];
    if (m.proc?.pid) process.kill(m.proc.pid, 'SIGKILL');
    m.proc = undefined;
  }

  /** Start a killed member again on its data dir (the initial-cluster flags are then ignored). */
  async restart(index: number): Promise<void> {
    const m = this.members[index];
    this.spawn(m);
    await waitFor(() => memberStatus(m.clientPort), { timeoutMs: 20_000, what: `${m.name} to answer` });
  }

  async stopAll(): Promise<void> {
    const procs = this.members.map((m) => m.proc).filter((p): p is ChildProcess => !!p);
    await killAll(procs);
    for (const m of this.members) m.proc = undefined;
  }
}

/** GET-like status of one member through the JSON gateway: its id, the leader's id, its raft term. */
async function memberStatus(
  port: number,
): Promise<{ memberId: string; leader: string; raftTerm: number } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v3/maintenance/status`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(1000),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as {
      header?: { member_id?: string };
      leader?: string;
      raftTerm?: string;
    };
    if (!body.header?.member_id) return undefined;
    // The JSON gateway writes uint64 fields as strings.
    return {
      memberId: body.header.member_id,
      leader: body.leader ?? '',
      raftTerm: Number(body.raftTerm ?? 0),
    };
  } catch {
    return undefined;
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** etcdserverpb.PutRequest { bytes key = 1; bytes value = 2; } */
export function encodePut(key: string, value: string): Buffer {
  const k = Buffer.from(key);
  const v = Buffer.from(value);
  return Buffer.concat([
    Buffer.from([0x0a, ...varint(k.length)]),
    k,
    Buffer.from([0x12, ...varint(v.length)]),
    v,
  ]);
}

/** One etcd client pinned to a member: Put, and on a retryable failure the next member. */
export class EtcdCaller {
  private readonly clients = new Map<string, grpc.Client>();
  private next: number;

  constructor(
    private readonly addresses: string[],
    pinned: number,
    private readonly attemptMs = 2000,
    private readonly totalMs = 10_000,
  ) {
    this.next = pinned % addresses.length;
  }

  private client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), {
        ...fastReconnect,
        'grpc.use_local_subchannel_pool': 1,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  async put(key: string, value: string): Promise<{ attemptStartedAt: number }> {
    const deadline = performance.now() + this.totalMs;
    const body = encodePut(key, value);
    let lastErr: unknown;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const address = this.addresses[this.next];
      const startedAt = performance.now();
      try {
        await new Promise<void>((resolve, reject) => {
          this.client(address).makeUnaryRequest(
            '/etcdserverpb.KV/Put',
            (b: Buffer) => b,
            (b: Buffer) => b,
            body,
            new grpc.Metadata(),
            { deadline: Date.now() + Math.max(1, Math.min(this.attemptMs, deadline - startedAt)) },
            (err) => (err ? reject(err) : resolve()),
          );
        });
        return { attemptStartedAt: startedAt };
      } catch (err) {
        lastErr = err;
        const code = grpcCode(err);
        if (code === undefined || !retryableCodes.has(code) || performance.now() + 20 >= deadline) throw err;
        this.next = (this.next + 1) % this.addresses.length;
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
      }
    }
    throw lastErr;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
