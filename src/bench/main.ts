// `quorum-chat bench` (`make bench`): start a local 5-replica cluster in a temp dir, drive it with N
// concurrent clients in a closed loop, and measure on the client side: acknowledged writes per second,
// latency percentiles, a single client's p50, and failover gaps after kill -9 of the leader.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join, resolve } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { type CommandSpec, parseFlags } from '../cli-flags.js';
import { LocalCluster, bootCluster, serverMissingReason, waitFor } from '../server/local-cluster.js';
import { makeCerts } from '../tls/certs.js';
import { UserError } from '../user-error.js';
import { cpuPerOp, processCpuMs, totalCpuMs } from './cpu.js';
import { EtcdCaller, EtcdCluster, etcdMissingReason } from './etcd.js';
import { type PhaseFigures, type SeededChat, measureMixed, measureReads, seedChat } from './reads.js';
import {
  ChatCaller,
  type Party,
  codeName,
  grpcCode,
  makeParties,
  median,
  newKey,
  percentile,
} from './rpc.js';
import { LeadershipWatch, type MemberView, chatViews, startHogs } from './stability.js';
import { openViewers } from './viewer.js';

export interface BenchOptions {
  /** Run the bench cluster over TLS and mutual TLS (certificates made in its temp dir). */
  tls: boolean;
  /** How the bench's clients dial the cluster (set once the cluster is defined). */
  credentials?: grpc.ChannelCredentials;
  clients: number;
  seconds: number;
  messageBytes: number;
  failoverTrials: number;
  singleSeconds: number;
  size: number;
  out: string;
  keep: boolean;
  serverArgs: string[];
  /** Sizes of the chats the read phase seeds and reads (messages each). */
  readChatSizes: number[];
  /** Length of each phase of the /cluster viewer's cost measurement (0: skip it). */
  viewerSeconds: number;
  /** Skip the read phase (the four write figures only). */
  skipReads: boolean;
  /** Clients stay on one replica each (round robin over all), or follow the leader hint. */
  clientsOn: 'spread' | 'leader';
  /** Run the same driver against a local 5-member etcd first, then print ratios. */
  etcd: boolean;
  /** Leader stability: steady load with CPU hogs, no faults; count term moves and leader changes. */
  stability: boolean;
  /** Busy-loop processes during the stability run. */
  hogs: number;
}

export const benchCommand: CommandSpec = {
  name: 'bench',
  synopsis: [
    'bench [--clients 64] [--seconds 10] [--message-bytes 100] [--failover-trials 5] [--single-seconds 5]',
    '      [--size 5] [--read-chat-sizes 1000,100000] [--skip-reads] [--clients-on spread|leader] [--etcd] [--tls]',
    '      [--stability [--hogs 2]] [--viewer-seconds 0] [--out FILE] [--keep] [--server-arg FLAG]...',
  ],
  about:
    'Starts a local cluster in a temp dir, drives it with concurrent clients in a closed loop, and ' +
    'reports acknowledged writes per second, latency percentiles and failover gaps after kill -9.',
  flags: {
    clients: { value: 'N', default: '64', help: 'concurrent clients (1 to 4096)' },
    seconds: { value: 'S', default: '10', help: 'length of the throughput run (1 to 3600)' },
    'message-bytes': { value: 'N', default: '100', help: 'message size (16 to 4096)' },
    'failover-trials': { value: 'N', default: '5', help: 'kill -9 of the leader, N times (0 to 100)' },
    'single-seconds': { value: 'S', default: '5', help: 'length of the single-client run (0 to 600)' },
    size: { value: 'N', default: '5', help: 'replicas (1 to 9)' },
    out: { value: 'FILE', default: 'bench-results.json', help: 'where the results go (JSON)' },
    keep: { type: 'boolean', help: 'keep the temp dir (data and logs) afterwards' },
    tls: {
      type: 'boolean',
      help: 'run the cluster over TLS and mutual TLS (certificates from `certs` in the temp dir)',
    },
    'viewer-seconds': {
      value: 'S',
      default: '0',
      help: "the /cluster viewer's cost: phases of S s without and with a viewer on every replica (0 to 600)",
    },
    'read-chat-sizes': {
      value: 'N,N',
      default: '1000,100000',
      help: 'messages in each chat the read phase seeds and reads (1 to 1000000 each)',
    },
    'skip-reads': { type: 'boolean', help: 'skip the read phase (the four write figures only)' },
    'clients-on': {
      value: 'WHERE',
      default: 'spread',
      help: 'spread: client i stays on replica i mod N (followers forward); leader: follow x-leader',
    },
    etcd: {
      type: 'boolean',
      help: 'first run the same driver against a local 5-member etcd 3.4 (/usr/bin/etcd), then print ratios (with --stability: its stability run, then ours)',
    },
    stability: {
      type: 'boolean',
      help: 'leader stability: --seconds of load by --clients writers with --hogs busy loops, no faults',
    },
    hogs: { value: 'N', default: '2', help: 'busy-loop processes during --stability (0 to 16)' },
    'server-arg': {
      value: 'FLAG',
      multiple: true,
      help: 'one word passed to every server, repeatable (e.g. --server-arg --heartbeat-ms --server-arg 50)',
    },
  },
};

