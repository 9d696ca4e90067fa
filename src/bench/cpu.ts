// CPU time the replicas spent, read from /proc/<pid>/stat (user + system, every thread). On a shared
// machine wall-clock throughput moves with the other load, but the CPU a replica burns per operation
// barely does: the bench reports it per phase so that runs can be compared. Linux only; elsewhere (or
// for a process that is gone) the figure is undefined.
import * as fs from 'node:fs';

/** Clock ticks per second of utime/stime (USER_HZ, 100 on every Linux build that matters). */
const USER_HZ = 100;

/** CPU ms (user + system) used so far by the process `pid`, or undefined when it cannot be read. */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / USER_HZ;
}

/** The summed CPU ms of `pids`, or undefined when any of them cannot be read. */
export function totalCpuMs(pids: number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const ms = processCpuMs(pid);
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}

/** CPU figures of a bench phase, per successful operation. */
export interface CpuPerOp {
  /**
   * CPU ms the replicas spent (all of them, from the phase's start to the end of its drain) per
   * successful operation. Steadier than ops/s on a shared machine.
   */
  serverCpuMsPerOp: number;
  /** The same for the busiest single replica (in a leader-only phase: the leader). */
  busiestReplicaCpuMsPerOp: number;
  /**
   * CPU ms the bench's own process (the clients: gRPC calls, their encoding, the closed loops) spent
   * per successful operation over the same interval. It runs on the same cores as the replicas.
   */
  driverCpuMsPerOp: number;
  /**
   * Operations per second at which the machine runs out of CPU at these costs: the lower of
   * cores x 1000 / (replicas' + driver's ms per op), since everything shares the cores, and
   * 1000 / the busiest replica's ms per op, since a replica does its work on one thread.
   */
  cpuCeilingPerSecond: number;
}

/**
 * The CPU figures of a phase from each replica's CPU ms before and after it, the driver's CPU ms over
 * it and its successful operations; none when a replica could not be read or nothing succeeded.
 */
export function cpuPerOp(
  before: (number | undefined)[],
  after: (number | undefined)[],
  driverMs: number,
  ok: number,
  cores: number,
): Partial<CpuPerOp> {
  const used: number[] = [];
  for (const [i, b] of before.entries()) {
    const a = after[i];
    if (a === undefined || b === undefined) return {};
    used.push(a - b);
  }
  if (ok === 0 || used.length === 0) return {};
  const per = (ms: number) => Math.round((ms / ok) * 1000) / 1000;
  const server = per(used.reduce((s, ms) => s + ms, 0));
  const busiest = per(Math.max(...used));
  const driver = per(driverMs);
  const shared = (cores * 1000) / (server + driver);
  return {
    serverCpuMsPerOp: server,
    busiestReplicaCpuMsPerOp: busiest,
    driverCpuMsPerOp: driver,
    cpuCeilingPerSecond: Math.round(busiest > 0 ? Math.min(shared, 1000 / busiest) : shared),
  };
}
