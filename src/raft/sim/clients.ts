// One simulated client: invokes appends (unique values) and linearizable reads (through readIndex)
// on random replicas (followers serve reads themselves, after the leader's read index), one at a time; retries refusals and timeouts elsewhere with the same request
// identity (client, seq), so the state machine applies a retried append once; and records every
// operation with its virtual invocation and response times in the simulation's history.

import type { NodeId } from '../../../machines/protocol.js';
import type { SimEvent } from './event-queue.js';
import type { HistoryOp } from './linearizability.js';
import type { Prng } from './prng.js';
import { type Simulation, errorText } from './simulation.js';
import { type AppendResult, encodeAppend } from './state-machine.js';

export function startClient(sim: Simulation, name: string, rng: Prng): void {
  let seq = 0;
  let current: { op: HistoryOp; seq: number; attempt: number; timer?: SimEvent } | null = null;

  const schedule = (delay: number, fn: () => void) => sim.queue.after(delay, 'client', fn);
  const done = (op: HistoryOp) => current?.op === op && op.respondedAt === undefined;

  const invoke = () => {
    if (sim.now() >= sim.clientsStopAt || sim.failed) return;
    seq++;
    const key = `k${rng.int(sim.options.keys)}`;
    const isAppend = rng.chance(0.6);
    const op: HistoryOp = {
      id: sim.newOpId(),
      client: name,
      kind: isAppend ? 'append' : 'read',
      key,
      invokedAt: sim.now(),
    };
    if (isAppend) op.value = `${name}.${seq}`;
    sim.history.push(op);
    current = { op, seq, attempt: 0 };
    sim.note('invoke', name, `#${op.id} ${op.kind} ${key}${op.value ? ` ${op.value}` : ''}`);
    attempt();
  };

  const succeed = (op: HistoryOp, via: NodeId, result?: string[]) => {
    if (!done(op)) return;
    op.respondedAt = sim.now();
    if (result) op.result = result;
    if (current!.timer) sim.queue.cancel(current!.timer);
    current = null;
    if (op.kind === 'append') sim.stats.appendsAcked++;
    else sim.stats.readsOk++;
    sim.note(
      'ok',
      name,
      `#${op.id} via ${via}${result ? ` [${result.length}] ...${result.slice(-3).join(',')}` : ''}`,
    );
    schedule(rng.range(0, 40), invoke);
  };

  // Like a real client, follow the leader hint of a refusal most of the time.
  let hint: NodeId | null = null;
  const retryLater = (op: HistoryOp, n: number, why: string, error?: unknown) => {
    if (!done(op) || current!.attempt !== n) return;
    const leaderId = (error as { leaderId?: unknown } | undefined)?.leaderId;
    hint = typeof leaderId === 'string' && sim.ids.includes(leaderId) ? leaderId : null;
    if (current!.timer) sim.queue.cancel(current!.timer);
    current!.timer = undefined;
    sim.note('retry', name, `#${op.id} attempt ${n}: ${why}`);
    schedule(rng.range(10, 60), () => {
      if (done(op) && current!.attempt === n) attempt();
    });
  };

  const attempt = () => {
    const cur = current!;
    const op = cur.op;
    const n = ++cur.attempt;
    if (sim.failed) return;
    const id = hint !== null && rng.chance(0.8) ? hint : rng.pick(sim.ids);
    hint = null;
    const slot = sim.replica(id);
    if (!slot.up) {
      retryLater(op, n, `${id} is down`);
      return;
    }
    const host = slot.host!;
    const incarnation = slot.incarnation;
    const sm = slot.sm!;
    cur.timer = schedule(sim.options.clientTimeoutMs, () => {
      if (done(op) && current!.attempt === n) {
        sim.note('timeout', name, `#${op.id} attempt ${n} at ${id}`);
        attempt();
      }
    });
    if (op.kind === 'append') {
      const data = encodeAppend({ key: op.key, value: op.value!, client: name, seq: cur.seq });
      host.propose('command', data).then(
        (outcome) => {
          const r = outcome.result as AppendResult;
          if (!r || r.ok !== true) {
            if (done(op))
              sim.fail(`append #${op.id} (${op.value}) got an unexpected result: ${JSON.stringify(r)}`);
            return;
          }
          if (r.value !== op.value) {
            sim.fail(`append #${op.id} (${op.value}) was answered with the result of ${r.value}`);
            return;
          }
          succeed(op, id);
        },
        (e) => retryLater(op, n, `${id}: ${errorText(e)}`, e),
      );
    } else {
      host.readIndex().then(
        () => {
          if (slot.incarnation !== incarnation || !slot.up) {
            retryLater(op, n, `${id} restarted during the read`);
            return;
          }
          // Served from this replica's own state (a follower does not forward: ReadIndex).
          if (done(op) && host.status().role !== 'leader') sim.stats.followerReads++;
          succeed(op, id, sm.read(op.key));
        },
        (e) => retryLater(op, n, `${id}: ${errorText(e)}`, e),
      );
    }
  };

  schedule(rng.range(0, 100), invoke);
}
