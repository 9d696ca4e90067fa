// One seeded simulation run with the standard schedule, plus formatting for reports. This is what
// `make sim` and test/sim run.

import { type PlantedBug, withPlantedBug } from './planted-bugs.js';
import { raftNodeFactory } from './raft-node-host.js';
import { DEFAULT_SNAPSHOTS, type SimOptions, type SimResult, Simulation } from './simulation.js';
import type { TraceRecorder } from './trace-recorder.js';

export type RunOptions = Partial<SimOptions> & {
  /** Records the run as a trace file (trace-recorder.ts); absent: nothing is recorded. */
  recorder?: TraceRecorder;
  /** Test-only: break the replicas on purpose (planted-bugs.ts), so that the seed fails. */
  plantedBug?: PlantedBug;
};

/**
 * Named option sets for `make sim PROFILE=...`: 'standard' (CI) and 'harsh' (more faults, more load,
 * membership changes: voters demoted and promoted, whole members removed and added back).
 */
export const PROFILES: Record<string, RunOptions> = {
  standard: {},
  harsh: {
    clients: 6,
    faultIntervalMs: [50, 400],
    crashCycles: 4,
    membershipChanges: true,
    wholeNodeChanges: true,
    links: { dropRate: 0.1, duplicateRate: 0.1, minLatencyMs: 1, maxLatencyMs: 40, longDelayRate: 0.02 },
  },
};

/**
 * The random seeds (CI and `make sim`) run with snapshots on for even seeds: half the runs compact
 * their logs every 25 entries and catch lagging nodes up through InstallSnapshot (with crashes in the
 * middle of transfers), the other half keep whole logs, so both paths stay covered. Focused tests
 * choose for themselves (runSeed's default is off).
 */
export function snapshotsForSeed(seed: number): SimOptions['snapshots'] {
  return seed % 2 === 0 ? DEFAULT_SNAPSHOTS : false;
}

/**
 * The standard schedule: 5 replicas, 4 clients, 10 s of mixed faults (loss, delay, duplication,
 * symmetric and one-way partitions, leader isolation, at least 2 crash/restart cycles, crashes between
 * a write and its fsync), then 5 s healed and quiet. With a 150-300 ms election timeout that is ~40-60
 * election timeouts of faults.
 */
export async function runSeed(seed: number, options: RunOptions = {}): Promise<SimResult> {
  const { recorder, plantedBug, ...sim } = options;
  let factory = sim.factory ?? raftNodeFactory;
  if (plantedBug) factory = withPlantedBug(plantedBug, factory);
  if (recorder) factory = recorder.wrapFactory(factory);
  const simulation = new Simulation(seed, { ...sim, factory });
  recorder?.attach(simulation, plantedBug ? { plantedBug } : {});
  const result = await simulation.run();
  recorder?.finish(result);
  return result;
}

/** A failed run as a readable report: the seed, what broke, how to replay, the last events. */
export function formatFailure(r: SimResult, traceLines = 60, replayEnv = ''): string {
  const env = replayEnv ? ` ${replayEnv}` : '';
  const lines = [
    `seed ${r.seed} FAILED after ${r.steps} events, ${r.simulatedMs.toFixed(1)} simulated ms`,
    `  ${r.failure}`,
    `  replay: make sim SEED=${r.seed}${env}   (or SEED=${r.seed}${env} npx tsx scripts/sim.ts)`,
    `  last ${Math.min(traceLines, r.trace.length)} events:`,
    ...r.trace.slice(-traceLines).map((l) => `    ${l}`),
  ];
  return lines.join('\n');
}
