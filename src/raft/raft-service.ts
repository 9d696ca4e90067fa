// The server side of RaftService (proto/raft.proto): authenticate the batch, decode all of it, then
// deliver it. Authentication and decoding both happen before the first delivery, so a refused call
// changes no state, whatever term it claims.

import * as grpc from '@grpc/grpc-js';
import type { NodeId, RaftMessage } from '../../machines/protocol.js';
import { services } from '../proto.js';
import { secretRefusal, secretRefusalMessage } from './cluster-secret.js';
import { CodecError, decode } from './codec.js';

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
}

/** Largest number of messages in one batch; more is a malformed or hostile call. */
const MAX_MESSAGES = 10_000;

type Refusal = { code: grpc.status; details: string };

/** Undefined when the call carries the secret; otherwise the refusal, saying whether it was missing or wrong. */
function refusal(md: grpc.Metadata, secret: string): Refusal | undefined {
  const auth = md.get('authorization');
  const why = auth.length > 1 ? 'wrong' : secretRefusal(auth[0], secret);
  if (!why) return undefined;
  return { code: grpc.status.UNAUTHENTICATED, details: secretRefusalMessage(why, 'RaftService') };
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

export function addRaftService(server: grpc.Server, opts: RaftServiceOptions): RaftServiceHandle {
  const service = services().RaftService.service;
  const open = new Set<() => void>();
  server.addService(service, {
    Send(
      call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const unauthenticated = refusal(call.metadata, opts.secret);
      if (unauthenticated) {
        opts.onError?.(`unauthenticated RaftService call: ${unauthenticated.details}`);
        callback(unauthenticated);
        return;
      }
      const refused = receiveBatch(call.request, opts);
      callback(refused ?? null, refused ? undefined : {});
    },

    Stream(
      call: grpc.ServerReadableStream<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const unauthenticated = refusal(call.metadata, opts.secret);
      if (unauthenticated) {
        opts.onError?.(`unauthenticated RaftService stream: ${unauthenticated.details}`);
        callback(unauthenticated);
        return;
      }
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
  });
  return {
    endStreams: () => {
      for (const end of [...open]) end();
    },
  };
}
