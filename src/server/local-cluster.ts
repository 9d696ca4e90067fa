// Local clusters of real `quorum-chat server` processes on one machine: the launcher behind
// `quorum-chat cluster` (`make run`), the benchmark and the end-to-end fault tests. It starts replicas
// exactly as a user would (the first bootstraps with an empty data dir and no --peers, the others join
// through --peers), and it only ever signals the processes it started, by pid.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { type CommandSpec, parseFlags } from '../cli-flags.js';
import { restrictUmask } from '../private-files.js';
import { services } from '../proto.js';
import { makeCerts } from '../tls/certs.js';
import { clientChannelCredentials } from '../tls/credentials.js';
import { UserError } from '../user-error.js';
import { type LauncherReply, isLauncherRequest } from './launcher-link.js';

/** The project root, from src/server/ or from dist/src/server/. */
export const projectRoot = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(join('dist', 'src')) ? join(here, '..', '..', '..') : join(here, '..', '..');
})();

/** The launcher a user runs. */
export const launcherPath = join(projectRoot, 'bin', 'quorum-chat');

/** Why a cluster cannot be started yet (the server is not built), or undefined when it can. */
export function serverMissingReason(): string | undefined {
  const main = join(projectRoot, 'dist', 'src', 'server', 'main.js');
  return fs.existsSync(main) ? undefined : `bin/quorum-chat server is not built yet (${main} is missing)`;
}

/** ClusterStatus of cluster.proto, as src/proto.ts loads it (keepCase, longs as numbers). */
export interface ClusterStatus {
  node_id: string;
  address: string;
  role: string;
  term: number;
  leader_id: string;
  leader_address: string;
  commit_index: number;
  last_applied: number;
  last_log_index: number;
  snapshot_index: number;
  members: { id: string; address: string; voter: boolean }[];
  state_digest: string;
  /** Health (GetStatus only): p99 of the last 1000 fsyncs, ms. */
  fsync_p99_ms?: number;
  /** Fsyncs slower than --slow-fsync-ms since start. */
  slow_fsyncs?: number;
  /** p99 event-loop delay over the last 10 s, ms. */
  event_loop_lag_p99_ms?: number;
}

/** Channel options for short-lived test and bench clients: reconnect quickly after a restart. */
export const fastReconnect: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.min_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 500,
};

/** One unary call with a deadline; resolves with the response or rejects with the grpc ServiceError. */
export function unary<Res>(
  client: grpc.Client,
  method: string,
  request: object,
  opts: { metadata?: grpc.Metadata; deadlineMs?: number; onMetadata?: (md: grpc.Metadata) => void } = {},
): Promise<Res> {
  const fn = (client as unknown as Record<string, unknown>)[method];
  if (typeof fn !== 'function') return Promise.reject(new Error(`no rpc ${method}`));
  return new Promise<Res>((resolvePromise, reject) => {
    const deadline = Date.now() + (opts.deadlineMs ?? 2000);
    const call = (fn as (...a: unknown[]) => grpc.ClientUnaryCall).call(
      client,
      request,
      opts.metadata ?? new grpc.Metadata(),
      { deadline },
      (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolvePromise(res)),
    );
    if (opts.onMetadata) {
      const seen = opts.onMetadata;
      call.on('metadata', seen);
      call.on('status', (s: grpc.StatusObject) => seen(s.metadata));
    }
  });
}

// Ports handed out by this process, so two replicas of one process never get the same port even
// though each probe socket is closed before the server binds it.
const handedOut = new Set<number>();

/** A free TCP port on `host`: bind port 0, read the port, close. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolvePort(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found after 50 probes');
}

/** Whether `port` can be bound on `host` right now. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = net.createServer();
    srv.once('error', () => resolveFree(false));
    srv.listen(port, host, () => srv.close(() => resolveFree(true)));
  });
}

/** The message of a log line: pino's JSON `msg`, or the line itself. */
function messageOf(line: string): string {
  try {
    const o = JSON.parse(line) as { msg?: unknown };
    if (typeof o.msg === 'string') return o.msg;
  } catch {
    // Not JSON (pretty output, or a start banner).
  }
  return line.trim();
}

