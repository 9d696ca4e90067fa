// A linearizability checker specialised to append-only lists with unique values (invariant 7).
//
// Because every value is appended once and lists only grow, the reads of one key pin down the order
// of the appends they saw: all reads must be prefixes of the longest one (L), and that prefix order is
// the only candidate order. Appends no read saw come after L. A read that returned k values sits
// between the k-th and the (k+1)-th append of L. What is left is a fixed sequence (reads in one slot,
// and the unseen appends, are sorted by invocation time, which is never worse than any other order),
// and a fixed sequence is linearizable iff no operation in it completed before an earlier operation
// of the sequence was invoked. That is one scan: O(total read length + n log n) per key, no search.
//
// Appends that never got a response may have taken effect or not: they respond "at infinity" and are
// left out unless a read saw them. Reads that never got a response constrain nothing.

export interface HistoryOp {
  /** Unique id (for messages). */
  id: number;
  client: string;
  kind: 'append' | 'read';
  key: string;
  /** The appended value (append). Values are unique across the whole history. */
  value?: string;
  invokedAt: number;
  /** Undefined when the client never saw a response. */
  respondedAt?: number;
  /** The list a read returned. */
  result?: readonly string[];
}

export type CheckResult = { ok: true } | { ok: false; key: string; reason: string; ops: HistoryOp[] };

export function checkLinearizable(history: readonly HistoryOp[]): CheckResult {
  const keys = new Map<string, HistoryOp[]>();
  const valueOwner = new Map<string, HistoryOp>();
  for (const op of history) {
    if (op.kind === 'append') {
      if (op.value === undefined) return fail(op.key, `append #${op.id} has no value`, [op]);
      const prev = valueOwner.get(op.value);
      if (prev)
        return fail(op.key, `value ${op.value} is appended twice (#${prev.id}, #${op.id})`, [prev, op]);
      valueOwner.set(op.value, op);
    }
    let list = keys.get(op.key);
    if (!list) {
      list = [];
      keys.set(op.key, list);
    }
    list.push(op);
  }
  for (const [key, ops] of [...keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const r = checkKey(key, ops, valueOwner);
    if (!r.ok) return r;
  }
  return { ok: true };
}

function checkKey(key: string, ops: HistoryOp[], valueOwner: Map<string, HistoryOp>): CheckResult {
  const reads = ops.filter((o) => o.kind === 'read' && o.respondedAt !== undefined);
  const appends = ops.filter((o) => o.kind === 'append');

  // 1. Every read: no value twice, every value appended to this key.
  let longest: HistoryOp | undefined;
  for (const r of reads) {
    const seen = new Set<string>();
    for (const v of r.result ?? []) {
      if (seen.has(v)) return fail(key, `read #${r.id} returned value ${v} twice`, [r]);
      seen.add(v);
      const owner = valueOwner.get(v);
      if (!owner) return fail(key, `read #${r.id} returned value ${v}, which nobody appended`, [r]);
      if (owner.key !== key) {
        return fail(key, `read #${r.id} returned value ${v}, appended to key ${owner.key}`, [r, owner]);
      }
    }
    if (!longest || (r.result?.length ?? 0) > (longest.result?.length ?? 0)) longest = r;
  }

  // 2. Every read is a prefix of the longest: one total order of the appends they saw.
  const order = longest?.result ?? [];
  for (const r of reads) {
    const res = r.result ?? [];
    for (let i = 0; i < res.length; i++) {
      if (res[i] !== order[i]) {
        return fail(
          key,
          `read #${r.id} is not a prefix of read #${longest!.id}: position ${i} is ${res[i]} vs ${order[i]}`,
          [r, longest!],
        );
      }
    }
  }

  // 3. The candidate sequence: A1, reads of length 1, A2, ..., An, reads of length n, unseen appends.
  const inOrder = new Set(order);
  const readsByLength = new Map<number, HistoryOp[]>();
  for (const r of reads) {
    const k = r.result?.length ?? 0;
    let slot = readsByLength.get(k);
    if (!slot) {
      slot = [];
      readsByLength.set(k, slot);
    }
    slot.push(r);
  }
  const byInvoke = (a: HistoryOp, b: HistoryOp) => a.invokedAt - b.invokedAt || a.id - b.id;
  const sequence: HistoryOp[] = [];
  for (let k = 0; k <= order.length; k++) {
    if (k > 0) sequence.push(valueOwner.get(order[k - 1]!)!);
    const slot = readsByLength.get(k);
    if (slot) sequence.push(...slot.sort(byInvoke));
  }
  const unseen = appends.filter((a) => !inOrder.has(a.value!) && a.respondedAt !== undefined).sort(byInvoke);
  sequence.push(...unseen);

  // 4. One scan: an op may not have completed before an op placed earlier was invoked.
  let latest: HistoryOp | undefined;
  for (const op of sequence) {
    const done = op.respondedAt ?? Number.POSITIVE_INFINITY;
    if (latest && done < latest.invokedAt) return fail(key, explain(latest, op, order), [latest, op]);
    if (!latest || op.invokedAt > latest.invokedAt) latest = op;
  }
  return { ok: true };
}

/** Why `later` (completed first in real time) cannot follow `earlier` in the only possible order. */
function explain(earlier: HistoryOp, later: HistoryOp, order: readonly string[]): string {
  const when = `#${later.id} completed at ${ms(later.respondedAt)}, before #${earlier.id} was invoked at ${ms(earlier.invokedAt)}`;
  if (earlier.kind === 'append' && later.kind === 'read') {
    return `read ${when}, yet it saw append #${earlier.id} (${earlier.value}): a value not yet appended`;
  }
  if (earlier.kind === 'read' && later.kind === 'append') {
    const seen = order.indexOf(later.value!) >= 0 ? 'a later read saw it' : 'no read saw it';
    return `read #${earlier.id} (${earlier.result?.length} values) missed append #${later.id} (${later.value}), acknowledged before the read began (${when}; ${seen})`;
  }
  if (earlier.kind === 'read' && later.kind === 'read') {
    return `reads went backwards: read ${when} but returned more values (${later.result?.length} > ${earlier.result?.length})`;
  }
  return `appends out of real-time order: append ${when}, yet is ordered after it`;
}

function ms(t: number | undefined): string {
  return t === undefined ? 'never' : `${Math.round(t * 1000) / 1000}ms`;
}

function fail(key: string, reason: string, ops: HistoryOp[]): CheckResult {
  return { ok: false, key, reason, ops };
}
