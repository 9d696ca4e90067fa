// `make sim SEEDS=N`: run N seeded simulations (in parallel worker processes), print every failure
// with its seed and trace, and a summary line. `make sim SEED=123` replays one seed verbosely.
// Every failing seed is run once more with a recorder and leaves a trace file for the /cluster/replay
// page (the simulation is deterministic, so the second run is the same run); TRACE=1 records every
// seed run. Env: SEEDS (default 300), START (first seed, default 1), JOBS (processes, default: CPU
// count), SEED (replay one), TRACE (1: a trace file for every seed, not only the failing ones),
// TRACE_DIR (default sim-traces), TRACE_LINES (trace lines printed per failure, default 60),
// PROFILE (standard | harsh), LYING_FSYNC (probability that an fsync lies: a broken disk, to see what
// a failure looks like), QC_SIM_PLANTED_BUG (test-only: vote-twice | commit-without-quorum, a
// replica broken on purpose, see src/raft/sim/planted-bugs.ts).
// Even seeds run with snapshots and compaction (see snapshotsForSeed in src/raft/sim/run-seed.ts).

import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLANTED_BUGS, type PlantedBug, isPlantedBug } from '../src/raft/sim/planted-bugs.js';
import {
  PROFILES,
  type RunOptions,
  formatFailure,
  runSeed,
  snapshotsForSeed,
} from '../src/raft/sim/run-seed.js';
import type { SimResult } from '../src/raft/sim/simulation.js';
import { DEFAULT_TRACE_DIR, runSeedToFile } from '../src/raft/sim/trace-file.js';

interface WorkerReport {
  seeds: number;
  failures: string[];
  steps: number;
  simulatedMs: number;
  /** CPU time (user + system) the worker used: on a busy machine wall time says little. */
  cpuMs: number;
}

function profile(): RunOptions {
  const name = process.env.PROFILE || 'standard';
  const p = PROFILES[name];
  if (!p) {
    console.error(`PROFILE must be one of ${Object.keys(PROFILES).join(', ')}, got ${name}`);
    process.exit(2);
  }
  const lie = Number(process.env.LYING_FSYNC ?? 0);
  const bug = plantedBug();
  return { ...p, ...(lie > 0 ? { lyingFsyncRate: lie } : {}), ...(bug ? { plantedBug: bug } : {}) };
}

/** Test-only: a replica broken on purpose (planted-bugs.ts), to see a red seed. */
function plantedBug(): PlantedBug | undefined {
  const name = process.env.QC_SIM_PLANTED_BUG;
  if (name === undefined || name === '') return undefined;
  if (!isPlantedBug(name)) {
    console.error(`QC_SIM_PLANTED_BUG must be one of ${PLANTED_BUGS.join(', ')}, got ${name}`);
    process.exit(2);
  }
  return name;
}

/** What the failure report prints to replay the run: the env that shaped it. */
function replayEnv(): string {
  return ['PROFILE', 'LYING_FSYNC', 'QC_SIM_PLANTED_BUG']
    .filter((k) => process.env[k] && process.env[k] !== 'standard')
    .map((k) => `${k}=${process.env[k]}`)
    .join(' ');
}

const traceDir = () => process.env.TRACE_DIR || DEFAULT_TRACE_DIR;
const traceAll = () => process.env.TRACE === '1' || process.env.TRACE === 'true';

/**
 * Runs `seed`, recording it when TRACE=1; a failing seed run without a recorder runs again with one
 * (the same run: the seed decides everything) and its trace path goes into the report.
 */