export function parseBenchArgs(argv: string[]): BenchOptions {
  // --server-arg takes the next word whatever it is (server flags start with dashes): glue it on first.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--server-arg' && i + 1 < argv.length) args.push(`--server-arg=${argv[++i]}`);
    else args.push(argv[i]);
  }
  const v = parseFlags(benchCommand, args);
  const int = (name: string, lo: number, hi: number) => {
    const n = Number(v[name]);
    if (!/^\d+$/.test(String(v[name])) || !Number.isInteger(n) || n < lo || n > hi)
      throw new UserError(`--${name} must be an integer from ${lo} to ${hi}`);
    return n;
  };
  return {
    tls: v.tls === true,
    clients: int('clients', 1, 4096),
    seconds: int('seconds', 1, 3600),
    messageBytes: int('message-bytes', 16, 4096),
    failoverTrials: int('failover-trials', 0, 100),
    singleSeconds: int('single-seconds', 0, 600),
    size: int('size', 1, 9),
    out: String(v.out),
    keep: v.keep === true,
    serverArgs: (v['server-arg'] as string[] | undefined) ?? [],
    readChatSizes: chatSizes(String(v['read-chat-sizes'])),
    viewerSeconds: int('viewer-seconds', 0, 600),
    skipReads: v['skip-reads'] === true,
    clientsOn: clientsOn(String(v['clients-on'])),
    etcd: v.etcd === true,
    stability: v.stability === true,
    hogs: int('hogs', 0, 16),
  };
}

function clientsOn(value: string): 'spread' | 'leader' {
  if (value !== 'spread' && value !== 'leader') throw new UserError('--clients-on must be spread or leader');
  return value;
}

function chatSizes(value: string): number[] {
  const sizes = value.split(',').map((x) => Number(x.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 1_000_000)) {
    throw new UserError('--read-chat-sizes must be a comma-separated list of integers from 1 to 1000000');
  }
  return sizes;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(latenciesMs: number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? 0),
    mean: round(sorted.length ? sum / sorted.length : 0),
  };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

interface LoadResult {
  acked: number;
  errors: Record<string, number>;
  elapsedMs: number;
  latency: LatencySummary;
  perSecond: number;
  /**
   * CPU ms (user + system, from /proc) per acknowledged write over the load, drain included: every
   * server together, the leader alone, and the load driver (this process). On a shared machine the
   * rate moves with the other load; these barely do, so they are what to compare between runs.
   */
  cpuMsPerWrite?: { servers: number; leader?: number; driver: number };
}

/** The server processes of a System, to read their CPU time: every pid, and the leader's. */
export interface ServerPids {
  pids: number[];
  leader?: number;
}

/** One client of the load: a write of `content`, retried as that client retries. */
export interface Writer {
  write(content: string): Promise<{ attemptStartedAt: number }>;
  close(): void;
}

/** What the load and the failover trials drive: Quorum Chat or etcd. */
export interface System {
  name: string;
  /** `count` fresh clients, client i on replica i mod N ("spread") unless the system says otherwise. */
  writers(count: number): Writer[];
  /**
   * Find the leader and kill -9 it; returns its name and performance.now() taken just before the
   * signal (not before the leader was looked up: writes acknowledged during the look-up were served by
   * the old leader and must not count as served after the kill).
   */
  killLeader(): Promise<{ killed: string; killedAt: number }>;
  /** Wait for a leader other than `killed`, restart `killed` and wait until it caught up. */
  recover(killed: string): Promise<string>;
  /** The live server processes and the leader's (for CPU per write). */
  servers?(): Promise<ServerPids>;
}

/** Closed-loop senders: each client sends, waits for the acknowledgement, sends again. */
class Load {
  readonly latencies: number[] = [];
  readonly errors: Record<string, number> = {};
  /** performance.now() of each acknowledgement, and when its successful attempt was sent. */
  readonly acks: { at: number; attemptAt: number }[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly writers: Writer[],
    private readonly messageBytes: number,
    private readonly credentials?: grpc.ChannelCredentials,
  ) {}

