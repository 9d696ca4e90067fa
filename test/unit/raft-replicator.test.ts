// RaftReplicator: a write is a `command` entry whose apply result comes back; Raft's refusals become
// UNAVAILABLE (the client retries elsewhere with the same key); a read runs only after ReadIndex.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/chat/commands.js';
import { ChatError } from '../../src/chat/errors.js';
import type { ApplyOutcome } from '../../src/raft/interfaces.js';
import {
  NodeStoppedError,
  NotLeaderError,
  ProposalDroppedError,
  ProposalRejectedError,
} from '../../src/raft/node.js';
import { type RaftProposer, RaftReplicator } from '../../src/server/raft-replicator.js';

const command: Command = { type: 'logout', actor: 'abc', at: 1 };

function fakeNode(over: Partial<RaftProposer> = {}): RaftProposer & { proposed: [string, string][] } {
  const proposed: [string, string][] = [];
  return {
    proposed,
    propose: async (kind, data) => {
      proposed.push([kind, data]);
      return { index: 7, term: 2, result: { ok: true, value: { done: true } } } satisfies ApplyOutcome;
    },
    readIndex: async () => {},
    ...over,
  };
}

async function codeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ChatError);
    return { code: (err as ChatError).code, message: (err as ChatError).message };
  }
  throw new Error('expected a rejection');
}

describe('RaftReplicator', () => {
  it('proposes the encoded command and resolves with its apply result', async () => {
    const node = fakeNode();
    const r = new RaftReplicator(node);
    await expect(r.propose(command)).resolves.toEqual({ ok: true, value: { done: true } });
    expect(node.proposed).toEqual([['command', JSON.stringify(command)]]);
  });

  it.each([
    ['not the leader', new NotLeaderError('n2')],
    ['transfer in progress', new NotLeaderError(null, 'leadership transfer in progress')],
    ['overwritten by another leader', new ProposalDroppedError(9)],
    ['stopped', new NodeStoppedError()],
    ['rejected', new ProposalRejectedError('something')],
  ])('a proposal that Raft refuses (%s) is UNAVAILABLE with one sentence', async (_what, error) => {
    const r = new RaftReplicator(fakeNode({ propose: () => Promise.reject(error) }));
    const { code, message } = await codeOf(r.propose(command));
    expect(code).toBe(grpc.status.UNAVAILABLE);
    expect(message).toMatch(/^[A-Z].*\.$/);
    expect(message.split('. ').length).toBe(1);
  });

  it('a read waits for ReadIndex, then runs the query; a refused ReadIndex is UNAVAILABLE', async () => {
    let release: () => void = () => {};
    let ran = false;
    const r = new RaftReplicator(
      fakeNode({
        readIndex: () =>
          new Promise<void>((res) => {
            release = res;
          }),
      }),
    );
    const p = r.read(() => {
      ran = true;
      return 42;
    });
    await new Promise((res) => setImmediate(res));
    expect(ran).toBe(false);
    release();
    await expect(p).resolves.toBe(42);

    const refused = new RaftReplicator(
      fakeNode({ readIndex: () => Promise.reject(new NotLeaderError(null)) }),
    );
    let queried = false;
    const { code } = await codeOf(
      refused.read(() => {
        queried = true;
      }),
    );
    expect(code).toBe(grpc.status.UNAVAILABLE);
    expect(queried).toBe(false);
  });

  it('past the caller deadline the call is DEADLINE_EXCEEDED', async () => {
    let now = 1000;
    const never = fakeNode({ propose: () => new Promise<ApplyOutcome>(() => {}) });
    const r = new RaftReplicator(never, () => now);
    const late = await codeOf(r.propose(command, { deadline: 999 }));
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    now = 0;
    const timedOut = await codeOf(r.propose(command, { deadline: 20 }));
    expect(timedOut.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });
});
