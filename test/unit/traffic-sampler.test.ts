// The sampler behind the /cluster page's messages in flight: every message counted in the per-link
// rates, a bounded sample drawn (rare kinds kept, frequent ones one per link, kind and interval), and
// a link that drops messages reported broken until it has been quiet for brokenHoldMs.
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../machines/protocol.js';
import { TrafficSampler, kindOf } from '../../src/observability/traffic-sampler.js';
import { termRuns } from '../../src/web/log-runs.js';

const heartbeat = (from: string, to: string, term = 2): RaftMessage => ({
  type: 'AppendEntries',
  from,
  to,
  term,
  prevLogIndex: 5,
  prevLogTerm: 2,
  entries: [],
  leaderCommit: 5,
  readRound: 0,
});
const append = (from: string, to: string): RaftMessage => ({
  ...(heartbeat(from, to) as Extract<RaftMessage, { type: 'AppendEntries' }>),
  entries: [{ index: 6, term: 2, kind: 'command', data: 'x' }],
});
const vote = (from: string, to: string, preVote: boolean): RaftMessage => ({
  type: 'RequestVote',
  from,
  to,
  term: 3,
  lastLogIndex: 5,
  lastLogTerm: 2,
  preVote,
  transfer: false,
});
const voteResponse = (from: string, to: string, granted: boolean): RaftMessage => ({
  type: 'RequestVoteResponse',
  from,
  to,
  term: 3,
  granted,
  preVote: false,
});

describe('message kinds', () => {
  it('tells heartbeats from appends, and votes from pre-votes', () => {
    expect(kindOf(heartbeat('a', 'b'))).toBe('heartbeat');
    expect(kindOf(append('a', 'b'))).toBe('append');
    expect(kindOf(vote('a', 'b', true))).toBe('preVote');
    expect(kindOf(vote('a', 'b', false))).toBe('vote');
    expect(kindOf({ type: 'TimeoutNow', from: 'a', to: 'b', term: 1 })).toBe('timeoutNow');
  });
});

describe('TrafficSampler', () => {
  it('counts every message in the per-link rates but samples frequent kinds once per link and interval', () => {
    const s = new TrafficSampler({ maxSamples: 100 });
    s.flush(0);
    for (let i = 0; i < 5000; i++) {
      s.record(i / 10, heartbeat('a', 'b'), false);
      s.record(i / 10, append('a', 'c'), false);
    }
    const f = s.flush(500);
    expect(f.intervalMs).toBe(500);
    const ab = f.links.find((l) => l.from === 'a' && l.to === 'b');
    expect(ab).toMatchObject({
      perSecond: 10_000,
      dropsPerSecond: 0,
      broken: false,
      kinds: { heartbeat: 10_000 },
    });
    expect(f.links.find((l) => l.to === 'c')?.kinds).toEqual({ append: 10_000 });
    // Two links, one frequent kind each: two samples, the rest skipped.
    expect(f.messages.map((m) => `${m.from}>${m.to}:${m.kind}`)).toEqual(['a>b:heartbeat', 'a>c:append']);
    expect(f.messages[1].entries).toBe(1);
    expect(f.skipped).toBe(9998);
    // The next interval samples again.
    s.record(600, heartbeat('a', 'b'), false);
    expect(s.flush(1000).messages).toHaveLength(1);
  });

  it('keeps every vote, pre-vote and refusal, up to maxSamples', () => {
    const s = new TrafficSampler({ maxSamples: 4 });
    s.flush(0);
    s.record(1, vote('a', 'b', true), false);
    s.record(2, vote('a', 'b', false), false);
    s.record(3, voteResponse('b', 'a', false), false);
    s.record(4, voteResponse('c', 'a', true), false);
    s.record(5, voteResponse('d', 'a', true), false);
    const f = s.flush(100);
    expect(f.messages.map((m) => m.kind)).toEqual(['preVote', 'vote', 'voteResponse', 'voteResponse']);
    expect(f.messages.map((m) => m.ok)).toEqual([undefined, undefined, false, true]);
    expect(f.skipped).toBe(1);
  });

  it('draws a link that drops messages as broken, until it has been quiet for brokenHoldMs', () => {
    const s = new TrafficSampler({ brokenHoldMs: 1000 });
    s.flush(0);
    s.record(10, heartbeat('a', 'b'), true);
    s.record(20, heartbeat('a', 'b'), true);
    s.record(30, heartbeat('a', 'c'), false);
    let f = s.flush(250);
    expect(f.links.find((l) => l.to === 'b')).toMatchObject({
      broken: true,
      perSecond: 0,
      dropsPerSecond: 8,
    });
    expect(f.links.find((l) => l.to === 'c')?.broken).toBe(false);
    // A dropped message is sampled (once per link and interval), marked dropped.
    expect(f.messages.filter((m) => m.dropped)).toHaveLength(1);
    f = s.flush(1000);
    expect(f.links.find((l) => l.to === 'b')?.broken).toBe(true);
    // Healed: messages flow again and the last drop is older than the hold.
    s.record(1100, heartbeat('a', 'b'), false);
    f = s.flush(1250);
    expect(f.links.find((l) => l.to === 'b')).toMatchObject({ broken: false, perSecond: 4 });
  });

  it('forgets links that went quiet, and everything on reset', () => {
    const s = new TrafficSampler({ forgetMs: 1000 });
    s.flush(0);
    s.record(1, heartbeat('a', 'b'), false);
    expect(s.flush(500).links).toHaveLength(1);
    expect(s.flush(2000).links).toHaveLength(0);
    s.record(2001, heartbeat('a', 'b'), false);
    s.reset();
    expect(s.flush(2100)).toMatchObject({ links: [], messages: [], skipped: 0 });
  });
});

describe('termRuns', () => {
  function log(first: number, terms: number[]) {
    return {
      firstIndex: () => first,
      lastIndex: () => first + terms.length - 1,
      termAt: (i: number) => terms[i - first],
    };
  }

  it('turns the log into runs of one term, oldest first', () => {
    expect(termRuns(log(1, [1, 1, 2, 2, 2, 5]))).toEqual([
      { fromIndex: 1, toIndex: 2, term: 1 },
      { fromIndex: 3, toIndex: 5, term: 2 },
      { fromIndex: 6, toIndex: 6, term: 5 },
    ]);
    expect(termRuns(log(11, []))).toEqual([]);
  });

  it('reads a 100,000-entry log with a few lookups, and keeps the newest runs when capped', () => {
    const terms = Array.from({ length: 100_000 }, (_, i) => 1 + Math.floor(i / 25_000));
    let reads = 0;
    const l = log(1, terms);
    const counted = {
      ...l,
      termAt: (i: number) => {
        reads++;
        return l.termAt(i);
      },
    };
    expect(termRuns(counted)).toEqual([
      { fromIndex: 1, toIndex: 25_000, term: 1 },
      { fromIndex: 25_001, toIndex: 50_000, term: 2 },
      { fromIndex: 50_001, toIndex: 75_000, term: 3 },
      { fromIndex: 75_001, toIndex: 100_000, term: 4 },
    ]);
    expect(reads).toBeLessThan(100);
    expect(termRuns(l, 2).map((r) => r.term)).toEqual([3, 4]);
  });
});
