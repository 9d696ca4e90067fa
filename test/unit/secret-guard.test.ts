// guardService and secretGate on a made-up service with one method of each kind (JSON messages), so
// that every kind a later method may have (unary, server-, client- and bidi-streaming) is covered:
// the secret is checked before anything is decoded, malformed bytes get INVALID_ARGUMENT, handlers
// see decoded requests, open methods decode at most their limit.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../../src/raft/cluster-secret.js';
import { guardService, secretGate } from '../../src/raft/secret-guard.js';
import { partialCall, rawClient } from './raw-grpc.js';

const SECRET = 's'.repeat(32);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
let decodes = 0;
const parse = (b: Buffer) => {
  decodes++;
  const v = JSON.parse(b.toString('utf8'));
  if (typeof v !== 'object' || v === null) throw new Error('not an object');
  return v;
};

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/test.Guarded/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json,
    requestDeserialize: parse,
    responseSerialize: json,
    responseDeserialize: parse,
  };
}

const definition = {
  Open: method('Open', false, false),
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
} as unknown as grpc.ServiceDefinition;

const ran: string[] = [];
const implementation: grpc.UntypedServiceImplementation = {
  Open: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    ran.push('Open');
    cb(null, { echo: call.request });
  },
  Unary: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    ran.push('Unary');
    cb(null, { echo: call.request });
  },
  ServerStream: (call: grpc.ServerWritableStream<unknown, unknown>) => {
    ran.push('ServerStream');
    call.write({ echo: call.request });
    call.end();
  },
  ClientStream: (call: grpc.ServerReadableStream<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    ran.push('ClientStream');
    const got: unknown[] = [];
    call.on('data', (m) => got.push(m));
    call.on('end', () => cb(null, { echo: got }));
  },
  Bidi: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
    ran.push('Bidi');
    call.on('data', (m) => call.write({ echo: m }));
    call.on('end', () => call.end());
  },
};

type Result = { code: grpc.status; details: string; responses: unknown[] };
const id = (b: Buffer) => b;

/** Call `name` with raw request messages; collects the responses (parsed) and the final status. */
function call(
  client: grpc.Client,
  name: string,
  messages: Buffer[],
  md = new grpc.Metadata(),
): Promise<Result> {
  const path = `/test.Guarded/${name}`;
  const opts = { deadline: Date.now() + 5000 };
  const responses: unknown[] = [];
  return new Promise((resolve) => {
    const done = (err: grpc.ServiceError | null, res?: Buffer) => {
      if (res) responses.push(JSON.parse(res.toString()));
      resolve({ code: err ? err.code : grpc.status.OK, details: err?.details ?? '', responses });
    };
    const kind = definition[name];
    if (!kind.requestStream && !kind.responseStream) {
      client.makeUnaryRequest(path, id, id, messages[0], md, opts, done);
    } else if (!kind.requestStream) {
      const s = client.makeServerStreamRequest(path, id, id, messages[0], md, opts);
      s.on('data', (b: Buffer) => responses.push(JSON.parse(b.toString())));
      s.on('error', (e: grpc.ServiceError) => done(e));
      s.on('end', () => done(null));
    } else if (!kind.responseStream) {
      const s = client.makeClientStreamRequest(path, id, id, md, opts, done);
      s.on('error', () => {});
      for (const m of messages) s.write(m);
      s.end();
    } else {
      const s = client.makeBidiStreamRequest(path, id, id, md, opts);
      s.on('data', (b: Buffer) => responses.push(JSON.parse(b.toString())));
      s.on('error', (e: grpc.ServiceError) => done(e));
      s.on('end', () => done(null));
      for (const m of messages) s.write(m);
      s.end();
    }
  });
}

