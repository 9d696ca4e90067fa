// The pages' scripts are plain JavaScript that neither tsc nor the unit tests load: a syntax error
// (a `const` that redeclares a parameter slipped past the linter once) would only show as a browser
// test timing out in its set-up. Node parses each one here, in well under a second.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStaticDir } from '../../src/web/static-files.js';

const dir = defaultStaticDir;
const scripts = readdirSync(dir).filter((f) => f.endsWith('.js'));

describe("the pages' scripts", () => {
  it('are there to check', () => {
    expect(scripts).toContain('app.js');
    expect(scripts).toContain('cluster.js');
  });

  it.each(scripts)('%s parses', (file) => {
    const r = spawnSync(process.execPath, ['--check', join(dir, file)], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