  start(): void {
    this.running = true;
    this.loops = this.writers.map((w, i) => this.loop(w, i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const w of this.writers) w.close();
  }

  private async loop(w: Writer, i: number): Promise<void> {
    for (let seq = 0; this.running && seq < 100_000_000; seq++) {
      const head = `${i}:${seq}:`;
      const content = head + 'x'.repeat(Math.max(0, this.messageBytes - head.length));
      const t0 = performance.now();
      try {
        const r = await w.write(content);
        const t1 = performance.now();
        this.latencies.push(t1 - t0);
        this.acks.push({ at: t1, attemptAt: r.attemptStartedAt });
      } catch (err) {
        const name = codeName(grpcCode(err));
        this.errors[name] = (this.errors[name] ?? 0) + 1;
      }
    }
  }
}

export async function timedLoad(
  writers: Writer[],
  messageBytes: number,
  seconds: number,
  servers?: ServerPids,
): Promise<LoadResult> {
  const load = new Load(writers, messageBytes);
  const cpu = cpuMeter(servers);
  const t0 = performance.now();
  load.start();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const stopAt = performance.now();
  await load.stop();
  const cpuMs = cpu();
  // Count only acknowledgements inside the window, so the drain at the end does not inflate the rate.
  const inWindow = load.acks.filter((a) => a.at <= stopAt).length;
  const elapsedMs = stopAt - t0;
  const all = load.acks.length;
  const per = (ms: number | undefined) => (ms === undefined || all === 0 ? undefined : round3(ms / all));
  const serversPerWrite = per(cpuMs.servers);
  return {
    acked: inWindow,
    errors: load.errors,
    elapsedMs: round(elapsedMs),
    latency: summarize(load.latencies),
    perSecond: round(inWindow / (elapsedMs / 1000)),
    ...(serversPerWrite !== undefined
      ? {
          cpuMsPerWrite: {
            servers: serversPerWrite,
            ...(cpuMs.leader !== undefined ? { leader: per(cpuMs.leader) } : {}),
            driver: per(cpuMs.driver) ?? 0,
          },
        }
      : {}),
  };
}

/** Starts counting CPU ms of the servers (all, and the leader) and of this process; call to read. */
function cpuMeter(servers: ServerPids | undefined): () => {
  servers?: number;
  leader?: number;
  driver: number;
} {
  const driver0 = process.cpuUsage();
  const all0 = servers ? totalCpuMs(servers.pids) : undefined;
  const leader0 = servers?.leader !== undefined ? processCpuMs(servers.leader) : undefined;
  return () => {
    const d = process.cpuUsage(driver0);
    const all1 = servers ? totalCpuMs(servers.pids) : undefined;
    const leader1 = servers?.leader !== undefined ? processCpuMs(servers.leader) : undefined;
    return {
      driver: (d.user + d.system) / 1000,
      ...(all0 !== undefined && all1 !== undefined ? { servers: all1 - all0 } : {}),
      ...(leader0 !== undefined && leader1 !== undefined ? { leader: leader1 - leader0 } : {}),
    };
  };
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** `; CPU per write: servers X ms (leader Y), driver Z ms`, or nothing when it was not measured. */
function cpuLine(r: LoadResult): string {
  const c = r.cpuMsPerWrite;
  if (!c) return '';
  const leader = c.leader !== undefined ? ` (leader ${c.leader})` : '';
  return `; CPU per write: servers ${c.servers} ms${leader}, driver ${c.driver} ms`;
}

/**
 * The /cluster viewer's cost on write throughput: load phases without and with a viewer on every
 * replica, alternated (without, with, without, with) so that drift over the run (a growing log, a warm
 * cache) falls on both sides alike.
 */
async function viewerCost(cluster: LocalCluster, parties: Party[], o: BenchOptions) {
  const sys = chatSystem(cluster, parties, o);
  const bases = cluster.ids().map((id) => {
    const { host, port, httpPort } = cluster.get(id).spec;
    return `http://${host}:${httpPort ?? port + 1000}`;
  });
  const without: LoadResult[] = [];
  const withViewer: LoadResult[] = [];
  let frames: Record<string, number> = {};
  for (let round = 0; round < 2; round++) {
    without.push(await timedLoad(sys.writers(o.clients), o.messageBytes, o.viewerSeconds));
    const viewers = openViewers(bases);
    // The inspectors switch on as the streams open: let them, then measure.
    await new Promise((r) => setTimeout(r, 500));
    try {
      withViewer.push(await timedLoad(sys.writers(o.clients), o.messageBytes, o.viewerSeconds));
    } finally {
      frames = viewers.frames();
      viewers.close();
    }
  }
  const rate = (rs: LoadResult[]) =>
    round(rs.reduce((n, r) => n + r.acked, 0) / (rs.reduce((n, r) => n + r.elapsedMs, 0) / 1000));
  const a = rate(without);
  const b = rate(withViewer);
  const drop = a > 0 ? round((100 * (a - b)) / a) : 0;
  console.log(
    `viewer cost: ${a} writes/s without a viewer, ${b} with one on every replica (${drop}% drop; target <= 10%); ` +
      `the viewer got ${JSON.stringify(frames)}`,
  );
  return {
    withoutPerSecond: a,
    withPerSecond: b,
    dropPercent: drop,
    phases: { without, with: withViewer },
    frames,
  };
}

interface FailoverTrial {
  killed: string;
  /** Wall-clock time of the kill (Unix ms), to read the replicas' logs against. */
  killedAtEpochMs: number;
  gapMs: number;
  /** Longest gap between consecutive acknowledgements around the kill. */
  longestAckGapMs: number;
  newLeader: string;
}

async function failoverTrial(sys: System, o: BenchOptions): Promise<FailoverTrial> {
  const load = new Load(sys.writers(o.clients), o.messageBytes);
  load.start();
  try {
    // Warm up: writes flowing before the kill.
    await waitFor(() => load.acks.length >= 50, { timeoutMs: 20_000, what: 'writes before the kill' });
    const { killed, killedAt } = await sys.killLeader();
    const killedAtEpochMs = Math.round(Date.now() - (performance.now() - killedAt));
    // Scan only what arrived since the last poll: the acknowledgement list grows by thousands a second.
    let scanned = 0;
    const first = await waitFor(
      () => {
        const from = scanned;
        scanned = load.acks.length;
        for (let i = from; i < scanned; i++) if (load.acks[i].attemptAt >= killedAt) return load.acks[i];
        return undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 5,
        what: 'an acknowledged write after the kill',
      },
    );
    await waitFor(() => load.acks.length > 0 && performance.now() - first.at > 200, {
      timeoutMs: 2000,
      intervalMs: 20,
    });
    const times = load.acks.map((a) => a.at).sort((a, b) => a - b);
    let longest = 0;
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i] - times[i - 1]);
    const newLeader = await sys.recover(killed);
    return {
      killed,
      killedAtEpochMs,
      gapMs: round(first.at - killedAt),
      longestAckGapMs: round(longest),
      newLeader,
    };
  } finally {
    await load.stop();
  }
}