describe('guardService and secretGate', () => {
  let server: grpc.Server;
  let gated: grpc.Server;
  let client: grpc.Client;
  let address: string;
  let gatedAddress: string;
  const refused: string[] = [];

  async function start(interceptors: grpc.ServerInterceptor[]): Promise<[grpc.Server, string]> {
    const s = new grpc.Server({ interceptors });
    const g = guardService(definition, implementation, {
      secret: SECRET,
      open: new Set(['Open']),
      maxOpenRequestBytes: 100,
      onRefused: (m, st) => refused.push(`${m} ${grpc.status[st.code]}`),
    });
    s.addService(g.definition, g.implementation);
    const port = await new Promise<number>((resolve, reject) =>
      s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    return [s, `127.0.0.1:${port}`];
  }

  beforeAll(async () => {
    [server, address] = await start([]);
    const gate = secretGate({
      secret: SECRET,
      needsSecret: (path) => path.startsWith('/test.Guarded/') && path !== '/test.Guarded/Open',
    });
    [gated, gatedAddress] = await start([gate]);
    client = await rawClient(address);
  });
  afterAll(async () => {
    client?.close();
    server?.forceShutdown();
    gated?.forceShutdown();
  });

  const secret = () => {
    const md = new grpc.Metadata();
    md.set('authorization', bearer(SECRET));
    return md;
  };
  const GUARDED = ['Unary', 'ServerStream', 'ClientStream', 'Bidi'];

  it('refuses every guarded kind of method without the secret, before decoding or running it', async () => {
    ran.length = 0;
    decodes = 0;
    for (const name of GUARDED) {
      for (const [md, said] of [
        [
          new grpc.Metadata(),
          `${name} needs the cluster secret as 'authorization: Bearer <secret>', and none was given.`,
        ],
        [
          (() => {
            const m = new grpc.Metadata();
            m.set('authorization', bearer('wrong'));
            return m;
          })(),
          `The cluster secret given to ${name} is wrong: it is not this cluster's (compare cluster.secret on a member).`,
        ],
      ] as const) {
        const out = await call(client, name, [json({ a: 1 })], md);
        expect(out.code, name).toBe(grpc.status.UNAUTHENTICATED);
        expect(out.details).toBe(said);
        expect(out.responses).toEqual([]);
      }
    }
    expect(decodes).toBe(0);
    expect(ran).toEqual([]);
    expect(refused).toContain('Bidi UNAUTHENTICATED');
  });

  it('hands every kind of handler decoded requests once the secret is right', async () => {
    const msg = { hello: 'world' };
    expect((await call(client, 'Unary', [json(msg)], secret())).responses).toEqual([{ echo: msg }]);
    expect((await call(client, 'ServerStream', [json(msg)], secret())).responses).toEqual([{ echo: msg }]);
    const two = [json({ n: 1 }), json({ n: 2 })];
    expect((await call(client, 'ClientStream', two, secret())).responses).toEqual([
      { echo: [{ n: 1 }, { n: 2 }] },
    ]);
    expect((await call(client, 'Bidi', two, secret())).responses).toEqual([
      { echo: { n: 1 } },
      { echo: { n: 2 } },
    ]);
    // The open method needs no secret.
    expect((await call(client, 'Open', [json(msg)])).responses).toEqual([{ echo: msg }]);
  });

  it('answers malformed bytes with INVALID_ARGUMENT, delivering nothing from the malformed message on', async () => {
    const bad = Buffer.from('not json');
    for (const name of [...GUARDED, 'Open']) {
      const out = await call(client, name, [bad], secret());
      expect(out.code, name).toBe(grpc.status.INVALID_ARGUMENT);
      expect(out.details).toBe(`The request is not a valid ${name} message.`);
    }
    const mixed = await call(client, 'Bidi', [json({ n: 1 }), bad, json({ n: 3 })], secret());
    expect(mixed.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(mixed.responses.length).toBeLessThanOrEqual(1);
    expect(mixed.responses).not.toContainEqual({ echo: { n: 3 } });
    const mixedClient = await call(client, 'ClientStream', [json({ n: 1 }), bad, json({ n: 3 })], secret());
    expect(mixedClient.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('lets an open method decode at most its limit', async () => {
    const big = await call(client, 'Open', [json({ pad: 'x'.repeat(200) })]);
    expect(big.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(big.details).toMatch(/^The request is \d+ bytes; the limit is 100 bytes\.$/);
  });

  it('with the gate, refuses a guarded call whose body never arrives; the open one waits for it', async () => {
    for (const name of GUARDED) {
      const out = await partialCall(gatedAddress, `/test.Guarded/${name}`, {
        claimBytes: 1 << 20,
        sendBytes: 10,
      });
      expect(out?.status, name).toBe(grpc.status.UNAUTHENTICATED);
    }
    const open = await partialCall(gatedAddress, '/test.Guarded/Open', {
      claimBytes: 1 << 20,
      sendBytes: 10,
      waitMs: 300,
    });
    expect(open).toBeUndefined();
  });
});
