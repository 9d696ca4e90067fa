// The diagrams of the machines: which machines, and their generated files (in memory). scripts/diagrams.ts
// writes them to diagrams/; test/unit/diagrams.test.ts checks the committed ones are current.

import type { AnyStateMachine } from 'xstate';
import { chatMachine } from '../../machines/chat/chat.machine.js';
import { replicaMachine } from '../../machines/replica/replica.machine.js';
import { replicationMachine } from '../../machines/replication/replication.machine.js';
import { type Chart, chartOf } from './chart.js';
import { toDot } from './dot.js';
import { toMermaid } from './mermaid.js';
import { toOverviewDot } from './overview-dot.js';
import { OVERVIEWS, overviewOf } from './overview.js';
import { readme } from './readme.js';

export const MACHINES: { name: string; machine: AnyStateMachine; internal: Chart['internal'] }[] = [
  { name: 'replica', machine: replicaMachine, internal: 'notes' },
  { name: 'replication', machine: replicationMachine, internal: 'notes' },
  // The routing is in the chat actor's internal transitions: draw them as edges.
  { name: 'chat', machine: chatMachine, internal: 'loops' },
];

/** Renders DOT to SVG with Graphviz compiled to WebAssembly (no browser, no system Graphviz). */
export async function renderSvg(dot: string): Promise<string> {
  const { instance } = await import('@viz-js/viz');
  const viz = await instance();
  return viz.renderString(dot, { format: 'svg', engine: 'dot' });
}

/** Every generated file: path relative to diagrams/ -> content. Deterministic for a given machine. */
export async function generateDiagrams(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const mermaid: { name: string; text: string }[] = [];
  for (const { name, machine, internal } of MACHINES) {
    const chart = chartOf(machine, internal);
    const mmd = toMermaid(chart);
    mermaid.push({ name, text: mmd });
    files.set(`${name}.mmd`, mmd);
    const dot = toDot(chart);
    files.set(`${name}.dot`, dot);
    files.set(`${name}.svg`, await renderSvg(dot));
    const spec = OVERVIEWS[name];
    if (spec) {
      const overview = toOverviewDot(overviewOf(chart, spec));
      files.set(`${name}.overview.dot`, overview);
      files.set(`${name}.overview.svg`, await renderSvg(overview));
    }
  }
  files.set('README.md', readme(mermaid));
  return files;
}
