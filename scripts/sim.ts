// `make sim SEEDS=N`: run N seeded simulations (in parallel worker processes), print every failure
// with its seed and trace, and a summary line. `make sim SEED=123` replays one seed verbosely.
// Env: SEEDS (default 300), START (first seed, default 1), JOBS (processes, default: CPU count),
// SEED (replay one), TRACE (trace lines per failure, default 60), PROFILE (standard | harsh),
// LYING_FSYNC (probability that an fsync lies: a broken disk, to see what a failure looks like).
// Even seeds run with snapshots and compaction (see snapshotsForSeed in src/raft/sim/run-seed.ts).

import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  PROFILES,
  type RunOptions,
  formatFailure,
  runSeed,
  snapshotsForSeed,
} from '../src/raft/sim/run-seed.js';
import type { SimResult } from '../src/raft/sim/simulation.js';

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
  return lie > 0 ? { ...p, lyingFsyncRate: lie } : p;
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
    try {
      r = await runSeed(seed, { snapshots: snapshotsForSeed(seed), ...profile() });
    } catch (e) {
      report.failures.push(`seed ${seed} FAILED: the simulator threw: ${e instanceof Error ? e.stack : e}`);
      report.seeds++;
      continue;
    }
    report.seeds++;
    report.steps += r.steps;
    report.simulatedMs += r.simulatedMs;
    const env = ['PROFILE', 'LYING_FSYNC']
      .filter((k) => process.env[k] && process.env[k] !== 'standard')
      .map((k) => `${k}=${process.env[k]}`)
      .join(' ');
    if (!r.ok) report.failures.push(formatFailure(r, traceLines, env));
  }
  const cpu = process.cpuUsage();
  report.cpuMs = (cpu.user + cpu.system) / 1000;
  return report;
}

async function replay(seed: number): Promise<number> {
  const started = performance.now();
  const r = await runSeed(seed, {
    snapshots: snapshotsForSeed(seed),
    ...profile(),
    verbose: (line) => console.log(line),
    traceSize: 1,
  });
  const wall = (performance.now() - started) / 1000;
  console.log('');
  console.log(
    `seed ${seed}: ${r.ok ? 'ok' : `FAILED: ${r.failure}`}; ${r.steps} events, ${r.simulatedMs.toFixed(0)} simulated ms, ${wall.toFixed(2)} s wall`,
  );
  console.log(`stats: ${JSON.stringify(r.stats)}`);
  return r.ok ? 0 : 1;
}

async function main(): Promise<number> {
  const traceLines = envInt('TRACE', 60);
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
  return total.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
