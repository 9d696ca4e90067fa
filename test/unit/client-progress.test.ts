// The backup's progress on stderr: a bar redrawn in place (at most ten times a second, always the last
// state) on a terminal; a plain line at each quarter otherwise.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Progress, formatBytes, progressBar } from '../../src/client/progress.js';

function sink(tty: boolean) {
  const out: string[] = [];
  const w = new Writable({
    write(chunk, _enc, done) {
      out.push(String(chunk));
      done();
    },
  }) as Writable & { isTTY?: boolean };
  w.isTTY = tty;
  return { w, out };
}

describe('progress', () => {
  it('formats sizes and the bar', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(64 * 1024)).toBe('64.0 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(progressBar(50, 100)).toBe(`[${'#'.repeat(15)}${'.'.repeat(15)}]  50%  50 B / 100 B`);
    expect(progressBar(2048, undefined)).toBe('2.0 KiB');
  });

  it('on a terminal redraws one line in place, throttled, and always draws the end', () => {
    const { w, out } = sink(true);
    let now = 0;
    const p = new Progress(w, 'backup', () => now);
    p.update(0, 100);
    now = 50;
    p.update(10, 100); // within 100 ms of the last draw: skipped
    now = 200;
    p.update(60, 100);
    now = 210;
    p.update(100, 100); // the end is drawn at once
    p.done();
    expect(out.length, JSON.stringify(out)).toBe(4);
    expect(out.slice(0, 3).every((s) => s.startsWith('\rbackup ['))).toBe(true);
    expect(out[2]).toContain('100%');
    expect(out[3]).toBe('\n');
  });

  it('elsewhere prints a plain line at each quarter', () => {
    const { w, out } = sink(false);
    const p = new Progress(w, 'backup');
    for (let b = 0; b <= 100; b += 5) p.update(b, 100);
    p.done();
    expect(out.map((s) => /(\d+)%/.exec(s)?.[1])).toEqual(['0', '25', '50', '75', '100']);
    expect(out.every((s) => s.endsWith('\n') && !s.includes('\r'))).toBe(true);
  });
});
