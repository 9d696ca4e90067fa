// The simulator's trace file: a recorded run reads back whole (header, statuses with preCandidate
// and term runs, messages joined send→deliver, faults, transitions, the failure at its moment), and a
// file of another version, cut short or garbled is refused with one clear sentence. Planted bugs make
// a seed fail deterministically, and recording does not change the run.
import { describe, expect, it } from 'vitest';
import { runSeed } from '../../src/raft/sim/run-seed.js';
import {
  TRACE_VERSION,
  TraceFormatError,
  headerLine,
  parseTrace,
  recordLine,
} from '../../src/raft/sim/trace-format.js';
import { TraceRecorder, termRuns } from '../../src/raft/sim/trace-recorder.js';

async function record(seed: number, plantedBug?: 'vote-twice' | 'commit-without-quorum') {
  const lines: string[] = [];
  const result = await runSeed(seed, {
    plantedBug,
    recorder: new TraceRecorder((l) => lines.push(l), { test: true }),
  });
  return { result, text: `${lines.join('\n')}\n` };
}

describe('simulator trace file', () => {
  it('reads back a recorded failing run: statuses, messages, faults, transitions and the failure at its moment', async () => {
    const { result, text } = await record(6, 'vote-twice');
    expect(result.ok).toBe(false);
    const trace = parseTrace(text);
    expect(trace.header).toMatchObject({
      version: TRACE_VERSION,
      seed: 6,
      nodes: ['n1', 'n2', 'n3', 'n4', 'n5'],
    });
    expect(trace.header.run).toMatchObject({ test: true, plantedBug: 'vote-twice' });
    expect(trace.end).toMatchObject({ ok: false, records: trace.events.length, steps: result.steps });
    expect(trace.failure?.message).toBe(result.failure);
    expect(trace.failure?.message).toMatch(/granted its vote in term \d+ to both/);
    // The failure is the last event, at the simulated moment the run stopped.
    expect(trace.events.at(-1)).toBe(trace.failure);
    expect(trace.failure!.t).toBeCloseTo(result.simulatedMs, 2);
    // Times never go back.
    for (let i = 1; i < trace.events.length; i++)
      expect(trace.events[i]!.t).toBeGreaterThanOrEqual(trace.events[i - 1]!.t);
    const kinds = new Set(trace.events.map((e) => e.k));
    for (const k of ['status', 'send', 'deliver', 'transition', 'failure']) expect(kinds).toContain(k);
    const statuses = trace.events.filter((e) => e.k === 'status');
    expect(statuses.some((s) => s.role === 'preCandidate')).toBe(true);
    expect(statuses.some((s) => s.role === 'candidate')).toBe(true);
    // Every delivery joins a send of the same message.
    const sent = new Map(trace.events.flatMap((e) => (e.k === 'send' ? [[e.id, e] as const] : [])));
    for (const d of trace.events)
      if (d.k === 'deliver') expect(sent.get(d.id)).toMatchObject({ from: d.from, to: d.to, type: d.type });
    const transitions = trace.events.filter((e) => e.k === 'transition');
    expect(transitions.some((x) => x.from === 'follower' && x.to === 'preCandidate')).toBe(true);
  });

  it('records faults with the cut links, and log term runs that match the statuses', async () => {
    const { text } = await record(2, 'vote-twice');
    const trace = parseTrace(text);
    const faults = trace.events.filter((e) => e.k === 'fault');
    expect(faults.some((f) => f.what === 'crash' && f.node)).toBe(true);
    for (const f of faults) if (f.what === 'heal') expect(f.cuts).toEqual([]);
    // A leader reports its followers' match indexes.
    const leaders = trace.events.filter((e) => e.k === 'status' && e.role === 'leader');
    expect(leaders.some((l) => l.k === 'status' && Object.keys(l.match ?? {}).length === 4)).toBe(true);
    for (const s of trace.events) {
      if (s.k !== 'status' || s.role === 'down' || s.runs.length === 0) continue;
      expect(s.runs[0]![0]).toBeGreaterThan(s.snap);
      expect(s.runs.at(-1)![0]).toBeLessThanOrEqual(s.last);
    }
  });

  it('does not change the run: the same seed with and without a recorder ends the same', async () => {
    const plain = await runSeed(6, { plantedBug: 'vote-twice' });
    const { result } = await record(6, 'vote-twice');
    expect(result.failure).toBe(plain.failure);
    expect(result.steps).toBe(plain.steps);
  });

  const header = headerLine({ seed: 1, nodes: ['n1'], run: {} });
  const status = recordLine({
    k: 'status',
    t: 1,
    node: 'n1',
    role: 'follower',
    state: 'follower',
    term: 1,
    leader: null,
    commit: 0,
    applied: 0,
    last: 0,
    snap: 0,
    runs: [],
  });
  const end = recordLine({ k: 'end', t: 1, ok: true, steps: 1, records: 1 });
  const refused = (text: string) => {
    try {
      parseTrace(text);
    } catch (e) {
      expect(e).toBeInstanceOf(TraceFormatError);
      return (e as Error).message;
    }
    throw new Error('parseTrace accepted it');
  };

  it('round-trips a minimal file', () => {
    expect(parseTrace([header, status, end].join('\n')).events).toHaveLength(1);
  });

  it('refuses another version, a file cut short, a garbled line, and what is not a trace', () => {
    expect(
      refused([header.replace(`"version":${TRACE_VERSION}`, '"version":99'), status, end].join('\n')),
    ).toMatch(/version 99; this build reads version 1/);
    expect(refused([header, status].join('\n'))).toMatch(/truncated: it has no end record/);
    expect(refused([header, status, end.slice(0, 12)].join('\n'))).toMatch(
      /truncated: its last line \(3\) is cut short/,
    );
    expect(refused([header, '{"k":"status",', end].join('\n'))).toMatch(
      /Line 2 of the trace is not JSON: the file is garbled/,
    );
    expect(refused([header, '{"k":"bogus","t":1}', end].join('\n'))).toMatch(/Line 2 .* not a trace record/);
    expect(refused([header, end.replace('"records":1', '"records":2'), ''].join('\n'))).toMatch(
      /counts 2 records/,
    );
    expect(refused('')).toMatch(/empty/);
    expect(refused('{"hello":1}\n')).toMatch(/not a simulator trace/);
    expect(refused('PNG\u0000\n')).toMatch(/not a simulator trace: its first line is not JSON/);
  });

  it('term runs reuse the shared prefix and follow a truncated, overwritten log', () => {
    const log = (terms: number[]) => (i: number) => terms[i - 1];
    const a = termRuns(undefined, 0, 5, log([1, 1, 2, 2, 2]));
    expect(a).toEqual([
      [1, 1],
      [3, 2],
    ]);
    const b = termRuns({ runs: a, last: 5 }, 0, 7, log([1, 1, 2, 2, 2, 3, 3]));
    expect(b).toEqual([
      [1, 1],
      [3, 2],
      [6, 3],
    ]);
    // Index 4 onwards overwritten by term 4; a snapshot at 2 cuts the front.
    const c = termRuns({ runs: b, last: 7 }, 2, 6, log([1, 1, 2, 4, 4, 4]));
    expect(c).toEqual([
      [3, 2],
      [4, 4],
    ]);
  });
});