async function runOne(seed: number, extra: RunOptions = {}): Promise<{ r: SimResult; trace?: string }> {
  const options = { snapshots: snapshotsForSeed(seed), ...profile(), ...extra };
  const run = { profile: process.env.PROFILE || 'standard' };
  if (traceAll()) {
    const { result, path } = await runSeedToFile(seed, options, traceDir(), run);
    return { r: result, trace: path };
  }
  const r = await runSeed(seed, options);
  if (r.ok) return { r };
  const again = await runSeedToFile(seed, { ...options, verbose: undefined }, traceDir(), run);
  if (again.result.failure !== r.failure)
    return {
      r,
      trace: `${again.path} (NOT the same run: it ended with ${again.result.failure ?? 'no failure'})`,
    };
  return { r, trace: again.path };
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got ${raw}`);
    process.exit(2);
  }
  return n;
}

async function runRange(from: number, count: number, traceLines: number): Promise<WorkerReport> {
  const report: WorkerReport = { seeds: 0, failures: [], steps: 0, simulatedMs: 0, cpuMs: 0 };
  for (let seed = from; seed < from + count; seed++) {
    let r: SimResult;
    let trace: string | undefined;
    try {
      ({ r, trace } = await runOne(seed));
    } catch (e) {
      report.failures.push(`seed ${seed} FAILED: the simulator threw: ${e instanceof Error ? e.stack : e}`);
      report.seeds++;
      continue;
    }
    report.seeds++;
    report.steps += r.steps;
    report.simulatedMs += r.simulatedMs;
    if (!r.ok)
      report.failures.push(
        `${formatFailure(r, traceLines, replayEnv())}${trace ? `\n  trace file: ${trace}` : ''}`,
      );
  }
  const cpu = process.cpuUsage();
  report.cpuMs = (cpu.user + cpu.system) / 1000;
  return report;
}

async function replay(seed: number): Promise<number> {
  const started = performance.now();
  const { r, trace } = await runOne(seed, { verbose: (line) => console.log(line), traceSize: 1 });
  const wall = (performance.now() - started) / 1000;
  console.log('');
  console.log(
    `seed ${seed}: ${r.ok ? 'ok' : `FAILED: ${r.failure}`}; ${r.steps} events, ${r.simulatedMs.toFixed(0)} simulated ms, ${wall.toFixed(2)} s wall`,
  );
  console.log(`stats: ${JSON.stringify(r.stats)}`);
  if (trace) console.log(`trace file: ${trace}  (open it on any replica's /cluster/replay page)`);
  return r.ok ? 0 : 1;
}

async function main(): Promise<number> {
  const traceLines = envInt('TRACE_LINES', 60);
  if (process.env.SIM_WORKER) {
    const [from, count] = process.env.SIM_WORKER.split(':').map(Number);
    const report = await runRange(from!, count!, traceLines);
    process.send!(report);
    return 0;
  }
  if (process.env.SEED !== undefined && process.env.SEED !== '') return replay(envInt('SEED', 1));

  const seeds = envInt('SEEDS', 300);
  const start = envInt('START', 1);
  const jobs = Math.max(1, Math.min(envInt('JOBS', availableParallelism()), seeds || 1));
  const started = performance.now();
  const self = fileURLToPath(import.meta.url);
  // Interleave chunks so slow seeds spread over the workers.
  const chunk = Math.max(1, Math.min(50, Math.ceil(seeds / (jobs * 4))));
  const ranges: [number, number][] = [];
  for (let s = start; s < start + seeds; s += chunk) ranges.push([s, Math.min(chunk, start + seeds - s)]);
  const total: WorkerReport = { seeds: 0, failures: [], steps: 0, simulatedMs: 0, cpuMs: 0 };

  const runWorker = (from: number, count: number) =>
    new Promise<WorkerReport>((resolve, reject) => {
      const child = fork(self, [], { env: { ...process.env, SIM_WORKER: `${from}:${count}` } });
      let report: WorkerReport | null = null;
      child.on('message', (m) => {
        report = m as WorkerReport;
      });
      child.on('error', reject);
      child.on('exit', (code) => {
        if (report) resolve(report);
        else reject(new Error(`worker for seeds ${from}..${from + count - 1} exited with ${code}`));
      });
    });

  let next = 0;
  const lane = async () => {
    while (next < ranges.length) {
      const [from, count] = ranges[next++]!;
      const r = await runWorker(from, count).catch(
        (e): WorkerReport => ({
          seeds: count,
          failures: [`seeds ${from}..${from + count - 1}: ${e.message}`],
          steps: 0,
          simulatedMs: 0,
          cpuMs: 0,
        }),
      );
      total.seeds += r.seeds;
      total.steps += r.steps;
      total.simulatedMs += r.simulatedMs;
      total.cpuMs += r.cpuMs;
      for (const f of r.failures) {
        total.failures.push(f);
        console.log(f);
        console.log('');
      }
      process.stderr.write(`\r${total.seeds}/${seeds} seeds, ${total.failures.length} failed`);
    }
  };
  await Promise.all(Array.from({ length: jobs }, lane));
  process.stderr.write('\n');
  const wall = (performance.now() - started) / 1000;
  const cpu = total.cpuMs / 1000;
  console.log(
    `sim: ${total.seeds} seeds (${start}..${start + seeds - 1}), ${total.failures.length} failed, ${wall.toFixed(1)} s wall on ${jobs} processes (${cpu.toFixed(1)} s CPU), ${total.steps} simulated events: ${Math.round(total.steps / wall)} events/s wall, ${Math.round(total.steps / Math.max(cpu, 0.001))} events/CPU-s; ${(total.simulatedMs / 1000).toFixed(0)} simulated s`,
  );
  if (traceAll() || total.failures.length > 0)
    console.log(`trace files: ${resolve(traceDir())}  (open one on any replica's /cluster/replay page)`);
  return total.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
