// The committed diagrams must be what the generator produces from the machines now.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatMachine } from '../../machines/chat/chat.machine.js';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import { chartOf } from '../../src/diagrams/chart.js';
import { toDot } from '../../src/diagrams/dot.js';
import { MACHINES, generateDiagrams } from '../../src/diagrams/index.js';
import { toMermaid } from '../../src/diagrams/mermaid.js';

const dir = join(import.meta.dirname, '..', '..', 'diagrams');

function committed(name: string): string | null {
  try {
    return readFileSync(join(dir, name), 'utf8');
  } catch {
    return null;
  }
}

describe('diagrams', () => {
  it('committed diagrams are current (otherwise run `make diagrams`)', async () => {
    const files = await generateDiagrams();
    for (const { name } of MACHINES) {
      for (const ext of ['mmd', 'svg']) expect(files.has(`${name}.${ext}`)).toBe(true);
    }
    const stale = [...files].filter(([name, content]) => committed(name) !== content).map(([name]) => name);
    expect(stale, `stale diagrams: ${stale.join(', ')}; run \`make diagrams\` and commit diagrams/`).toEqual(
      [],
    );
  });

  it('generation is deterministic', async () => {
    const a = await generateDiagrams();
    const b = await generateDiagrams();
    expect([...a]).toEqual([...b]);
  });

  it('the replica diagram shows every role, its timers by name, the invoke and the term rule', () => {
    const mmd = toMermaid(chartOf(replicaMachine));
    for (const s of [
      'follower',
      'preCandidate',
      'candidate',
      'leader',
      'learner',
      'leader_active',
      'leader_transferring',
    ]) {
      expect(mmd).toContain(`as ${s}`);
    }
    expect(mmd).toContain('follower --> preCandidate: after electionTimeout [canCampaign]');
    expect(mmd).toContain('candidate --> leader: always [electionWon]');
    expect(mmd).toContain('leader --> follower: replication.quorumLost');
    expect(mmd).toContain('invokes replication');
    expect(mmd).toMatch(/candidate --> follower: .*\[mustAdoptTerm\] \/ adoptTerm, reraise/);
    const dot = toDot(chartOf(replicaMachine));
    expect(dot).toContain('subgraph cluster_leader');
    expect(dot).toContain('lhead=cluster_leader');
  });

  it('the chat diagram shows the routing: propose only in leader, writes forwarded and reads served in follower, wait when leaderless', () => {
    const mmd = toMermaid(chartOf(chatMachine, 'loops'));
    expect(mmd).toContain('leader --> leader: request [isWrite] / propose');
    expect(mmd).toContain('follower --> follower: request [isWrite] / forward');
    expect(mmd).toContain('follower --> follower: request / readIndex');
    expect(mmd).toContain('leaderless --> leaderless: request / buffer');
    expect(mmd).toContain('leaderless --> leaderless: after leaderWait / expireBuffered (reenter)');
    expect(mmd.match(/\/ propose/g)).toHaveLength(1);
  });
});