/**
 * A replica's exit as a plain sentence: removed from the cluster, stopped by a signal, stopped cleanly,
 * or failed with the last line of its log.
 */
export function describeExit(
  id: string,
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined,
  logTail = '',
): string {
  // Only this run's lines: the launcher marks each start in the log with '--- start'.
  const all = logTail.split('\n');
  const from = all.findLastIndex((l) => l.startsWith('--- start'));
  const lines = all.slice(from + 1).filter((l) => l.trim() !== '');
  if (lines.some((l) => messageOf(l).startsWith('this replica was removed from the cluster')))
    return `${id} was removed from the cluster, so it stopped itself.`;
  if (!exit) return `${id} is not running.`;
  if (exit.signal === 'SIGKILL') return `${id} was killed (SIGKILL).`;
  if (exit.signal) return `${id} was stopped by ${exit.signal}.`;
  if (exit.code === 0) return `${id} stopped cleanly.`;
  const last = lines.length > 0 ? messageOf(lines[lines.length - 1]) : '';
  return `${id} failed with exit code ${exit.code}${last ? `: ${last.replace(/\.$/, '')}` : ''}.`;
}

/**
 * A restart or start asked from a /cluster page. The request reaches the launcher through a replica
 * (`via`: the target itself when up, or any live one), which is not necessarily the page's replica.
 */
export function describeRestartRequest(id: string, alive: boolean, via: string): string {
  const how = via === id ? `through ${id} itself` : `through ${via}`;
  return alive
    ? `Restarting ${id} (kill -9, then a start from its data dir), as asked on a /cluster page (${how}).`
    : `Starting ${id} from its data dir, as asked on a /cluster page (${how}).`;
}

/** Thrown from a waitFor condition to stop waiting at once (e.g. the process being waited on died). */
export class WaitAborted extends Error {}

