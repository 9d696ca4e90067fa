// ForwardStreams / ForwardService (src/server/forward-stream.ts): a follower's forwarded ChatService
// calls travel to the leader in batches on one stream and come back with the leader's answers.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatError, status } from '../../src/chat/errors.js';
import { services } from '../../src/proto.js';
import { bearer } from '../../src/raft/cluster-secret.js';
import { guardService } from '../../src/raft/secret-guard.js';
import { ChatHandlers } from '../../src/server/chat-handlers.js';
import type { ChatRequest } from '../../src/server/chat-router.js';
import { ForwardStreams, addForwardService } from '../../src/server/forward-stream.js';
import type { ForwardCall } from '../../src/server/forwarder.js';
import { buildGrpcServer, listen } from '../../src/server/grpc-server.js';

const SECRET = 's'.repeat(32);

interface Leader {
  address: string;
  seen: ChatRequest[];
  server: grpc.Server;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A leader whose router answers with `answer` (the request it saw is recorded). */
async function startLeader(
  answer: (req: ChatRequest) => Promise<unknown>,
  opts: { forwardService?: boolean } = {},
): Promise<Leader> {
  const seen: ChatRequest[] = [];
  const chat = new ChatHandlers({
    router: {
      handle: (req) => {
        seen.push(req);
        return answer(req);
      },
    },
    subscriptions: { subscribe: () => () => {} },
    topology: { leaderAddress: () => undefined, memberAddresses: () => [] },
  });
  const { server } = buildGrpcServer({
    chat: chat.implementation(),
    cluster: guardService(services().ClusterService.service, {}, { secret: SECRET }),
    extra: (s) => {
      if (opts.forwardService !== false)
        addForwardService(s, { secret: SECRET, serve: (r) => chat.serve(r) });
    },
    secret: SECRET,
  });
  const port = await listen(server, '127.0.0.1', 0);
  cleanups.push(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, seen, server };
}

function follower(unary: ForwardStreams['call'] = () => Promise.reject(new Error('no unary path'))) {
  const f = new ForwardStreams({ secret: SECRET, unary: { call: unary } });
  cleanups.push(() => f.close());
  return f;
}

const send = (content: string, extra: Partial<ForwardCall> = {}): ForwardCall => ({
  service: 'chat',
  method: 'SendMessage',
  request: { chat_id: 'c1', content },
  authorization: 'Bearer tok',
  idempotencyKey: `key-${content}`,
  deadline: Date.now() + 5000,
  ...extra,
});

const message = (req: ChatRequest) => {
  const r = req.request as { chat_id: string; content: string };
  return { id: 7, chat_id: r.chat_id, content: r.content };
};

describe('forwarding on one stream', () => {
  it('sends the calls of one turn as one batch; each gets its own answer, with token, key and deadline', async () => {
    const leader = await startLeader(async (req) => message(req));
    const f = follower();
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => f.call(leader.address, send(`m${i}`))),
    );
    expect(answers.map((a) => (a as ReturnType<typeof message>).content)).toEqual(
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    );
    expect(f.stats()).toEqual({ calls: 50, batches: 1 });
    for (const req of leader.seen) {
      expect(req).toMatchObject({ method: 'SendMessage', token: 'tok', forwarded: true });
      expect(req.idempotencyKey).toBe(`key-${(req.request as { content: string }).content}`);
      expect(req.deadline).toBeGreaterThan(Date.now());
    }
    // The next turn reuses the stream.
    await f.call(leader.address, send('again'));
    expect(f.stats()).toEqual({ calls: 51, batches: 2 });
  });

  it("keeps the leader's refusals: code, sentence and a rate limit's retry wait", async () => {
    const leader = await startLeader(async (req) => {
      const content = (req.request as { content: string }).content;
      if (content === 'limited') throw new ChatError(status.RESOURCE_EXHAUSTED, 'Slow down.', 1500);
      throw new ChatError(status.PERMISSION_DENIED, 'You are not in this chat.');
    });
    const f = follower();
    await expect(f.call(leader.address, send('denied'))).rejects.toMatchObject({
      code: status.PERMISSION_DENIED,
      message: 'You are not in this chat.',
    });
    await expect(f.call(leader.address, send('limited'))).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      retryAfterMs: 1500,
    });
  });

  it('fails a call whose deadline runs out with DEADLINE_EXCEEDED', async () => {
    const leader = await startLeader(() => new Promise(() => {}));
    const f = follower();
    await expect(f.call(leader.address, send('slow', { deadline: Date.now() + 100 }))).rejects.toMatchObject({
      code: status.DEADLINE_EXCEEDED,
    });
  });

  it('fails the calls waiting on a stream that breaks with UNAVAILABLE', async () => {
    let arrived!: () => void;
    const inLeader = new Promise<void>((r) => {
      arrived = r;
    });
    const leader = await startLeader(() => {
      arrived();
      return new Promise(() => {});
    });
    const f = follower();
    const waiting = f.call(leader.address, send('lost'));
    await inLeader;
    leader.server.forceShutdown();
    await expect(waiting).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('sends the calls the unary way to a leader without ForwardService (an older version)', async () => {
    const leader = await startLeader(async (req) => message(req), { forwardService: false });
    const unary: ForwardCall[] = [];
    const f = follower(async (_address, c) => {
      unary.push(c);
      return { via: 'unary' };
    });
    await expect(f.call(leader.address, send('old'))).resolves.toEqual({ via: 'unary' });
    await expect(f.call(leader.address, send('older'))).resolves.toEqual({ via: 'unary' });
    expect(unary.map((c) => (c.request as { content: string }).content)).toEqual(['old', 'older']);
    expect(leader.seen).toEqual([]);
  });

  it('refuses a stream without the cluster secret before it reads a call', async () => {
    const leader = await startLeader(async (req) => message(req));
    const Client = services().ForwardService;
    const client = new Client(leader.address, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const md = new grpc.Metadata();
    md.set('authorization', bearer('w'.repeat(32)));
    const stream = (
      client as unknown as { Forward: (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown> }
    ).Forward(md);
    const refused = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    stream.write({ calls: [{ id: 1, method: 'SendMessage', request: Buffer.alloc(0) }] });
    expect((await refused).code).toBe(status.UNAUTHENTICATED);
    expect(leader.seen).toEqual([]);
  });
});
