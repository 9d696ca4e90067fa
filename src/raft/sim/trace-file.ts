// Runs one seed with a TraceRecorder writing to a file (`make sim`: a failing seed, or any seed with
// TRACE=1). The lines go out in buffered writes, so a long run is not held in memory; the file is
// written under a temporary name and renamed when complete, so a file with the final name is whole.

import { closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type RunOptions, runSeed } from './run-seed.js';
import type { SimResult } from './simulation.js';
import { TraceRecorder } from './trace-recorder.js';

export const DEFAULT_TRACE_DIR = 'sim-traces';

/** Where seed `seed`'s trace goes: `<dir>/seed-<seed>[-<bug>].jsonl`. */
export function traceFileFor(dir: string, seed: number, plantedBug?: string): string {
  return resolve(join(dir, `seed-${seed}${plantedBug ? `-${plantedBug}` : ''}.jsonl`));
}

export async function runSeedToFile(
  seed: number,
  options: RunOptions,
  dir: string,
  run: Record<string, string | number | boolean> = {},
): Promise<{ result: SimResult; path: string }> {
  mkdirSync(dir, { recursive: true });
  const path = traceFileFor(dir, seed, options.plantedBug);
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w');
  let buffer: string[] = [];
  let size = 0;
  const flush = () => {
    if (buffer.length === 0) return;
    writeSync(fd, buffer.join(''));
    buffer = [];
    size = 0;
  };
  const recorder = new TraceRecorder((line) => {
    buffer.push(line, '\n');
    size += line.length + 1;
    if (size > 1 << 20) flush();
  }, run);
  try {
    const result = await runSeed(seed, { ...options, recorder });
    flush();
    closeSync(fd);
    renameSync(partial, path);
    return { result, path };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