/** Quorum Chat as a System: one chat party per client, SendMessage with a fresh idempotency key. */
function chatSystem(cluster: LocalCluster, parties: Party[], o: BenchOptions): System {
  const clientsOnLeader = o.clientsOn === 'leader';
  return {
    name: 'quorum-chat',
    writers: (count) =>
      parties.slice(0, count).map((p, i) => {
        const caller = new ChatCaller(cluster.addresses(), {
          attemptMs: 2000,
          totalMs: 10_000,
          credentials: o.credentials,
          ...(clientsOnLeader ? {} : { pinned: i }),
        });
        return {
          write: async (content: string) =>
            caller.call('SendMessage', { chat_id: p.chatId, content }, { token: p.token, key: newKey() }),
          close: () => caller.close(),
        };
      }),
    killLeader: async () => {
      const lead = await cluster.waitForLeader();
      const killedAt = performance.now();
      // kill() signals synchronously, then waits for the exit.
      await cluster.kill(lead.node_id, 'SIGKILL');
      return { killed: lead.node_id, killedAt };
    },
    servers: async () => {
      const lead = await cluster.waitForLeader();
      return {
        pids: cluster.live(true).flatMap((r) => (r.pid === undefined ? [] : [r.pid])),
        leader: cluster.get(lead.node_id).pid,
      };
    },
    recover: async (killed) => {
      const next = await cluster.waitForLeader({ not: killed });
      // Bring the victim back and let it catch up before the next trial.
      await cluster.restart(killed);
      const target = next.commit_index;
      await waitFor(async () => ((await cluster.status(killed))?.last_applied ?? -1) >= target, {
        timeoutMs: 60_000,
        what: `${killed} to catch up`,
      });
      return next.node_id;
    },
  };
}

/** The four figures of issue 10's table, for one system. */
interface WriteFigures {
  system: string;
  load: LoadResult;
  single?: LoadResult;
  failover?: { trials: FailoverTrial[]; medianMs?: number; maxMs?: number; error?: string };
}

async function writeFigures(sys: System, o: BenchOptions): Promise<WriteFigures> {
  console.log(`[${sys.name}] load: ${o.clients} clients, ${o.seconds} s, ${o.messageBytes}-byte messages`);
  const load = await timedLoad(sys.writers(o.clients), o.messageBytes, o.seconds, await sys.servers?.());
  console.log(
    `  ${load.perSecond} acknowledged writes/s (${load.acked} in ${(load.elapsedMs / 1000).toFixed(1)} s); ` +
      `latency p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms, max ${load.latency.max} ms; errors ${JSON.stringify(load.errors)}${cpuLine(load)}`,
  );
  let single: LoadResult | undefined;
  if (o.singleSeconds > 0) {
    console.log(`[${sys.name}] single client: ${o.singleSeconds} s`);
    single = await timedLoad(sys.writers(1), o.messageBytes, o.singleSeconds, await sys.servers?.());
    console.log(
      `  p50 ${single.latency.p50} ms, p99 ${single.latency.p99} ms, ${single.perSecond} writes/s${cpuLine(single)}`,
    );
  }
  const trials: FailoverTrial[] = [];
  // A trial that fails ends the trials, but not the run: the figures above still reach the file.
  let failoverError: string | undefined;
  for (let t = 0; t < o.failoverTrials; t++) {
    let trial: FailoverTrial;
    try {
      trial = await failoverTrial(sys, o);
    } catch (err) {
      failoverError = `trial ${t + 1}: ${err instanceof Error ? err.message : String(err)}`;
      console.log(`[${sys.name}] failover ${failoverError}`);
      break;
    }
    trials.push(trial);
    console.log(
      `[${sys.name}] failover ${t + 1}/${o.failoverTrials}: killed ${trial.killed}, next write acknowledged after ${trial.gapMs} ms (new leader ${trial.newLeader})`,
    );
  }
  const gaps = trials.map((t) => t.gapMs);
  const failover =
    trials.length || failoverError
      ? {
          trials,
          medianMs: trials.length ? round(median(gaps)) : undefined,
          maxMs: trials.length ? round(Math.max(...gaps)) : undefined,
          error: failoverError,
        }
      : undefined;
  if (failover)
    console.log(`[${sys.name}] failover: median ${failover.medianMs} ms, max ${failover.maxMs} ms`);
  return { system: sys.name, load, single, failover };
}

