// An in-process one-member Raft replica on 127.0.0.1:0 (in-memory database) and promise-returning grpc-js
// calls that also capture the response headers and trailers (for the x-leader / x-members hints).
import * as grpc from '@grpc/grpc-js';
import { services } from '../../src/proto.js';
import { type ReplicaOptions, type RunningReplica, startReplica } from '../../src/server/replica.js';

export const SECRET = 'test-cluster-secret';

export type RunningNode = RunningReplica;

/** A bootstrapped one-member cluster, returned once it leads and has applied its first entries. */
export async function startTestNode(overrides: Partial<ReplicaOptions> = {}): Promise<RunningNode> {
  const node = await startReplica({
    id: 'n1',
    host: '127.0.0.1',
    port: 0,
    dataDir: ':memory:',
    peers: [],
    clusterSecret: SECRET,
    timing: { heartbeatMs: 20, electionMinMs: 60, electionMaxMs: 120 },
    scryptCost: { N: 1024, r: 8, p: 1 },
    ...overrides,
  });
  await waitFor(() => {
    const s = node.node.status();
    return s.role === 'leader' && s.lastApplied >= 2;
  }, 'the one-member cluster to elect itself');
  return node;
}

export interface CallOutcome<T = Record<string, unknown>> {
  response?: T;
  error?: grpc.ServiceError;
  headers?: grpc.Metadata;
  trailers?: grpc.Metadata;
}

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

export function metadata(values: Record<string, string> = {}): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(values)) md.set(k, v);
  return md;
}

/** Unary call that resolves with response or error plus headers and trailers. */
export function rpc<T = Record<string, unknown>>(
  stub: grpc.Client,
  method: string,
  req: unknown,
  md: grpc.Metadata = new grpc.Metadata(),
): Promise<CallOutcome<T>> {
  return new Promise((resolve) => {
    const out: CallOutcome<T> = {};
    let done = 0;
    const finish = () => {
      if (++done === 2) resolve(out);
    };
    const fn = (stub as unknown as Record<string, Unary>)[method];
    const c = fn.call(stub, req, md, { deadline: Date.now() + 10_000 }, (err, res) => {
      if (err) out.error = err;
      else out.response = res as T;
      finish();
    });
    c.on('metadata', (h: grpc.Metadata) => {
      out.headers = h;
    });
    c.on('status', (s: grpc.StatusObject) => {
      out.trailers = s.metadata;
      finish();
    });
  });
}

export function stubs(address: string) {
  const { ChatService, ClusterService } = services();
  return {
    chat: new ChatService(address, grpc.credentials.createInsecure()),
    cluster: new ClusterService(address, grpc.credentials.createInsecure()),
  };
}

/** Wait for `cond` with a bounded poll (no sleep-and-hope). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < end; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
