// Where a single client's write spends its time: 3 replicas in this process (real gRPC, SQLite and
// fsync), one client sending sequential SendMessage calls to the leader, and timestamps at each step
// of the leader's path (propose, log flush, commit, apply). Usage: npx tsx scripts/trace-latency.ts [N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { services } from '../src/proto.js';
import { joinCluster } from '../src/server/join.js';
import { type RunningReplica, startReplica } from '../src/server/replica.js';

const N = Number(process.argv[2] ?? 300);
const SECRET = 'trace-secret';
const timing = { heartbeatMs: 50, electionMinMs: 150, electionMaxMs: 300 };
const root = fs.mkdtempSync(join(os.tmpdir(), 'qc-trace-'));
const replicas: RunningReplica[] = [];

async function start(id: string, peers: string[]): Promise<RunningReplica> {
  const dir = join(root, id);
  fs.mkdirSync(dir, { recursive: true });
  const r = await startReplica({
    id,
    host: '127.0.0.1',
    port: 0,
    dataDir: dir,
    peers,
    clusterSecret: SECRET,
    timing,
    scryptCost: { N: 1024, r: 8, p: 1 },
  });
  replicas.push(r);
  return r;
}

function call<T>(stub: grpc.Client, method: string, req: unknown, md = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) =>
    (stub as unknown as Record<string, Function>)[method].call(stub, req, md, (e: Error | null, r: T) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

const pct = (a: number[], p: number) =>
  [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];

const a = await start('a', []);
for (let i = 0; i < 200 && a.node.status().role !== 'leader'; i++)
  await new Promise((r) => setTimeout(r, 20));
for (const id of ['b', 'c']) {
  const r = await start(id, [a.address]);
  await joinCluster({ id, address: r.address, peers: [a.address], secret: SECRET, totalMs: 60_000 });
}
const lead = replicas.find((r) => r.node.status().role === 'leader')!;
const { ChatService } = services();
const stub = new ChatService(lead.address, grpc.credentials.createInsecure());
await call(stub, 'Signup', { username: 'user1', nickname: 'u', password: 'password123' });
await call(stub, 'Signup', { username: 'user2', nickname: 'u', password: 'password123' });
const { token } = await call<{ token: string }>(stub, 'Login', {
  username: 'user1',
  password: 'password123',
});
const md = new grpc.Metadata();
md.set('authorization', `Bearer ${token}`);
const chat = await call<{ chat_id: string }>(stub, 'StartChat', { username: 'user2' }, md);

// Instrument the leader's node: time from propose() to its resolution, split at flush and apply.
const node = lead.node as unknown as Record<string, Function>;
const marks: Record<string, number[]> = { propose: [], flushMs: [], applyMs: [] };
const origFlush = lead.logStore.flush.bind(lead.logStore);
(lead.logStore as unknown as Record<string, Function>).flush = (done: () => void) => {
  const t = performance.now();
  origFlush(() => {
    marks.flushMs.push(performance.now() - t);
    done();
  });
};
const sm = (node as unknown as { opts: { stateMachine: { apply: Function } } }).opts.stateMachine;
const origApply = sm.apply.bind(sm);
sm.apply = (entries: unknown) => {
  const t = performance.now();
  const out = origApply(entries);
  marks.applyMs.push(performance.now() - t);
  return out;
};
const origPropose = (lead.node.propose as Function).bind(lead.node);
(lead.node as unknown as Record<string, Function>).propose = async (...args: unknown[]) => {
  const t = performance.now();
  try {
    return await origPropose(...args);
  } finally {
    marks.propose.push(performance.now() - t);
  }
};

// A timeline of every replica's effects, sends and receipts during each call.
let timeline: string[] = [];
let t0 = 0;
const stamp = (what: string) => timeline.push(`${(performance.now() - t0).toFixed(2)} ${what}`);
for (const r of replicas) {
  const n = r.node as unknown as Record<string, Function> & {
    opts: { transport: Record<string, Function>; logStore: Record<string, Function> };
    _actor: Record<string, Function>;
  };
  const effect = n.effect.bind(n);
  n.effect = (e: { type: string; message?: { type: string; to: string } }) => {
    stamp(`${r.id} effect ${e.type}${e.message ? ` ${e.message.type}->${e.message.to}` : ''}`);
    return effect(e);
  };
  const tr = n.opts.transport;
  const send = tr.send.bind(tr);
  tr.send = (m: { type: string; to: string }) => {
    stamp(`${r.id} transport.send ${m.type}->${m.to}`);
    return send(m);
  };
  const act = n._actor;
  const actSend = act.send.bind(act);
  act.send = (ev: { type: string; from?: string }) => {
    stamp(`${r.id} actor <- ${ev.type}${ev.from ? ` from ${ev.from}` : ''}`);
    return actSend(ev);
  };
  if (r !== lead) {
    const ls = n.opts.logStore;
    const fl = ls.flush.bind(ls);
    ls.flush = (done: () => void) => {
      stamp(`${r.id} flush start`);
      fl(() => {
        stamp(`${r.id} flush done`);
        done();
      });
    };
  }
}
const timelines: string[][] = [];
const total: number[] = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  t0 = t;
  timeline = [];
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  m.set('idempotency-key', `k${i}`);
  await call(stub, 'SendMessage', { chat_id: chat.chat_id, content: 'x'.repeat(100) }, m);
  total.push(performance.now() - t);
  stamp('client got the answer');
  timelines.push(timeline);
}
const order = total.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
console.log(`--- timeline of the median call (${order[Math.floor(N / 2)][0].toFixed(2)} ms) ---`);
console.log(timelines[order[Math.floor(N / 2)][1]].join('\n'));
const show = (name: string, a: number[]) =>
  console.log(
    `${name.padEnd(10)} n=${String(a.length).padEnd(5)} p50 ${pct(a, 0.5).toFixed(2)} ms  p99 ${pct(a, 0.99).toFixed(2)} ms`,
  );
show('client', total);
for (const [k, v] of Object.entries(marks)) show(k, v);
stub.close();
for (const r of replicas) await r.stop();
fs.rmSync(root, { recursive: true, force: true });
process.exit(0);