/** The four figures in one line each, and (given etcd's) the ratios against etcd. */
export function figuresTable(qc: WriteFigures, etcd?: WriteFigures): string[] {
  const rows: [string, (f: WriteFigures) => number | undefined, 'higher' | 'lower'][] = [
    ['writes/s, N clients', (f) => f.load.perSecond, 'higher'],
    ['p50 ms, N clients', (f) => f.load.latency.p50, 'lower'],
    ['p99 ms, N clients', (f) => f.load.latency.p99, 'lower'],
    ['single client p50 ms', (f) => f.single?.latency.p50, 'lower'],
    ['failover median ms (kill -9 leader)', (f) => f.failover?.medianMs, 'lower'],
  ];
  const lines: string[] = [];
  lines.push(etcd ? 'figure | etcd | quorum-chat | quorum-chat/etcd' : 'figure | quorum-chat');
  for (const [label, get, better] of rows) {
    const q = get(qc);
    if (!etcd) {
      lines.push(`${label} | ${q ?? '-'}`);
      continue;
    }
    const e = get(etcd);
    const r = q !== undefined && e !== undefined && e > 0 ? `${ratio(q, e)}x (${better} is better)` : '-';
    lines.push(`${label} | ${e ?? '-'} | ${q ?? '-'} | ${r}`);
  }
  return lines;
}

/**
 * Server flags the bench adds unless the caller set them: it seeds chats of 100,000 messages from two
 * users and its clients write faster than 20/s each, and it signs up and logs in every client, so it
 * lifts the per-user write limits and lowers scrypt's cost. It measures the replicated path, not the
 * limiter or the password hash.
 */
export function benchServerArgs(serverArgs: string[]): string[] {
  const given = (flag: string) => serverArgs.some((a) => a === flag || a.startsWith(`${flag}=`));
  const out: string[] = [];
  if (!given('--write-rate') && !given('--write-burst')) {
    out.push('--write-rate', '1000000', '--write-burst', '1000000');
  }
  if (!given('--scrypt-n')) out.push('--scrypt-n', '16384');
  return out;
}

interface ChatReads {
  size: number;
  seed: { ms: number; messages: number; perSecond: number; errors: Record<string, number> };
  leaderOnly: PhaseFigures;
  spread: PhaseFigures;
  /** spread reads/s over leader-only reads/s. */
  spreadOverLeader: number;
  /**
   * The same ratio of the two phases' CPU ceilings: what spreading could give on this machine at the
   * measured CPU per read, whatever else runs on it (undefined without CPU figures).
   */
  spreadOverLeaderCeiling?: number;
}

interface ReadResults {
  clients: number;
  replicas: number;
  chats: ChatReads[];
  mixed: PhaseFigures & { writeShare: number };
  ratios: {
    /** p50 of the largest chat over p50 of the smallest, leader only and spread (target ≤ 1.5). */
    p50LargestOverSmallest?: { leaderOnly: number; spread: number; sizes: [number, number] };
    /** Follower-spread read throughput over leader-only, per chat size (target ≥ 2). */
    spreadOverLeader: Record<string, number>;
    /** Mixed ops/s over the write-only writes/s of the same run (target ≥ 3). */
    mixedOverWriteOnly: number;
  };
  clean: boolean;
}

function ratio(a: number, b: number): number {
  return b > 0 ? round(a / b) : 0;
}

function describe(f: PhaseFigures, unit: string): string {
  const cpu =
    f.serverCpuMsPerOp !== undefined
      ? `; CPU per op: replicas ${f.serverCpuMsPerOp} ms (busiest ${f.busiestReplicaCpuMsPerOp} ms), driver ${f.driverCpuMsPerOp} ms; CPU ceiling ${f.cpuCeilingPerSecond} ${unit}/s`
      : '';
  return (
    `${f.perSecond} ${unit}/s (${f.ok} in ${(f.elapsedMs / 1000).toFixed(1)} s); ` +
    `p50 ${f.latency.p50} ms, p99 ${f.latency.p99} ms, max ${f.latency.max} ms; errors ${JSON.stringify(f.errors)}${cpu}`
  );
}

/** Runs a phase and adds the CPU figures per successful operation: replicas, driver, ceiling (see PhaseFigures). */
async function withServerCpu(cluster: LocalCluster, run: () => Promise<PhaseFigures>): Promise<PhaseFigures> {
  const pids = cluster.live(true).flatMap((r) => (r.pid === undefined ? [] : [r.pid]));
  const before = pids.map((pid) => processCpuMs(pid));
  const driverBefore = process.cpuUsage();
  const f = await run();
  const driver = process.cpuUsage(driverBefore);
  const after = pids.map((pid) => processCpuMs(pid));
  return { ...f, ...cpuPerOp(before, after, (driver.user + driver.system) / 1000, f.ok, os.cpus().length) };
}

