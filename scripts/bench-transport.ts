// Micro-benchmark of GrpcTransport on loopback (figures only, never assertions).
//
//   npx tsx scripts/bench-transport.ts [--seconds 2] [--per-tick 64] [--entries 16] [--payload 200]
//
// One sender pushes AppendEntries (each with --entries entries of --payload bytes) to one receiver,
// --per-tick messages per event-loop tick, while keeping at most 4096 undelivered so the bounded queue
// does not drop. Reports delivered messages/s, entries/s, batches/s and the mean batch size.

import * as grpc from '@grpc/grpc-js';
import type { Entry, RaftMessage } from '../machines/protocol.js';
import { GrpcTransport } from '../src/raft/grpc-transport.js';

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback);
}

const seconds = arg('seconds', '2');
const perTick = arg('per-tick', '64');
const perMessage = arg('entries', '16');
const payload = 'x'.repeat(arg('payload', '200'));
const secret = 'bench-secret';

const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
const receiver = new GrpcTransport({ selfId: 'b', secret });
receiver.attach(server);
let delivered = 0;
receiver.listen(() => {
  delivered++;
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
    e ? reject(e) : resolve(p),
  ),
);
const sender = new GrpcTransport({ selfId: 'a', secret, maxQueue: 8192 });
sender.setPeers([{ id: 'b', address: `127.0.0.1:${port}`, voter: true }]);

const entries: Entry[] = [];
for (let i = 0; i < perMessage; i++) entries.push({ index: i + 1, term: 1, kind: 'command', data: payload });
const message: RaftMessage = {
  type: 'AppendEntries',
  from: 'a',
  to: 'b',
  term: 1,
  prevLogIndex: 0,
  prevLogTerm: 0,
  entries,
  leaderCommit: 0,
  readRound: 0,
};

let produced = 0;
const start = performance.now();
const until = start + seconds * 1000;
while (performance.now() < until) {
  if (produced - delivered < 4096) {
    for (let i = 0; i < perTick; i++) sender.send(message);
    produced += perTick;
  }
  await new Promise((r) => setImmediate(r));
}
const secs = (performance.now() - start) / 1000;
const s = sender.stats();
const fmt = (x: number) => Math.round(x).toLocaleString('en-US').padStart(10);
console.log(
  `GrpcTransport loopback, ${perTick} AppendEntries/tick x ${perMessage} entries x ${payload.length} B, ` +
    `one stream, ${seconds}s`,
);
console.log(`delivered ${fmt(delivered / secs)} msgs/s ${fmt((delivered * perMessage) / secs)} entries/s`);
console.log(
  `batches   ${fmt(s.rpcs / secs)} /s   mean batch ${(s.sent / Math.max(1, s.rpcs)).toFixed(1)} msgs`,
);
console.log(`dropped ${s.dropped}, stream errors ${s.rpcErrors}`);
sender.close();
receiver.close();
server.forceShutdown();
