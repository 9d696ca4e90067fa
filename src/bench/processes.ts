// Stopping the bench's own child processes (etcd members, CPU hogs): by pid, never by name.
import type { ChildProcess } from 'node:child_process';

/** SIGKILL each process that is still running and resolve once every one of them has exited. */
export async function killAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          if (p.pid) process.kill(p.pid, 'SIGKILL');
        }),
    ),
  );
}