/**
 * Seeds one chat per size (timed apart), measures GetMessages on the leader only and spread over every
 * replica, then the 90/10 mixed workload on the load parties' chats, spread over every replica.
 */
async function readPhase(
  cluster: LocalCluster,
  o: BenchOptions,
  writeOnly: LoadResult,
  parties: Party[],
): Promise<ReadResults> {
  const addresses = cluster.addresses();
  const setup = new ChatCaller(addresses, { attemptMs: 5000, totalMs: 60_000, credentials: o.credentials });
  const pairs = await makeParties(setup, `r${Date.now().toString(36)}`, o.readChatSizes.length, {
    concurrency: 2,
  });
  setup.close();
  console.log(
    `reads: GetMessages at ${o.clients} clients, ${o.seconds} s per figure, on chats of ${o.readChatSizes.join(', ')} messages`,
  );
  // Seed every chat first, then measure them back to back, so that the chats are compared under the
  // same conditions (on a shared machine the load moves during a long seed).
  const seededChats: { seeded: SeededChat; seed: ChatReads['seed'] }[] = [];
  for (const [i, size] of o.readChatSizes.entries()) {
    const seeded = await seedChat(addresses, pairs[i], size, {
      concurrency: o.clients,
      messageBytes: o.messageBytes,
      onProgress: (n) => console.log(`  seeding the chat of ${size}: ${n} written`),
      credentials: o.credentials,
    });
    const seed = {
      ms: round(seeded.seedMs),
      messages: seeded.ids.length,
      perSecond: round(seeded.ids.length / (seeded.seedMs / 1000)),
      errors: seeded.errors,
    };
    console.log(
      `  chat of ${size} messages: seeded ${seed.messages} in ${(seed.ms / 1000).toFixed(1)} s (${seed.perSecond} messages/s, not measured); errors ${JSON.stringify(seed.errors)}`,
    );
    seededChats.push({ seeded, seed });
  }
  const chats: ChatReads[] = [];
  for (const { seeded, seed } of seededChats) {
    const size = seeded.size;
    console.log(`  chat of ${size} messages:`);
    const leader = await cluster.waitForLeader();
    const leaderOnly = await withServerCpu(cluster, () =>
      measureReads(seeded, o.clients, [leader.address], o.seconds, summarize, o.credentials),
    );
    console.log(`    leader only (${leader.node_id}): ${describe(leaderOnly, 'reads')}`);
    const spread = await withServerCpu(cluster, () =>
      measureReads(seeded, o.clients, addresses, o.seconds, summarize, o.credentials),
    );
    console.log(`    spread over ${addresses.length} replicas: ${describe(spread, 'reads')}`);
    chats.push({
      size,
      seed,
      leaderOnly,
      spread,
      spreadOverLeader: ratio(spread.perSecond, leaderOnly.perSecond),
      spreadOverLeaderCeiling:
        spread.cpuCeilingPerSecond !== undefined && leaderOnly.cpuCeilingPerSecond !== undefined
          ? ratio(spread.cpuCeilingPerSecond, leaderOnly.cpuCeilingPerSecond)
          : undefined,
    });
  }

  const mixedFigures = await withServerCpu(cluster, () =>
    measureMixed(parties, addresses, o.seconds, o.messageBytes, summarize, o.credentials),
  );
  const mixed = { ...mixedFigures, writeShare: 0.1 };
  console.log(
    `mixed 90% GetMessages / 10% SendMessage: ${parties.length} clients spread over ${addresses.length} replicas, ${o.seconds} s`,
  );
  console.log(
    `  ${describe(mixed, 'ops')}; ${JSON.stringify(mixed.byKind)}; write-only was ${writeOnly.perSecond} writes/s`,
  );

  const bySize = [...chats].sort((a, b) => a.size - b.size);
  const small = bySize[0];
  const large = bySize[bySize.length - 1];
  const ratios: ReadResults['ratios'] = {
    spreadOverLeader: Object.fromEntries(chats.map((c) => [String(c.size), c.spreadOverLeader])),
    mixedOverWriteOnly: ratio(mixed.perSecond, writeOnly.perSecond),
  };
  if (small && large && small !== large) {
    ratios.p50LargestOverSmallest = {
      leaderOnly: ratio(large.leaderOnly.latency.p50, small.leaderOnly.latency.p50),
      spread: ratio(large.spread.latency.p50, small.spread.latency.p50),
      sizes: [large.size, small.size],
    };
    console.log(
      `ratio p50(${large.size})/p50(${small.size}): leader only ${ratios.p50LargestOverSmallest.leaderOnly}, spread ${ratios.p50LargestOverSmallest.spread} (target <= 1.5)`,
    );
  }
  for (const c of chats) {
    const ceiling =
      c.spreadOverLeaderCeiling !== undefined
        ? `; of the CPU ceilings on this machine (${os.cpus().length} cores): ${c.spreadOverLeaderCeiling}`
        : '';
    console.log(
      `ratio spread/leader-only read throughput, chat of ${c.size}: ${c.spreadOverLeader} (target >= 2)${ceiling}`,
    );
  }
  console.log(`ratio mixed ops/s / write-only writes/s: ${ratios.mixedOverWriteOnly} (target >= 3)`);

  const phases = [...chats.flatMap((c) => [c.leaderOnly, c.spread]), mixed];
  const clean =
    phases.every((f) => Object.keys(f.errors).length === 0) &&
    chats.every((c) => Object.keys(c.seed.errors).length === 0 && c.seed.messages === c.size);
  if (!clean) console.log('reads: THERE WERE ERRORS (counted by code above)');
  return { clients: o.clients, replicas: addresses.length, chats, mixed, ratios, clean };
}

