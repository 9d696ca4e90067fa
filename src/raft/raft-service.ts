// The server side of RaftService (proto/raft.proto): authenticate the batch, decode all of it, then
// deliver it. Authentication and decoding both happen before the first delivery, so a refused call
// changes no state, whatever term it claims.

import * as grpc from '@grpc/grpc-js';
import type { NodeId, RaftMessage } from '../../machines/protocol.js';
import { services } from '../proto.js';
import { checkBearer } from './cluster-secret.js';
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

export function addRaftService(server: grpc.Server, opts: RaftServiceOptions): void {
  const service = services().RaftService.service;
  server.addService(service, {
    Send(
      call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      const auth = call.metadata.get('authorization');
      if (auth.length !== 1 || !checkBearer(auth[0], opts.secret)) {
        opts.onError?.('unauthenticated RaftService call');
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'Missing or wrong cluster secret.' });
        return;
      }
      const raw = call.request.messages;
      if (!Array.isArray(raw) || raw.length > MAX_MESSAGES) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: 'The batch is malformed or too large.' });
        return;
      }
      let messages: RaftMessage[];
      try {
        messages = raw.map(decode);
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        opts.onError?.('malformed RaftService batch', err);
        callback({ code: grpc.status.INVALID_ARGUMENT, details: `Malformed Raft message: ${err.message}.` });
        return;
      }
      if (messages.some((m) => m.from !== messages[0].from)) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: 'A batch must come from one sender.' });
        return;
      }
      const fromAddress = call.request.from_address;
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
      callback(null, {});
    },
  });
}
