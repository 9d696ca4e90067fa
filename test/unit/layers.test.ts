// The folder tree is the architecture, and no arrow runs back up (README, "Architecture in a paragraph"): the
// machines know no host, raft/ knows nothing of chat, observability and the web pages import no server,
// and production code imports no test double. This reads every relative import of machines/ and src/
// and fails on an import that crosses a forbidden arrow (type-only imports included: they still tie
// the lower layer's meaning to the upper one).
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/** The layer of a file: `machines`, `test`, or `src/<folder>` (`src` for files at its top). */
function layerOf(file: string): string {
  const parts = relative(root, file).split('/');
  if (parts[0] !== 'src') return parts[0];
  return parts.length > 2 ? `src/${parts[1]}` : 'src';
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import (static, dynamic, re-export) of `file`, as the layer it lands in. */
function importedLayers(file: string, text = readFileSync(file, 'utf8')): { spec: string; layer: string }[] {
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((spec) => ({ spec, layer: layerOf(resolve(dirname(file), spec)) }));
}

/** Layer → the layers it must never import. */
const FORBIDDEN: Record<string, string[]> = {
  // Pure machines: no host code at all.
  machines: ['src', 'test'],
  // Raft knows nothing of chat, nor of who serves or shows it.
  'src/raft': ['src/chat', 'src/server', 'src/web', 'src/observability', 'src/client', 'src/bench'],
  'src/chat': ['src/server', 'src/web', 'src/observability', 'src/client', 'src/bench'],
  // Observability (metrics, inspector, /cluster) reads the node; the server composes it, not the reverse.
  'src/observability': ['src/server', 'src/bench'],
  'src/web': ['src/server', 'src/bench'],
};

describe('layers', () => {
  const files = [...sources(join(root, 'machines')), ...sources(join(root, 'src'))];

  it('finds the sources it checks (a moved tree must not make this pass on nothing)', () => {
    const layers = new Set(files.map(layerOf));
    for (const l of Object.keys(FORBIDDEN)) expect(layers, l).toContain(l);
    expect(files.length).toBeGreaterThan(100);
  });

  it('no import runs back up, and production code imports nothing from test/', () => {
    const crossings: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      const banned = [...(FORBIDDEN[from] ?? []), 'test'];
      for (const { spec, layer } of importedLayers(file)) {
        if (banned.includes(layer)) crossings.push(`${relative(root, file)} imports ${spec} (${layer})`);
      }
    }
    expect(crossings).toEqual([]);
  });

  it('reads every form of import (the check can fail)', () => {
    const probe = join(root, 'src/raft/probe.ts');
    const text = [
      "import type { Launcher } from '../server/launcher-link.js';",
      "import { ChatStore } from '../chat/store.js';",
      "export { ReplicaMetrics } from '../web/metrics.js';",
      "const m = await import('../bench/main.js');",
      "import '../../test/support/fake-replica.js';",
      "import { replicaMachine } from '../../machines/replica/replica.machine.js';",
    ].join('\n');
    expect(importedLayers(probe, text).map((i) => i.layer)).toEqual([
      'src/server',
      'src/chat',
      'src/web',
      'src/bench',
      'test',
      'machines',
    ]);
  });
});
