// The overview diagrams: roles and main transitions in plain words, the higher-term rule drawn once;
// and the reference diagrams' layout: no label overlaps another text, no edge runs through a label.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import { chartOf } from '../../src/diagrams/chart.js';
import { MACHINES, generateDiagrams } from '../../src/diagrams/index.js';
import { OVERVIEWS, overviewOf } from '../../src/diagrams/overview.js';
import { helveticaWidths, layoutProblems, parseSvg } from './svg-layout.js';

const HIGHER_TERM = 'a message with a higher term';
const dir = join(import.meta.dirname, '..', '..', 'diagrams');

describe('overview diagrams', () => {
  it('the replica overview draws "a message with a higher term makes you a follower" once, from any role', () => {
    const ov = overviewOf(chartOf(replicaMachine), OVERVIEWS.replica!);
    const higher = ov.edges.filter((e) => e.labels.includes(HIGHER_TERM));
    expect(higher).toHaveLength(1);
    expect(higher[0]).toMatchObject({ source: null, target: 'follower', labels: [HIGHER_TERM] });
    // It stands for every Raft message, in every role.
    expect(higher[0]!.triggers).toEqual(
      expect.arrayContaining(['AppendEntries', 'RequestVote', 'RequestVoteResponse', 'TimeoutNow']),
    );
    expect(ov.any).toEqual({
      label: 'any role',
      sources: ['follower', 'learner', 'preCandidate', 'candidate', 'leader'],
    });
    // The roles, and the main transitions between them in plain words.
    expect(ov.states.map((s) => s.path)).toEqual([
      'follower',
      'learner',
      'preCandidate',
      'candidate',
      'leader',
    ]);
    const edge = (s: string, t: string) => ov.edges.find((e) => e.source === s && e.target === t)?.labels;
    expect(edge('follower', 'preCandidate')).toEqual(['election timeout']);
    expect(edge('preCandidate', 'candidate')).toContain('pre-vote won');
    expect(edge('candidate', 'leader')).toEqual(['election won']);
    expect(edge('leader', 'follower')).toContain('quorum lost');
    // No event type names in the labels.
    for (const e of ov.edges) for (const l of e.labels) expect(l).not.toMatch(/[A-Z]|\./);
  });

  it('the generated replica overview SVG has that edge once, with one label', async () => {
    const files = await generateDiagrams();
    const svg = files.get('replica.overview.svg')!;
    expect(svg.split(HIGHER_TERM)).toHaveLength(2);
    // The reference, for contrast, has the rule once per role.
    expect(files.get('replica.svg')!.match(/\[mustAdoptTerm\]/g)!.length).toBeGreaterThanOrEqual(5);
  });

  it('every machine has an overview, and every overview edge has a label', () => {
    for (const { name, machine, internal } of MACHINES) {
      const spec = OVERVIEWS[name];
      expect(spec, name).toBeDefined();
      const ov = overviewOf(chartOf(machine, internal), spec!);
      expect(ov.edges.length, name).toBeGreaterThan(0);
      for (const e of ov.edges) expect(e.labels.length).toBeGreaterThan(0);
    }
  });
});

describe('diagram layout', () => {
  let widths: Map<string, number>;
  beforeAll(async () => {
    widths = await helveticaWidths();
  });

  it('reads label boxes and edges from an SVG (the check can see an overlap)', () => {
    // Two labels at the same spot, and an edge through one of them.
    const svg = [
      '<g id="edge1" class="edge"><title>a-&gt;b</title><path d="M0,0C10,0 20,0 30,0"/>',
      '<text text-anchor="middle" x="50" y="-10" font-size="10.00">first label</text></g>',
      '<g id="edge2" class="edge"><title>c-&gt;d</title><path d="M40,-12C45,-12 55,-12 60,-12"/>',
      '<text text-anchor="middle" x="52" y="-9" font-size="10.00">second label</text></g>',
    ].join('\n');
    expect(parseSvg(svg, widths).edges.map((e) => e.title)).toEqual(['a->b', 'c->d']);
    const problems = layoutProblems(svg, widths);
    expect(problems.some((p) => p.includes('overlaps'))).toBe(true);
    expect(problems.some((p) => p.includes('runs through the label of a->b'))).toBe(true);
  });

  for (const { name } of MACHINES) {
    for (const file of [`${name}.svg`, `${name}.overview.svg`]) {
      it(`${file}: no label overlaps another text, and no edge runs through a label`, () => {
        const svg = readFileSync(join(dir, file), 'utf8');
        const { texts, edges } = parseSvg(svg, widths);
        expect(texts.length).toBeGreaterThan(3);
        expect(edges.length).toBeGreaterThan(0);
        expect(layoutProblems(svg, widths)).toEqual([]);
      });
    }
  }
});
