// The server side of RaftService (proto/raft.proto): authenticate the call, decode the batch, check
// all of it, then deliver it. Every method of the service goes through guardService (secret-guard.ts),
// which checks the cluster secret from the metadata before a byte of the request is decoded; on a
// replica's server, raftSecretGate() refuses the call even before its body is read. Everything is
// checked before the first delivery, so a refused call changes no state, whatever term it claims.

import * as grpc from '@grpc/grpc-js';
import type { NodeId, RaftMessage } from '../../machines/protocol.js';
import { services } from '../proto.js';
import { CodecError, decode } from './codec.js';
import { guardService, secretGate } from './secret-guard.js';

export interface RaftServiceOptions {
  secret: string;
  /** Called once per inbound message, in the order the sender produced them. */
  deliver: (message: RaftMessage) => void;
  /** This replica's id: messages addressed to another id are dropped (a reused address). */
  selfId?: NodeId;
  /** The sender's self-reported address, so a joining replica can answer a leader it does not know yet. */
  learnAddress?: (id: NodeId, address: string) => void;
  /** Reports refused calls and handler exceptions (for logs and metrics). */
  onError?: (what: string, err?: unknown) => void;
  /** Ephemeral notices (Relay), outside the log: opaque bytes for the host's handler of `topic`. */
  relay?: (from: NodeId, topic: string, payload: Buffer) => void;
}

/** Largest Relay payload accepted (an ephemeral notice is small; anything bigger is refused). */
export const MAX_RELAY_BYTES = 16 * 1024;

/** Largest number of messages in one batch; more is a malformed or hostile call. */
const MAX_MESSAGES = 10_000;

type Refusal = { code: grpc.status; details: string };

/** Every method path of RaftService starts with this; all of them need the cluster secret. */
export const RAFT_SERVICE_PREFIX = '/quorumchat.v1.RaftService/';

/** The interceptor that refuses RaftService calls without the secret before their body is read. */
export function raftSecretGate(secret: string, onRefused?: (path: string) => void): grpc.ServerInterceptor {
  return secretGate({ secret, needsSecret: (path) => path.startsWith(RAFT_SERVICE_PREFIX), onRefused });
}

/** Check and decode a whole batch, then deliver it; a refusal delivers nothing of it. */
function receiveBatch(request: Record<string, unknown>, opts: RaftServiceOptions): Refusal | undefined {
  const raw = request.messages;
  if (!Array.isArray(raw) || raw.length > MAX_MESSAGES) {
    return { code: grpc.status.INVALID_ARGUMENT, details: 'The batch is malformed or too large.' };
  }
  let messages: RaftMessage[];
  try {
    messages = raw.map(decode);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    opts.onError?.('malformed RaftService batch', err);
    return { code: grpc.status.INVALID_ARGUMENT, details: `Malformed Raft message: ${err.message}.` };
  }
  if (messages.some((m) => m.from !== messages[0].from)) {
    return { code: grpc.status.INVALID_ARGUMENT, details: 'A batch must come from one sender.' };
  }
  const fromAddress = request.from_address;
  if (opts.learnAddress && typeof fromAddress === 'string' && fromAddress !== '' && messages.length > 0) {
    opts.learnAddress(messages[0].from, fromAddress);
  }
  for (const m of messages) {
    if (opts.selfId !== undefined && m.to !== opts.selfId) continue;
    try {
      opts.deliver(m);
    } catch (err) {
      // A failing handler must not take the server down; the message counts as lost.
      opts.onError?.('delivering a Raft message failed', err);
    }
  }
  return undefined;
}

/** What a registered RaftService lets its owner do. */
export interface RaftServiceHandle {
  /** End every inbound stream cleanly (their senders reopen later), so a server shutdown need not
   *  wait for them. */
  endStreams(): void;
}

/** Registers RaftService on `server`; every method needs the secret (guardService checks it). */
export function addRaftService(server: grpc.Server, opts: RaftServiceOptions): RaftServiceHandle {
  const open = new Set<() => void>();
  const implementation: grpc.UntypedServiceImplementation = {
    Send(
      call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const refused = receiveBatch(call.request, opts);
      callback(refused ?? null, refused ? undefined : {});
    },

    Relay(
      call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      // guardService checked the secret before the request was decoded.
      const { from, topic, payload } = call.request;
      if (
        typeof from !== 'string' ||
        typeof topic !== 'string' ||
        !Buffer.isBuffer(payload) ||
        payload.length > MAX_RELAY_BYTES
      ) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: 'The relay is malformed or too large.' });
        return;
      }
      try {
        opts.relay?.(from, topic, payload);
      } catch (err) {
        opts.onError?.('delivering a relay failed', err);
      }
      callback(null, {});
    },

    Stream(
      call: grpc.ServerReadableStream<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      // Accepted: the sender counts what it writes from here on as delivered (grpc-transport.ts).
      call.sendMetadata(new grpc.Metadata());
      let ended = false;
      const finish = (refused?: Refusal) => {
        if (ended) return;
        ended = true;
        open.delete(end);
        callback(refused ?? null, refused ? undefined : {});
      };
      const end = () => finish();
      open.add(end);
      call.on('data', (request: Record<string, unknown>) => {
        if (ended) return;
        const refused = receiveBatch(request, opts);
        if (refused) finish(refused);
      });
      call.on('end', end);
      call.on('error', () => {
        ended = true;
        open.delete(end);
      });
      call.on('cancelled', () => {
        ended = true;
        open.delete(end);
      });
    },
  };
  const guarded = guardService(services().RaftService.service, implementation, {
    secret: opts.secret,
    onRefused: (method, s) => opts.onError?.(`RaftService ${method} refused: ${s.details}`),
  });
  server.addService(guarded.definition, guarded.implementation);
  return {
    endStreams: () => {
      for (const end of [...open]) end();
    },
  };
}
