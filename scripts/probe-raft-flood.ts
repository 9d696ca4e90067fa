// Issue 13, finding 1: what an unauthenticated, oversized RaftService call does to a running cluster.
// Starts a 3-replica cluster of real `bin/quorum-chat server` processes (run `npm run build` first),
// then sends RaftService `Send` and `Stream` calls with no metadata and a body of 2 MiB and 15 MiB
// (the bytes 0a 00 repeated: an endless run of empty RaftMessages) to the leader and to a follower,
// each from a separate process.
// For each call it prints the time to refusal and the status, the leader and term before and after,
// the worst GetStatus latency of the leader during the call, and the target's RSS before, at its peak
// and one second after.
//
//   npx tsx scripts/probe-raft-flood.ts [--sizes 2,15] [--runs 1]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import {
  type ClusterStatus,
  LocalCluster,
  bootCluster,
  projectRoot,
  serverMissingReason,
  unary,
} from '../src/server/local-cluster.js';

const MiB = 1 << 20;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : -1;
}

/**
 * One call without metadata, made by a separate node process (so that its 15 MiB write does not stall
 * this process's GetStatus probes); resolves with the status code and the time it took.
 */
function hostileCall(
  address: string,
  method: 'Send' | 'Stream',
  bytes: number,
): Promise<{ ms: number; code: string; details: string }> {
  const code = `
    const grpc = require('@grpc/grpc-js');
    const [address, method, bytes] = process.argv.slice(1);
    const payload = Buffer.alloc(Number(bytes));
    for (let i = 0; i < payload.length; i += 2) payload[i] = 0x0a;
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 64 << 20,
    });
    const id = (b) => b;
    // Connect first, so the time measured is the server's, not the handshake's.
    client.waitForReady(Date.now() + 5000, () => {
      const t0 = performance.now();
      const done = (err) => {
        const ms = Math.round(performance.now() - t0);
        console.log(JSON.stringify({ ms, code: err ? grpc.status[err.code] : 'OK', details: err ? err.details : '' }));
        client.close();
      };
      const path = '/quorumchat.v1.RaftService/' + method;
      const opts = { deadline: Date.now() + 60000 };
      if (method === 'Send') {
        client.makeUnaryRequest(path, id, id, payload, new grpc.Metadata(), opts, done);
      } else {
        const call = client.makeClientStreamRequest(path, id, id, new grpc.Metadata(), opts, done);
        call.on('error', () => {});
        call.write(payload);
        call.end();
      }
    });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code, address, method, String(bytes)], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`the attacker process printed ${JSON.stringify(out)}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const missing = serverMissingReason();
  if (missing) throw new Error(missing);
  const sizes = arg('sizes', '2,15').split(',').map(Number);
  const runs = Number(arg('runs', '1'));
  const root = fs.mkdtempSync(join(os.tmpdir(), 'qc-probe-'));
  const cluster = new LocalCluster({
    root,
    serverArgs: ['--heartbeat-ms', '50', '--election-timeout-ms', '150-300'],
    logLevel: 'warn',
  });
  try {
    const first = await cluster.define('server1');
    for (const id of ['server2', 'server3']) await cluster.define(id, { peers: [first.address] });
    await bootCluster(cluster, cluster.ids());
    await cluster.waitForConvergence();
    console.log(`node ${process.version}, grpc-js ${grpcVersion()}, 3 replicas, timers 50 / 150-300 ms`);
    console.log(
      'size  method target   refusal    status           leader   term       GetStatus max  RSS MB',
    );
    for (const size of sizes) {
      for (const method of ['Send', 'Stream'] as const) {
        for (const targetRole of ['leader', 'follower'] as const) {
          for (let run = 0; run < runs; run++) {
            const lead = await cluster.waitForLeader();
            const target =
              targetRole === 'leader'
                ? cluster.get(lead.node_id)
                : cluster.live().find((r) => r.spec.id !== lead.node_id)!;
            const pid = target.pid!;
            const rssBefore = rssMb(pid);
            let rssPeak = rssBefore;
            let worstStatusMs = 0;
            let probing = true;
            const leaderClient = cluster.clusterClient(lead.node_id);
            const prober = (async () => {
              for (let i = 0; probing && i < 100_000; i++) {
                const t = performance.now();
                await unary<ClusterStatus>(leaderClient, 'GetStatus', {}, { deadlineMs: 30_000 }).catch(
                  () => undefined,
                );
                worstStatusMs = Math.max(worstStatusMs, performance.now() - t);
                rssPeak = Math.max(rssPeak, rssMb(pid));
                await new Promise((r) => setTimeout(r, 10));
              }
            })();
            const result = await hostileCall(target.address, method, size * MiB);
            // Keep watching a little after the refusal: an election may follow a blocked event loop.
            await new Promise((r) => setTimeout(r, 1000));
            probing = false;
            await prober;
            const rssAfter = rssMb(pid);
            const after = await cluster.waitForLeader();
            console.log(
              [
                `${size} MiB`.padEnd(6),
                method.padEnd(6),
                `${targetRole}`.padEnd(8),
                `${result.ms} ms`.padEnd(10),
                result.code.padEnd(16),
                (after.node_id === lead.node_id ? 'same' : 'CHANGED').padEnd(8),
                `${lead.term}->${after.term}`.padEnd(10),
                `${Math.round(worstStatusMs)} ms`.padEnd(14),
                `${rssBefore} / ${rssPeak} / ${rssAfter}`,
              ].join(' '),
            );
            await cluster.waitForConvergence();
          }
        }
      }
    }
  } finally {
    await cluster.stopAll();
    cluster.closeClients();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function grpcVersion(): string {
  const pkg = join(import.meta.dirname ?? '.', '..', 'node_modules', '@grpc', 'grpc-js', 'package.json');
  try {
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
