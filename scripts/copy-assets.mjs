// Copies non-TypeScript assets (proto files, static web files) next to the compiled output.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const dir of ['src/web/static']) {
  const from = join(root, dir);
  if (existsSync(from)) {
    const to = join(root, 'dist', dir);
    mkdirSync(to, { recursive: true });
    cpSync(from, to, { recursive: true });
  }
}

// The trace-file reader is one module for node (make sim, the tests) and the replay page: its compiled
// form, which imports nothing, is served with the page's files.
const traceFormat = join(root, 'dist/src/raft/sim/trace-format.js');
if (existsSync(traceFormat)) cpSync(traceFormat, join(root, 'dist/src/web/static/trace-format.js'));
