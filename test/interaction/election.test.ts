import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from './harness.js';

let c: Cluster;
afterEach(() => {
  expect(c.errors()).toEqual([]);
  c.stop();
});

describe('elections', () => {
  it('a first election: pre-vote, then vote, then the noop append', () => {
    c = new Cluster({ nodes: [{ id: 'n1', election: [100, 101] }, 'n2', 'n3'], election: [300, 301] });
    c.tick(100);
    expect(c.node('n1').role()).toBe('preCandidate');
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=1 preVote=true last=0/0',
      'n1->n3 RequestVote term=1 preVote=true last=0/0',
    ]);
    expect(c.node('n2').term()).toBe(0);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=1 preVote=true granted=true',
      'n3->n1 RequestVoteResponse term=1 preVote=true granted=true',
    ]);
    expect(c.node('n1').role()).toBe('candidate');
    expect(c.deliver()).toEqual([
      'n1->n2 RequestVote term=1 preVote=false last=0/0',
      'n1->n3 RequestVote term=1 preVote=false last=0/0',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 RequestVoteResponse term=1 preVote=false granted=true',
      'n3->n1 RequestVoteResponse term=1 preVote=false granted=true',
    ]);
    expect(c.node('n1').role()).toBe('leader');
    expect(c.deliver()).toEqual([
      'n1->n2 AppendEntries term=1 prev=0/0 entries=[1/1 noop] commit=0',
      'n1->n3 AppendEntries term=1 prev=0/0 entries=[1/1 noop] commit=0',
    ]);
    expect(c.deliver()).toEqual([
      'n2->n1 AppendEntriesResponse term=1 match=1',
      'n3->n1 AppendEntriesResponse term=1 match=1',
    ]);
    expect(c.node('n1').commitIndex).toBe(1);
  });
});