export async function main(argv: string[]): Promise<number> {
  const o = parseBenchArgs(argv);
  const missing = serverMissingReason() ?? (o.etcd ? etcdMissingReason() : undefined);
  if (missing) throw new UserError(missing);
  const raised = benchServerArgs(o.serverArgs);
  if (raised.length) {
    o.serverArgs = [...o.serverArgs, ...raised];
    console.log(`write limits lifted and scrypt's cost lowered for seeding and load (${raised.join(' ')})`);
  }
  const root = fs.mkdtempSync(join(os.tmpdir(), 'qc-bench-'));
  let etcdFigures: WriteFigures | undefined;
  let etcdStability: StabilityFigures | undefined;
  if (o.etcd) {
    const etcd = new EtcdCluster(join(root, 'etcd'), o.size);
    fs.mkdirSync(join(root, 'etcd'));
    const stopEtcd = () => void etcd.stopAll().then(() => process.exit(130));
    process.once('SIGINT', stopEtcd);
    try {
      console.log(`starting ${o.size} etcd members (pre-vote, heartbeat 30 ms, election 150 ms)...`);
      await etcd.start();
      if (o.stability) etcdStability = await stabilityRun(etcdSystem(etcd), () => etcd.views(), o);
      else etcdFigures = await writeFigures(etcdSystem(etcd), o);
    } finally {
      process.off('SIGINT', stopEtcd);
      await etcd.stopAll();
    }
  }
  // Quiet servers unless a --server-arg asks for a log level (the flag may appear only once).
  const logLevel = o.serverArgs.includes('--log-level') ? undefined : 'warn';
  const ids = Array.from({ length: o.size }, (_, i) => `server${i + 1}`);
  const tlsDir = o.tls ? join(root, 'certs') : undefined;
  if (tlsDir) makeCerts(tlsDir, ids);
  const cluster = new LocalCluster({ root, logLevel, serverArgs: o.serverArgs, tlsDir });
  o.credentials = cluster.credentials();
  const onSignal = () => {
    void cluster.stopAll().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let first: string | undefined;
    for (const id of ids) {
      const r = await cluster.define(id, { peers: first ? [first] : [] });
      first ??= r.address;
    }
    console.log(`starting ${o.size} replicas in ${root}...`);
    try {
      await bootCluster(cluster, ids);
      await cluster.waitForConvergence();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new UserError(`the bench cluster did not form: ${msg} (run with --keep to inspect ${root})`);
    }

    const setup = new ChatCaller(cluster.addresses(), {
      attemptMs: 5000,
      totalMs: 60_000,
      credentials: o.credentials,
    });
    const pairs = await makeParties(setup, `b${Date.now().toString(36)}`, Math.ceil(o.clients / 2), {
      concurrency: 8,
    });
    setup.close();
    const parties = pairs.flat().slice(0, o.clients);
    console.log(
      `clients: ${o.clientsOn === 'spread' ? `client i on replica i mod ${o.size} (followers forward)` : 'following the leader'}`,
    );
    if (o.stability) return await stabilityPhase(cluster, ids, parties, o, etcdStability);
    const chat = await writeFigures(chatSystem(cluster, parties, o), o);
    const reads = o.skipReads ? undefined : await readPhase(cluster, o, chat.load, parties);
    const viewer = o.viewerSeconds > 0 ? await viewerCost(cluster, parties, o) : undefined;

    console.log(
      `\nthe figures of issue 10 (${o.clients} clients, ${o.messageBytes}-byte messages, same run):`,
    );
    for (const line of figuresTable(chat, etcdFigures))
      console.log(`  ${line.replaceAll('N clients', `${o.clients} clients`)}`);
    const results = {
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model,
        node: process.version,
        loadavg: os.loadavg(),
      },
      options: { ...o, keep: undefined, credentials: undefined },
      load: chat.load,
      viewer,
      single: chat.single,
      reads,
      failover: chat.failover,
      etcd: etcdFigures,
      ratios: etcdFigures ? ratiosAgainst(chat, etcdFigures) : undefined,
      clean:
        (reads?.clean ?? true) &&
        Object.keys(chat.load.errors).length === 0 &&
        chat.failover?.error === undefined,
    };
    fs.writeFileSync(resolve(o.out), `${JSON.stringify(results, null, 2)}\n`);
    console.log(`results written to ${resolve(o.out)}`);
    if (!results.clean) console.log('THIS RUN HAD ERRORS: see the errors above and in the results file.');
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cluster.stopAll();
    if (!o.keep) fs.rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
}

