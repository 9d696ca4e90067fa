// Calls with raw request bytes, as an outsider could make them: any path, any bytes, any metadata.
// `partialCall` goes below gRPC, to HTTP/2, to send a request whose body never finishes: the answer
// to it shows whether a server decides before it has read the body.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';

export interface Outcome {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
  ms: number;
}

const id = (b: Buffer) => b;

function outcome(err: grpc.ServiceError | null, t0: number): Outcome {
  return {
    code: err ? err.code : grpc.status.OK,
    details: err?.details ?? '',
    metadata: err?.metadata ?? new grpc.Metadata(),
    ms: performance.now() - t0,
  };
}

/** A client for raw calls, connected before it is returned (so timings exclude the handshake). */
export async function rawClient(address: string): Promise<grpc.Client> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 32 << 20,
  });
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())),
  );
  return client;
}

/** One unary call with `bytes` as the request. */
export function rawUnary(
  client: grpc.Client,
  path: string,
  bytes: Buffer,
  md = new grpc.Metadata(),
): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    client.makeUnaryRequest(path, id, id, bytes, md, { deadline: Date.now() + 10_000 }, (err) =>
      resolve(outcome(err, t0)),
    );
  });
}

/** One client-streaming call that writes `messages`, then half-closes unless `end` is false. */
export function rawClientStream(
  client: grpc.Client,
  path: string,
  messages: Buffer[],
  md = new grpc.Metadata(),
  end = true,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const call = client.makeClientStreamRequest(path, id, id, md, { deadline: Date.now() + 10_000 }, (err) =>
      resolve(outcome(err, t0)),
    );
    call.on('error', () => {}); // the callback reports it
    for (const m of messages) call.write(m);
    if (end) call.end();
  });
}

/**
 * Send the request headers and the first `sendBytes` of a message that claims `claimBytes`, then
 * nothing more. Resolves with the gRPC status the server answers with, or undefined when it has not
 * answered within `waitMs` (it is waiting for the rest of the body).
 */
export async function partialCall(
  address: string,
  path: string,
  opts: { claimBytes: number; sendBytes: number; metadata?: Record<string, string>; waitMs?: number },
): Promise<{ status: number; message: string; headers: http2.IncomingHttpHeaders } | undefined> {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...opts.metadata,
    });
    req.on('error', () => {});
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(opts.claimBytes, 1);
    req.write(Buffer.concat([prefix, Buffer.alloc(opts.sendBytes)]));
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), opts.waitMs ?? 2000);
      req.on('response', (headers) => {
        clearTimeout(timer);
        const status = headers['grpc-status'];
        resolve(
          status === undefined
            ? undefined
            : {
                status: Number(status),
                message: decodeURIComponent(String(headers['grpc-message'] ?? '')),
                headers,
              },
        );
      });
    });
  } finally {
    session.destroy();
  }
}
