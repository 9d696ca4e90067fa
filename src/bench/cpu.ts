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