/** Poll `condition` until it returns a truthy value or the deadline passes (then throw, naming `what`). */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: { timeoutMs?: number; what?: string; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  const maxPolls = Math.ceil(timeoutMs / Math.max(1, intervalMs)) + 10;
  let lastError: unknown;
  for (let poll = 0; poll < maxPolls; poll++) {
    try {
      const value = await condition();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      if (err instanceof WaitAborted) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
  const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'}${why}`);
}

export type Signal = 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT' | 'SIGINT';

export interface ReplicaSpec {
  id: string;
  host: string;
  port: number;
  /** Passed as --http-port when set; otherwise the server's default, PORT+1000. */
  httpPort?: number;
  dataDir: string;
  /** --peers on start (the first replica bootstraps without). */
  peers: string[];
  /** Certificates for this replica other than the cluster's (tests of a peer from another CA). */
  tlsDir?: string;
}

/** A replica this launcher manages: its spec, its current process (if any), its log files. */
export class Replica {
  child: ChildProcess | undefined;
  pid: number | undefined;
  paused = false;
  exited: Promise<void> = Promise.resolve();
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  starts = 0;

  constructor(
    readonly spec: ReplicaSpec,
    readonly stdoutPath: string,
    readonly stderrPath: string,
  ) {}

  get address(): string {
    return `${this.spec.host}:${this.spec.port}`;
  }

  get alive(): boolean {
    return this.child !== undefined;
  }
}

export interface LocalClusterOptions {
  /** Parent of the data dirs (the default cluster.secret lives here) and of the log files. */
  root: string;
  host?: string;
  /** Extra server flags, e.g. ['--heartbeat-ms', '50']. */
  serverArgs?: string[];
  logLevel?: string;
  /** The launcher (argv prefix before `server ...`); tests may point it at a stand-in. */
  command?: string[];
  /** Where stdout/stderr files go; default `root`. */
  logDir?: string;
  /**
   * Open an IPC channel to each replica (src/server/launcher-link.ts), through which its /cluster page
   * may ask this launcher to restart a replica (kill -9, then start from its data dir) or start one that
   * is down. Off by default: tests restart replicas themselves.
   */
  supervise?: boolean;
  /** Told about every restart a replica asked for (the `cluster` command prints it). */
  onRestartRequest?: (id: string, by: string) => void;
  /** Told whenever a replica's process exits, whoever stopped it. */
  onExit?: (id: string, exit: { code: number | null; signal: NodeJS.Signals | null }) => void;
  /**
   * Run over TLS and mutual TLS with the certificates in this directory, as `quorum-chat certs` makes
   * them: `ca.crt`, and `<id>.crt` / `<id>.key` for each replica. The launcher's own clients verify
   * the replicas against ca.crt.
   */
  tlsDir?: string;
}

/** The server flags of replica `id` for the certificates in `dir` (`quorum-chat certs` layout). */
export function tlsServerArgs(dir: string, id: string): string[] {
  return [
    '--tls-cert-file',
    join(dir, `${id}.crt`),
    '--tls-key-file',
    join(dir, `${id}.key`),
    '--tls-ca-file',
    join(dir, 'ca.crt'),
  ];
}

interface Observed {
  term: number;
  commit_index: number;
  last_applied: number;
  receivedAt: number;
}

/** Flags for `server` from a spec, exactly as API.md §1 spells them. */
export function serverArgs(spec: ReplicaSpec, extra: string[] = [], logLevel?: string): string[] {
  const args = ['server', '--id', spec.id, '--port', String(spec.port), '--host', spec.host];
  args.push('--data-dir', spec.dataDir);
  if (spec.httpPort !== undefined) args.push('--http-port', String(spec.httpPort));
  if (spec.peers.length > 0) args.push('--peers', spec.peers.join(','));
  if (logLevel) args.push('--log-level', logLevel);
  return [...args, ...extra];
}

export class LocalCluster {
  readonly replicas = new Map<string, Replica>();
  /** Term, commit or applied index seen to go backwards on some replica (DESIGN invariant 8). */
  readonly monotonicViolations: string[] = [];
  private readonly observed = new Map<string, Observed>();
  private readonly clients = new Map<string, grpc.Client>();
  private channelCredentials: grpc.ChannelCredentials | undefined;
  /** Replicas being restarted on a replica's request (one restart at a time per replica). */
  private readonly restarting = new Set<string>();
  private readonly host: string;
  private readonly logDir: string;

  constructor(readonly opts: LocalClusterOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.logDir = opts.logDir ?? opts.root;
    fs.mkdirSync(opts.root, { recursive: true });
    fs.mkdirSync(this.logDir, { recursive: true });
  }

  /** Define a replica (not started). Ports are free ports unless given. */
  async define(
    id: string,
    opts: { port?: number; httpPort?: number | 'default'; peers?: string[]; tlsDir?: string } = {},
  ): Promise<Replica> {
    if (this.replicas.has(id)) throw new Error(`replica ${id} is already defined`);
    const port = opts.port ?? (await freePort(this.host));
    const httpPort = opts.httpPort === 'default' ? undefined : (opts.httpPort ?? (await freePort(this.host)));
    const spec: ReplicaSpec = {
      id,
      host: this.host,
      port,
      httpPort,
      dataDir: join(this.opts.root, id),
      peers: opts.peers ?? [],
      ...(opts.tlsDir ? { tlsDir: opts.tlsDir } : {}),
    };
    const replica = new Replica(
      spec,
      join(this.logDir, `${id}.stdout.log`),
      join(this.logDir, `${id}.stderr.log`),
    );
    this.replicas.set(id, replica);
    return replica;
  }

  get(id: string): Replica {
    const r = this.replicas.get(id);
    if (!r) throw new Error(`no replica ${id}`);
    return r;
  }

  ids(): string[] {
    return [...this.replicas.keys()];
  }

  addresses(): string[] {
    return [...this.replicas.values()].map((r) => r.address);
  }

  /** Live (started, not exited) replicas; `includePaused` also counts SIGSTOPped ones. */
  live(includePaused = false): Replica[] {
    return [...this.replicas.values()].filter((r) => r.alive && (includePaused || !r.paused));
  }

  /**
   * Spawn the replica's process (with its spec's --peers) and stream its output to its log files.
   * With `restoreFrom`, it runs `restore --from FILE` with the same flags instead of `server`: the data
   * dir is built from that backup, then served (the spec must have no --peers).
   */
  start(id: string, opts: { peers?: string[]; restoreFrom?: string } = {}): Replica {
    const r = this.get(id);
    if (r.alive) throw new Error(`replica ${id} is already running (pid ${r.pid})`);
    const [cmd, ...prefix] = this.opts.command ?? [launcherPath];
    const spec = opts.peers ? { ...r.spec, peers: opts.peers } : r.spec;
    const tlsDir = r.spec.tlsDir ?? this.opts.tlsDir;
    const extra = [...(this.opts.serverArgs ?? []), ...(tlsDir ? tlsServerArgs(tlsDir, id) : [])];
    const command = serverArgs(spec, extra, this.opts.logLevel);
    if (opts.restoreFrom) command.splice(0, 1, 'restore', '--from', opts.restoreFrom);
    const args = [...prefix, ...command];
    const out = fs.openSync(r.stdoutPath, 'a');
    const err = fs.openSync(r.stderrPath, 'a');
    fs.writeSync(
      err,
      `\n--- start #${r.starts + 1} at ${new Date().toISOString()}: ${cmd} ${args.join(' ')}\n`,
    );
    let child: ChildProcess;
    try {
      // Its own process group: a Ctrl-C in the terminal reaches only the launcher, which then stops each
      // replica by pid, once, instead of every replica getting SIGINT and then SIGTERM.
      const supervise = this.opts.supervise === true;
      child = spawn(cmd, args, {
        stdio: supervise ? ['ignore', out, err, 'ipc'] : ['ignore', out, err],
        env: { ...process.env, CI: '1', ...(supervise ? { QC_LAUNCHER: '1' } : {}) },
        detached: true,
      });
      if (supervise) {
        child.on('message', (m) => void this.onChildMessage(id, child, m));
        // A replica's channel must not keep this launcher alive on its own.
        child.channel?.unref();
      }
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    r.child = child;
    r.pid = child.pid;
    r.paused = false;
    r.starts++;
    liveChildren.add(child);
    r.exited = new Promise<void>((done) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (r.child === child) {
          r.child = undefined;
          r.paused = false;
          r.lastExit = { code, signal };
        }
        this.opts.onExit?.(id, { code, signal });
        liveChildren.delete(child);
        done();
      };
      child.once('exit', finish);
      child.once('error', () => finish(-1, null));
    });
    return r;
  }

  /** Signal a replica by its pid. SIGKILL and SIGTERM resolve once the process has exited. */
  async kill(id: string, signal: Signal, opts: { timeoutMs?: number } = {}): Promise<void> {
    const r = this.get(id);
    const child = r.child;
    if (!child || r.pid === undefined) throw new Error(`replica ${id} is not running`);
    // A stopped process cannot handle SIGTERM until it runs again.
    if ((signal === 'SIGTERM' || signal === 'SIGINT') && r.paused) process.kill(r.pid, 'SIGCONT');
    process.kill(r.pid, signal);
    if (signal === 'SIGSTOP') r.paused = true;
    if (signal === 'SIGCONT') r.paused = false;
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
      const timeoutMs = opts.timeoutMs ?? (signal === 'SIGKILL' ? 5000 : 15_000);
      const exited = await Promise.race([r.exited.then(() => true), delay(timeoutMs).then(() => false)]);
      if (!exited)
        throw new Error(`replica ${id} (pid ${r.pid}) did not exit within ${timeoutMs} ms of ${signal}`);
    }
  }

  /**
   * A request from replica `from` over its IPC channel: restart (kill -9, then start) or start the
   * replica it names. The answer goes out before the kill, since the asker may be the one killed.
   */
  private async onChildMessage(from: string, child: ChildProcess, m: unknown): Promise<void> {
    if (!isLauncherRequest(m)) return;
    const reply = (ok: boolean, message: string) => {
      const answer: LauncherReply = { type: 'qc-launcher-reply', requestId: m.requestId, ok, message };
      if (child.connected) child.send(answer, () => undefined);
    };
    const target = this.replicas.get(m.id);
    if (!target) return reply(false, `this launcher runs no replica ${m.id}.`);
    if (this.restarting.has(m.id)) return reply(false, `${m.id} is already restarting.`);
    this.restarting.add(m.id);
    const wasAlive = target.alive;
    try {
      reply(
        true,
        wasAlive
          ? `${m.id} is restarting: kill -9, then a start from its data dir.`
          : `${m.id} is starting from its data dir.`,
      );
      this.opts.onRestartRequest?.(m.id, from);
      // Let the answer reach the page before its replica, perhaps the asker itself, is killed.
      if (wasAlive) {
        await delay(200);
        if (target.alive) await this.kill(m.id, 'SIGKILL');
      }
      await this.restart(m.id);
    } catch (err) {
      console.error(`restart of ${m.id} failed: ${(err as Error).message}`);
    } finally {
      this.restarting.delete(m.id);
    }
  }

  /** Start a stopped replica again with the same data dir, ports and flags. */
  async restart(id: string): Promise<Replica> {
    const r = this.get(id);
    if (r.alive) throw new Error(`replica ${id} is still running (pid ${r.pid})`);
    // The old process has exited, but make sure its ports are released before binding them again.
    await waitFor(() => portIsFree(r.spec.port, r.spec.host), {
      timeoutMs: 10_000,
      what: `port ${r.spec.port} free`,
    });
    return this.start(id);
  }

  /** How this launcher's clients dial the replicas: verifying them against the CA with TLS. */
  credentials(): grpc.ChannelCredentials {
    this.channelCredentials ??= clientChannelCredentials(
      this.opts.tlsDir ? join(this.opts.tlsDir, 'ca.crt') : undefined,
    );
    return this.channelCredentials;
  }

  /** A ClusterService client for a replica (cached; closed by close()). */
  clusterClient(id: string): grpc.Client {
    const r = this.get(id);
    let c = this.clients.get(r.address);
    if (!c) {
      const Ctor = services().ClusterService;
      c = new Ctor(r.address, this.credentials(), fastReconnect);
      this.clients.set(r.address, c);
    }
    return c;
  }

  /** GetStatus of one replica, or undefined if it does not answer in time. */
  async status(id: string, timeoutMs = 1000): Promise<ClusterStatus | undefined> {
    const r = this.get(id);
    if (!r.alive || r.paused) return undefined;
    const sentAt = Date.now();
    try {
      const s = await unary<ClusterStatus>(
        this.clusterClient(id),
        'GetStatus',
        {},
        { deadlineMs: timeoutMs },
      );
      this.observe(id, s, sentAt);
      return s;
    } catch {
      return undefined;
    }
  }

  /** GetStatus of every live, unpaused replica that answers. */
  async statuses(timeoutMs = 1000): Promise<Map<string, ClusterStatus>> {
    const ids = this.live().map((r) => r.spec.id);
    const all = await Promise.all(ids.map(async (id) => [id, await this.status(id, timeoutMs)] as const));
    const out = new Map<string, ClusterStatus>();
    for (const [id, s] of all) if (s) out.set(id, s);
    return out;
  }

  /** The live replica reporting itself leader in the highest term, if any. */
  async leader(): Promise<ClusterStatus | undefined> {
    let best: ClusterStatus | undefined;
    for (const s of (await this.statuses()).values()) {
      if (s.role === 'leader' && (!best || s.term > best.term)) best = s;
    }
    return best;
  }

  /** Wait until some live replica leads and a majority of live replicas agree it does (same term). */
  async waitForLeader(opts: { timeoutMs?: number; not?: string } = {}): Promise<ClusterStatus> {
    return waitFor(
      async () => {
        const all = await this.statuses();
        const leaders = [...all.values()].filter((s) => s.role === 'leader');
        const top = leaders.sort((a, b) => b.term - a.term)[0];
        if (!top || top.node_id === opts.not) return undefined;
        const agree = [...all.values()].filter(
          (s) => s.term === top.term && s.leader_id === top.node_id,
        ).length;
        return agree * 2 > all.size ? top : undefined;
      },
      {
        timeoutMs: opts.timeoutMs ?? 15_000,
        what: opts.not ? `a leader other than ${opts.not}` : 'a leader',
      },
    );
  }

  /** Wait until the leader lists exactly `ids` as voters and each of them answers as a non-learner. */
  async waitForVoters(ids: string[], timeoutMs = 30_000): Promise<ClusterStatus> {
    const want = [...ids].sort().join(',');
    return waitFor(
      async () => {
        this.abortIfExited(ids);
        const all = await this.statuses();
        const lead = [...all.values()].find((s) => s.role === 'leader');
        if (!lead) return undefined;
        const voters = lead.members
          .filter((m) => m.voter)
          .map((m) => m.id)
          .sort()
          .join(',');
        if (voters !== want) return undefined;
        return ids.every((id) => all.get(id) && all.get(id)?.role !== 'learner') ? lead : undefined;
      },
      { timeoutMs, what: `voters ${want}` },
    );
  }

  /** All live replicas (or `ids`) report the same last_applied and state_digest. */
  async waitForConvergence(opts: { timeoutMs?: number; ids?: string[] } = {}): Promise<ClusterStatus[]> {
    return waitFor(
      async () => {
        if (opts.ids) this.abortIfExited(opts.ids);
        const ids = opts.ids ?? this.live().map((r) => r.spec.id);
        const all = await this.statuses();
        const got = ids.map((id) => all.get(id));
        if (got.length === 0 || got.some((s) => !s)) return undefined;
        const list = got as ClusterStatus[];
        const first = list[0];
        const same = list.every(
          (s) => s.last_applied === first.last_applied && s.state_digest === first.state_digest,
        );
        return same ? list : undefined;
      },
      {
        timeoutMs: opts.timeoutMs ?? 30_000,
        what: 'equal last_applied and state_digest on all live replicas',
      },
    );
  }

  /** Give up waiting when a replica we wait for has exited on its own (say why, with its last log line). */
  abortIfExited(ids: string[]): void {
    for (const id of ids) {
      const r = this.get(id);
      if (r.starts > 0 && !r.alive) {
        throw new WaitAborted(describeExit(id, r.lastExit, this.tail(id, 30)));
      }
    }
  }

  /** Remember what each replica reported, and note any term/commit/applied going backwards. */
  private observe(id: string, s: ClusterStatus, sentAt: number): void {
    const prev = this.observed.get(id);
    // Only compare against a reply received before this request was sent: concurrent replies may
    // arrive out of order.
    if (prev && sentAt > prev.receivedAt) {
      for (const k of ['term', 'commit_index', 'last_applied'] as const) {
        if (s[k] < prev[k]) this.monotonicViolations.push(`${id}: ${k} went from ${prev[k]} to ${s[k]}`);
      }
    }
    if (!prev || sentAt > prev.receivedAt) {
      this.observed.set(id, {
        term: s.term,
        commit_index: s.commit_index,
        last_applied: s.last_applied,
        receivedAt: Date.now(),
      });
    }
  }

  /** The last `lines` lines of a replica's stderr (its log), for failure reports. */
  tail(id: string, lines = 30): string {
    try {
      const text = fs.readFileSync(this.get(id).stderrPath, 'utf8');
      return text.split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGTERM every live replica, wait, then SIGKILL whatever is left; close clients. */
  async stopAll(opts: { graceMs?: number } = {}): Promise<void> {
    const graceMs = opts.graceMs ?? 10_000;
    const running = [...this.replicas.values()].filter((r) => r.alive && r.pid !== undefined);
    for (const r of running) {
      try {
        if (r.paused) process.kill(r.pid!, 'SIGCONT');
        process.kill(r.pid!, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    await Promise.race([Promise.all(running.map((r) => r.exited)), delay(graceMs)]);
    for (const r of running) {
      if (r.alive && r.pid !== undefined) {
        try {
          process.kill(r.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    await Promise.race([Promise.all(running.map((r) => r.exited)), delay(5000)]);
    this.closeClients();
  }

  closeClients(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** Every child any LocalCluster of this process started and that has not exited. */
const liveChildren = new Set<ChildProcess>();
// Last resort if the owner forgets stopAll or dies: never leave servers behind.
process.once('exit', () => {
  for (const child of liveChildren) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}

/**
 * Start an N-replica cluster as a user would: `first` bootstraps, each next one joins with --peers of
 * the first, one at a time, each waited for until it is a voter.
 */
export async function bootCluster(
  cluster: LocalCluster,
  ids: string[],
  opts: { joinTimeoutMs?: number } = {},
): Promise<void> {
  const [first, ...rest] = ids;
  cluster.start(first);
  await cluster.waitForVoters([first], opts.joinTimeoutMs ?? 30_000);
  const joined = [first];
  for (const id of rest) {
    cluster.start(id);
    joined.push(id);
    await cluster.waitForVoters(joined, opts.joinTimeoutMs ?? 30_000);
  }
}

// ---- `quorum-chat cluster` ----

export interface ClusterCliOptions {
  size: number;
  basePort: number;
  dataDir: string;
  host: string;
  /** TLS and mutual TLS with certificates in DATA-DIR/certs. */
  tls: boolean;
}

export const clusterCommand: CommandSpec = {
  name: 'cluster',
  synopsis: ['cluster [--size 5] [--base-port 5555] [--data-dir DIR] [--host 127.0.0.1]'],
  about:
    'Starts a local cluster for development (make run): server1 bootstraps, the others join it one at ' +
    'a time; with existing data dirs, all restart from them. Ctrl-C stops them all.',
  flags: {
    size: { value: 'N', default: '5', help: 'replicas (1 to 9)' },
    'base-port': { value: 'PORT', default: '5555', help: 'gRPC port of server1; the others follow' },
    'data-dir': {
      value: 'DIR',
      default: './data',
      help: 'parent of the data dirs, the logs and cluster.secret',
    },
    host: { value: 'HOST', default: '127.0.0.1', help: 'address to bind' },
    tls: {
      type: 'boolean',
      help: 'TLS and mutual TLS, with certificates from `quorum-chat certs` in DATA-DIR/certs (made on the first run)',
    },
  },
};

export function parseClusterArgs(argv: string[]): ClusterCliOptions {
  const v = parseFlags(clusterCommand, argv) as Record<string, string>;
  const int = (name: string, lo: number, hi: number) => {
    const n = Number(v[name]);
    if (!/^\d+$/.test(v[name]) || n < lo || n > hi)
      throw new UserError(`--${name} must be an integer from ${lo} to ${hi}`);
    return n;
  };
  return {
    size: int('size', 1, 9),
    basePort: int('base-port', 1, 64_535 - 10),
    dataDir: v['data-dir'],
    host: v.host,
    tls: (v as Record<string, unknown>).tls === true,
  };
}

/** A status table, one row per member. */
export function formatStatusTable(
  rows: { id: string; address: string; s: ClusterStatus | undefined }[],
): string {
  const header = ['id', 'address', 'role', 'term', 'commit', 'applied', 'digest'];
  const body = rows.map(({ id, address, s }) =>
    s
      ? [
          id,
          address,
          s.role,
          String(s.term),
          String(s.commit_index),
          String(s.last_applied),
          s.state_digest.slice(0, 12),
        ]
      : [id, address, 'down', '-', '-', '-', '-'],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/**
 * The certificates of a TLS local cluster: made on the first run (a CA and one per replica), and for
 * a replica added since; the existing ones are kept.
 */
function ensureCerts(dir: string, ids: string[]): string {
  const missing = ids.filter((id) => !fs.existsSync(join(dir, `${id}.crt`)));
  if (missing.length > 0) {
    const made = makeCerts(dir, missing);
    console.log(
      `made TLS certificates for ${missing.join(', ')} in ${dir}${made.newCa ? ' (and a new CA)' : ''}`,
    );
  }
  return dir;
}

function nonEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

export async function main(argv: string[]): Promise<number> {
  const o = parseClusterArgs(argv);
  if (serverMissingReason()) throw new UserError(serverMissingReason()!);
  // The root holds the cluster secret and the replicas' logs: private, as the replicas' data dirs are.
  restrictUmask();
  const root = resolve(o.dataDir);
  const ids = Array.from({ length: o.size }, (_, i) => `server${i + 1}`);
  const tlsDir = o.tls ? ensureCerts(join(root, 'certs'), ids) : undefined;
  let stopping = false;
  const cluster = new LocalCluster({
    root,
    host: o.host,
    tlsDir,
    // The /cluster page's restart and start buttons reach this launcher through the replicas.
    supervise: true,
    // If a replica exits while the cluster runs, say so (the others go on: the cluster tolerates it).
    onExit: (id, exit) => {
      if (stopping) return;
      const r = cluster.get(id);
      console.log(`${describeExit(id, exit, cluster.tail(id, 30))} Its log is ${r.stderrPath}.`);
    },
    // The request reaches this launcher through whichever replica the page asked (the target itself
    // when it is up, or any live one): that is the relay, not the page the button was on.
    onRestartRequest: (id, by) => console.log(describeRestartRequest(id, cluster.get(id).alive, by)),
  });
  for (const [i, id] of ids.entries()) {
    const port = o.basePort + i;
    if (!(await portIsFree(port, o.host))) throw new UserError(`port ${port} is in use`);
    await cluster.define(id, {
      port,
      httpPort: 'default',
      peers: i === 0 ? [] : [`${o.host}:${o.basePort}`],
    });
  }

  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${why}: stopping ${cluster.live(true).length} replicas...`);
    await cluster.stopAll();
    console.log('stopped.');
  };
  const stopped = new Promise<void>((done) => {
    const onSignal = (sig: string) => void stop(sig).then(done);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });

  const restarting = ids.map((id) => nonEmptyDir(cluster.get(id).spec.dataDir));
  try {
    if (restarting.every(Boolean)) {
      // Existing data dirs: restart everyone at once from persisted state (they need each other to elect).
      console.log(`restarting ${o.size} replicas from ${root}`);
      for (const id of ids) cluster.start(id, { peers: [] });
      await cluster.waitForLeader({ timeoutMs: 30_000 });
    } else if (restarting.some(Boolean)) {
      throw new UserError(
        `${root} holds data for only some of ${ids.join(', ')}; remove it or restore the rest`,
      );
    } else {
      console.log(`starting ${o.size} replicas in ${root} (logs: ${root}/<id>.stderr.log)`);
      await bootCluster(cluster, ids);
    }
    await cluster.waitForVoters(ids, 30_000);
  } catch (err) {
    await cluster.stopAll();
    if (err instanceof UserError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new UserError(`cluster did not form: ${msg} (see ${root}/<id>.stderr.log)`);
  }

  const all = await cluster.statuses();
  console.log(formatStatusTable(ids.map((id) => ({ id, address: cluster.get(id).address, s: all.get(id) }))));
  const scheme = tlsDir ? 'https' : 'http';
  console.log(
    `\nweb UI${tlsDir ? ` (its certificates are signed by ${join(tlsDir, 'ca.crt')}, which the browser does not know: trust it, or accept the warning)` : ''}:`,
  );
  for (const id of ids) {
    const r = cluster.get(id);
    console.log(`  ${id}: ${scheme}://${o.host}:${r.spec.port + 1000}/  (pid ${r.pid}, log ${r.stderrPath})`);
  }
  console.log(
    `\nclient:\n  make run-client SERVER=${cluster.addresses().join(',')}${tlsDir ? ' TLS=1' : ''}`,
  );
  if (tlsDir) console.log(`  (or any tool with --tls-ca-file ${join(tlsDir, 'ca.crt')})`);
  console.log('\nCtrl-C stops the cluster.');

  await stopped;
  return 0;
}
