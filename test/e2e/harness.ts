// The end-to-end harness: real `bin/quorum-chat server` processes on 127.0.0.1, free ports, one temp
// root per test (its data dirs share the default cluster.secret in that root), output captured to files.
// Built on src/server/local-cluster.ts, which `quorum-chat cluster` and the benchmark also use.
//
//   const h = await startCluster({ size: 5 });        // bootstrap + joins via --peers, as a user would
//   await h.kill('server2', 'SIGKILL'); await h.restart('server2');
//   const lead = await h.waitForLeader(); await h.waitForConvergence();
//   await h.stopAll();                                 // in afterEach/afterAll
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  type ClusterStatus,
  LocalCluster,
  type Replica,
  type Signal,
  bootCluster,
  serverMissingReason,
  waitFor,
} from '../../src/server/local-cluster.js';
import { makeCerts } from '../../src/tls/certs.js';
import { Workload, type WorkloadOptions } from './support/workload.js';

export { type ClusterStatus, serverMissingReason, waitFor, Workload, type WorkloadOptions };

/**
 * Short timers, as the flags allow (the defaults of API.md are already short), and scrypt at N = 2^14
 * instead of the default 2^17: tests sign up and log in many users, and at the production cost each
 * takes about 0.65 s of a single hashing slot on a 2-core machine. The login-flood test runs the default.
 */
export const testTimers = ['--heartbeat-ms', '50', '--election-timeout-ms', '150-300', '--scrypt-n', '16384'];

export interface HarnessOptions {
  size?: number;
  /** Start only the first replica (the rest are defined with --peers of the first, not started). */
  bootOnly?: boolean;
  serverArgs?: string[];
  logLevel?: string;
  /** Run over TLS and mutual TLS, with `quorum-chat certs` certificates made in `<root>/certs`. */
  tls?: boolean;
}

export class Harness extends LocalCluster {
  constructor(
    readonly root: string,
    opts: { serverArgs?: string[]; logLevel?: string; supervise?: boolean; tlsDir?: string } = {},
  ) {
    super({
      root,
      serverArgs: opts.serverArgs ?? testTimers,
      logLevel: opts.logLevel ?? 'info',
      supervise: opts.supervise,
      tlsDir: opts.tlsDir,
    });
  }

  /** Wait until each of `ids` (default: all live) has applied at least `index`. */
  async waitForApplied(index: number, ids?: string[], timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        if (ids) this.abortIfExited(ids);
        const want = ids ?? this.live().map((r) => r.spec.id);
        const all = await this.statuses();
        return want.every((id) => (all.get(id)?.last_applied ?? -1) >= index);
      },
      { timeoutMs, what: `last_applied >= ${index} on ${ids?.join(',') ?? 'all live replicas'}` },
    );
  }

  /** Wait until a replica's process has exited on its own; its exit code and signal. */
  async waitForExit(
    id: string,
    timeoutMs = 30_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const r = this.get(id);
    await waitFor(() => !r.alive, { timeoutMs, what: `${id} to exit by itself` });
    return r.lastExit ?? { code: null, signal: null };
  }

  /** A workload against every replica's address (forwarding makes any replica a valid entry point). */
  workload(opts: WorkloadOptions = {}): Workload {
    return new Workload(() => this.addresses(), { credentials: this.credentials(), ...opts });
  }

  /** Statuses and log tails of every replica, for a failing test's message. */
  async report(): Promise<string> {
    const all = await this.statuses(500);
    const lines = [`temp root: ${this.root}`];
    for (const r of this.replicas.values()) {
      const s = all.get(r.spec.id);
      const state = s
        ? `${s.role} term=${s.term} commit=${s.commit_index} applied=${s.last_applied} digest=${s.state_digest.slice(0, 10)}`
        : r.alive
          ? r.paused
            ? 'paused'
            : 'no answer'
          : `down ${JSON.stringify(r.lastExit ?? null)}`;
      lines.push(`${r.spec.id} ${r.address} pid=${r.pid ?? '-'}: ${state}`);
    }
    for (const r of this.replicas.values()) {
      if (r.starts > 0) lines.push(`--- ${r.spec.id} stderr (last lines) ---`, this.tail(r.spec.id, 8));
    }
    return lines.join('\n');
  }

  /** stopAll, then remove the temp root (kept when QC_KEEP_TMP=1, for post-mortems). */
  async destroy(): Promise<void> {
    await this.stopAll();
    if (process.env.QC_KEEP_TMP !== '1') fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** A fresh temp root with `size` replicas defined (server1..serverN) on free ports. */
export async function defineCluster(opts: HarnessOptions = {}): Promise<Harness> {
  const root = fs.mkdtempSync(join(os.tmpdir(), 'qc-e2e-'));
  const size = opts.size ?? 5;
  let tlsDir: string | undefined;
  if (opts.tls) {
    tlsDir = join(root, 'certs');
    makeCerts(
      tlsDir,
      Array.from({ length: size }, (_, i) => `server${i + 1}`),
    );
  }
  const h = new Harness(root, { ...opts, tlsDir });
  let first: Replica | undefined;
  for (let i = 1; i <= size; i++) {
    const r = await h.define(`server${i}`, { peers: first ? [first.address] : [] });
    first ??= r;
  }
  return h;
}

/**
 * Start an N-replica cluster exactly as a user would: server1 bootstraps (empty data dir, no --peers),
 * then server2..N join one by one with --peers of server1. Resolves when all N are voters.
 */
export async function startCluster(opts: HarnessOptions = {}): Promise<Harness> {
  const h = await defineCluster(opts);
  try {
    if (opts.bootOnly) {
      h.start('server1');
      await h.waitForVoters(['server1']);
    } else {
      await bootCluster(h, h.ids());
      await h.waitForConvergence();
    }
  } catch (err) {
    const report = await h.report();
    await h.destroy();
    throw new Error(`${(err as Error).message}\n${report}`);
  }
  return h;
}

/** Signal helper re-exported for readability in tests. */
export type { Signal };

/** The gRPC status code of an error (undefined if it is not a gRPC error). */
export function codeOf(err: unknown): number | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'number' ? c : undefined;
}

export const Status = grpc.status;
