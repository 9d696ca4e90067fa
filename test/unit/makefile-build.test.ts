// `make build` is incremental: it runs the build when a source, proto, tsconfig or dependency is newer
// than the dist stamp, and does nothing otherwise (so `make run-client` starts at once). Checked on a
// copy of the Makefile in a scratch tree, with a stand-in `npm` on PATH that records its calls.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('make build', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds when an input is newer than the stamp, and only then', () => {
    dir = mkdtempSync(join(tmpdir(), 'qc-make-'));
    const d = dir;
    copyFileSync(join(root, 'Makefile'), join(d, 'Makefile'));
    for (const sub of ['src', 'machines', 'proto', 'scripts', 'node_modules', 'bin', 'fake'])
      mkdirSync(join(d, sub));
    const files = [
      'src/a.ts',
      'machines/m.ts',
      'proto/x.proto',
      'tsconfig.json',
      'package.json',
      'package-lock.json',
      'scripts/copy-assets.mjs',
    ];
    const old = new Date(Date.now() - 3_600_000);
    for (const f of files) {
      writeFileSync(join(d, f), '');
      utimesSync(join(d, f), old, old);
    }
    writeFileSync(join(d, 'node_modules/.package-lock.json'), '');
    utimesSync(join(d, 'node_modules/.package-lock.json'), old, old);
    const log = join(d, 'npm.log');
    // The stand-in npm: records the call and makes dist/ as the real build would.
    writeFileSync(join(d, 'fake/npm'), `#!/bin/sh\necho "$@" >> ${log}\nmkdir -p dist\n`);
    chmodSync(join(d, 'fake/npm'), 0o755);
    const make = (target: string) =>
      execFileSync('make', ['--no-print-directory', target], {
        cwd: d,
        // Not the outer make's jobserver when this runs under `make test`.
        env: {
          ...process.env,
          PATH: `${join(d, 'fake')}:${process.env.PATH}`,
          MAKEFLAGS: '',
          MFLAGS: '',
          MAKELEVEL: '',
        },
        encoding: 'utf8',
        timeout: 120_000,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const builds = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length;

    const at = (f: string, secondsAgo: number) => {
      const t = new Date(Date.now() - secondsAgo * 1000);
      utimesSync(join(d, f), t, t);
    };
    make('build');
    expect(builds()).toBe(1);
    at('dist/.build-stamp', 1800); // still newer than every input
    make('build');
    expect(builds()).toBe(1); // nothing changed: nothing to do
    for (const f of ['src/a.ts', 'proto/x.proto', 'tsconfig.json', 'node_modules/.package-lock.json']) {
      at(f, 900); // newer than the stamp, and the only one
      const before = builds();
      make('build');
      expect(builds(), `after changing ${f}`).toBe(before + 1);
      at(f, 3600);
      at('dist/.build-stamp', 1800);
      make('build');
      expect(builds(), `nothing changed after ${f}`).toBe(before + 1);
    }
    expect(readFileSync(log, 'utf8').split('\n')[0]).toBe('run --silent build');
  }, 600_000);
});
