// `make diagrams`: writes diagrams/<machine>.mmd, .dot, .svg and diagrams/README.md from the machine
// definitions (see src/diagrams/). Only files whose content changed are rewritten.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateDiagrams } from '../src/diagrams/index.js';

const dir = join(import.meta.dirname, '..', 'diagrams');
mkdirSync(dir, { recursive: true });
const files = await generateDiagrams();
for (const [name, content] of files) {
  const path = join(dir, name);
  const old = existsSync(path) ? readFileSync(path, 'utf8') : null;
  if (old === content) continue;
  writeFileSync(path, content);
  console.log(`wrote diagrams/${name}`);
}
