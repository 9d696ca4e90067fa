// Micro-benchmark of forwarding a ChatService call to the leader (figures only, never assertions).
//
//   npx tsx scripts/bench-forward.ts [--calls 10000] [--callers 64] [--path unary|stream|both]
//
// Both ends in this process: a gRPC server with ChatHandlers (whose router answers at once) and
// ForwardService, and a follower side that forwards SendMessage-sized calls to it, --callers at a time
// in a closed loop, either one unary ChatService call each (LeaderForwarder) or in batches on one
// ForwardService stream (ForwardStreams). Reports calls/s and CPU µs per call (both ends together).

import { services } from '../src/proto.js';
import { guardService } from '../src/raft/secret-guard.js';
import { ChatHandlers } from '../src/server/chat-handlers.js';
import { ForwardStreams, addForwardService } from '../src/server/forward-stream.js';
import { LeaderForwarder } from '../src/server/forwarder.js';
import { buildGrpcServer, listen } from '../src/server/grpc-server.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const calls = Number(arg('calls', '10000'));
const callers = Number(arg('callers', '64'));
const paths = arg('path', 'both') === 'both' ? ['unary', 'stream'] : [arg('path', 'both')];
const secret = 's'.repeat(32);

const chat = new ChatHandlers({
  router: {
    handle: async (req) => {
      const r = req.request as { chat_id: string; content: string };
      return { id: 1, chat_id: r.chat_id, content: r.content, sender_id: 1, sent_at: 1 };
    },
  },
  subscriptions: { subscribe: () => () => {} },
  topology: { leaderAddress: () => undefined, memberAddresses: () => [] },
});
const { server } = buildGrpcServer({
  chat: chat.implementation(),
  cluster: guardService(services().ClusterService.service, {}, { secret }),
  extra: (s) => addForwardService(s, { secret, serve: (r) => chat.serve(r) }),
  secret,
});
const address = `127.0.0.1:${await listen(server, '127.0.0.1', 0)}`;
const unary = new LeaderForwarder(() => 'bench');
const streams = new ForwardStreams({ secret, unary });

async function run(path: string, n: number): Promise<void> {
  const f = path === 'stream' ? streams : unary;
  let i = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (i++ < n) {
        await f.call(address, {
          service: 'chat',
          method: 'SendMessage',
          request: { chat_id: 'c1', content: 'x'.repeat(100) },
          authorization: 'Bearer token',
          idempotencyKey: `k${i}`,
          deadline: Date.now() + 10_000,
        });
      }
    }),
  );
}

for (const path of paths) {
  await run(path, Math.min(2000, calls)); // warm up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(path, calls);
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  console.log(
    `${path}: ${calls} calls, ${Math.round((calls / ms) * 1000)} calls/s, CPU ${((cpu.user + cpu.system) / calls).toFixed(1)} µs per call`,
  );
}
streams.close();
unary.close();
server.forceShutdown();