/** Quorum Chat's figures over etcd's (writes/s: higher is better; the latencies: lower is better). */
function ratiosAgainst(qc: WriteFigures, etcd: WriteFigures) {
  return {
    writesPerSecond: ratio(qc.load.perSecond, etcd.load.perSecond),
    p50: ratio(qc.load.latency.p50, etcd.load.latency.p50),
    p99: ratio(qc.load.latency.p99, etcd.load.latency.p99),
    singleP50: ratio(qc.single?.latency.p50 ?? 0, etcd.single?.latency.p50 ?? 0),
    failoverMedian: ratio(qc.failover?.medianMs ?? 0, etcd.failover?.medianMs ?? 0),
  };
}

/**
 * etcd as a System: client i on member i mod N (etcd clients do not follow a leader hint: --clients-on
 * leader changes only Quorum Chat's side), KV.Put of key b/<client>:<seq>.
 */
function etcdSystem(etcd: EtcdCluster): System {
  const name = (index: number) => `etcd${index + 1}`;
  return {
    name: 'etcd',
    writers: (count) =>
      Array.from({ length: count }, (_, i) => {
        const caller = new EtcdCaller(etcd.addresses(), i);
        return {
          write: (content: string) => caller.put(`b/${content.slice(0, 24)}`, content),
          close: () => caller.close(),
        };
      }),
    killLeader: async () => {
      const lead = await etcd.waitForLeader();
      const killedAt = performance.now();
      etcd.kill(lead.index);
      return { killed: name(lead.index), killedAt };
    },
    servers: async () => {
      const lead = await etcd.waitForLeader();
      return { pids: etcd.pids(), leader: etcd.pid(lead.index) };
    },
    recover: async (killed) => {
      const index = Number(killed.slice(4)) - 1;
      const next = await etcd.waitForLeader({ not: index, timeoutMs: 30_000 });
      await etcd.restart(index);
      return name(next.index);
    },
  };
}

/** Leader stability of one system: the load with CPU hogs and no faults. */
interface StabilityFigures {
  system: string;
  termMoves: number;
  leaderChanges: number;
  leaders: string[];
  polls: number;
  hogs: number;
  seconds: number;
  load: LoadResult;
  failedCalls: number;
}

async function stabilityRun(
  sys: Pick<System, 'name' | 'writers'>,
  views: () => Promise<MemberView[]>,
  o: BenchOptions,
): Promise<StabilityFigures> {
  console.log(
    `[${sys.name}] stability: ${o.clients} writers for ${o.seconds} s with ${o.hogs} CPU hogs, no faults (term moves and leader changes should be 0)`,
  );
  const stopHogs = startHogs(o.hogs);
  let load: LoadResult;
  let watched: Awaited<ReturnType<LeadershipWatch['stop']>>;
  try {
    const watch = new LeadershipWatch(views);
    load = await timedLoad(sys.writers(o.clients), o.messageBytes, o.seconds);
    watched = await watch.stop();
  } finally {
    await stopHogs();
  }
  const failed = Object.values(load.errors).reduce((a, b) => a + b, 0);
  console.log(`  term moves: ${watched.termMoves}`);
  console.log(`  leader changes: ${watched.leaderChanges} (${watched.leaders.join(' -> ')})`);
  console.log(`  writes/s: ${load.perSecond}; p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms`);
  console.log(`  failed calls: ${failed} ${JSON.stringify(load.errors)}`);
  return { system: sys.name, ...watched, hogs: o.hogs, seconds: o.seconds, load, failedCalls: failed };
}

/** `--stability`: Quorum Chat's figures (after etcd's, with --etcd, from the same run) to the file. */
async function stabilityPhase(
  cluster: LocalCluster,
  ids: string[],
  parties: Party[],
  o: BenchOptions,
  etcd?: StabilityFigures,
) {
  const stability = await stabilityRun(chatSystem(cluster, parties, o), chatViews(cluster, ids), o);
  if (etcd) {
    console.log('\nleader stability, same run (etcd | quorum-chat):');
    console.log(`  term moves | ${etcd.termMoves} | ${stability.termMoves}`);
    console.log(`  leader changes | ${etcd.leaderChanges} | ${stability.leaderChanges}`);
    console.log(`  writes/s | ${etcd.load.perSecond} | ${stability.load.perSecond}`);
    console.log(`  p99 ms | ${etcd.load.latency.p99} | ${stability.load.latency.p99}`);
    console.log(`  failed calls | ${etcd.failedCalls} | ${stability.failedCalls}`);
  }
  const results = {
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg() },
    options: { ...o, keep: undefined, credentials: undefined },
    stability,
    etcd,
  };
  fs.writeFileSync(resolve(o.out), `${JSON.stringify(results, null, 2)}\n`);
  console.log(`results written to ${resolve(o.out)}`);
  return 0;
}
