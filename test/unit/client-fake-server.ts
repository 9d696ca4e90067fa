// An in-process ChatService (and ClusterService GetStatus) on 127.0.0.1:<free port> for the client tests.
// Each test scripts the replies; every call is recorded with the metadata the client sent.
import * as grpc from '@grpc/grpc-js';
import { loadProtos, services } from '../../src/proto.js';

export interface RecordedCall {
  method: string;
  request: Record<string, unknown>;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
}

/** What a scripted unary handler answers. `hang` never answers (until the server is stopped). */
export interface FakeReply {
  response?: object;
  /** `retryAfterMs` goes out as the `retry-after-ms` trailer (API.md Limits). */
  error?: { code: grpc.status; details: string; retryAfterMs?: number };
  /** Topology hints, sent as response headers (default) or as trailers. */
  leader?: string;
  members?: string[];
  hintsIn?: 'headers' | 'trailers';
  hang?: boolean;
  /** Answer only once this settles (a call held in flight while the test does something). */
  after?: Promise<unknown>;
}

export type UnaryScript = (method: string, request: Record<string, unknown>, server: FakeServer) => FakeReply;
export type StreamScript = (
  call: grpc.ServerWritableStream<Record<string, unknown>, unknown>,
  server: FakeServer,
) => void;

export class FakeServer {
  readonly calls: RecordedCall[] = [];
  address = '';
  lastApplied = 0;
  /** ClusterService script; by default GetStatus answers a leader at lastApplied. */
  cluster: UnaryScript = (method) =>
    method === 'GetStatus'
      ? {
          response: {
            node_id: 'fake',
            address: this.address,
            role: 'leader',
            last_applied: this.lastApplied,
          },
        }
      : { error: { code: grpc.status.UNIMPLEMENTED, details: 'Not here.' } };
  private readonly server = new grpc.Server();

  constructor(
    public unary: UnaryScript,
    public stream: StreamScript = (call) =>
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'No.' }),
  ) {}

  static async start(unary: UnaryScript, stream?: StreamScript): Promise<FakeServer> {
    const s = new FakeServer(unary, stream);
    await s.listen();
    return s;
  }

  callsOf(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Stops at once, breaking open calls and streams (like a killed replica). */
  stop(): void {
    this.server.forceShutdown();
  }

  private async listen(): Promise<void> {
    const chat = services().ChatService.service;
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, def] of Object.entries(chat)) {
      if (def.responseStream) {
        impl[name] = (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
          this.record(name, call.request, call.metadata);
          this.stream(call, this);
        };
      } else {
        impl[name] = (
          call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
          cb: grpc.sendUnaryData<unknown>,
        ) => {
          this.record(name, call.request, call.metadata);
          this.reply(this.unary(name, call.request, this), call, cb);
        };
      }
    }
    this.server.addService(chat, impl);
    const clusterImpl: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(services().ClusterService.service)) {
      clusterImpl[name] = (
        call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        this.record(name, call.request, call.metadata);
        this.reply(this.cluster(name, call.request, this), call, cb);
      };
    }
    this.server.addService(services().ClusterService.service, clusterImpl);
    loadProtos();
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.address = `127.0.0.1:${port}`;
  }

  private record(method: string, request: Record<string, unknown>, md: grpc.Metadata): void {
    const first = (k: string) => {
      const v = md.get(k)[0];
      return typeof v === 'string' ? v : undefined;
    };
    this.calls.push({
      method,
      request,
      idempotencyKey: first('idempotency-key'),
      authorization: first('authorization'),
    });
  }

  private reply(
    r: FakeReply,
    call: grpc.ServerUnaryCall<unknown, unknown>,
    cb: grpc.sendUnaryData<unknown>,
  ): void {
    if (r.hang) return;
    if (r.after) {
      const rest = { ...r, after: undefined };
      r.after.finally(() => this.reply(rest, call, cb));
      return;
    }
    const hints = hintMetadata(r);
    if (hints && r.hintsIn !== 'trailers') call.sendMetadata(hints);
    const trailers = r.hintsIn === 'trailers' ? hints : undefined;
    if (r.error) {
      const md = trailers ?? new grpc.Metadata();
      if (r.error.retryAfterMs !== undefined) md.set('retry-after-ms', String(r.error.retryAfterMs));
      cb({ code: r.error.code, details: r.error.details, metadata: md });
    } else {
      cb(null, r.response ?? {}, trailers);
    }
  }
}

export function hintMetadata(r: { leader?: string; members?: string[] }): grpc.Metadata | undefined {
  if (r.leader === undefined && r.members === undefined) return undefined;
  const md = new grpc.Metadata();
  if (r.leader !== undefined) md.set('x-leader', r.leader);
  if (r.members !== undefined) md.set('x-members', r.members.join(','));
  return md;
}

/** An address on which nothing listens: bind a port, then close it. */
export async function closedAddress(): Promise<string> {
  const s = new grpc.Server();
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  s.forceShutdown();
  return `127.0.0.1:${port}`;
}

/** Polls `cond` every 10 ms until it holds or `timeoutMs` passes (then throws). */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Deterministic injections: no real sleeping, a counter for idempotency keys, fixed jitter. */
export function deterministic() {
  let n = 0;
  const slept: number[] = [];
  return {
    slept,
    opts: {
      random: () => 0.5,
      sleep: async (ms: number) => {
        slept.push(ms);
      },
      newIdempotencyKey: () => `key-${++n}`,
    },
  };
}

export const ok = (response: object = {}): FakeReply => ({ response });
export const fail = (code: grpc.status, details: string): FakeReply => ({ error: { code, details } });
