// The IPC link between `quorum-chat cluster` (the local launcher, src/server/local-cluster.ts) and the
// replicas it supervises. Only the launcher owns the replicas' processes, so the /cluster page's
// "restart" and "start" buttons ask it, through the replica serving the request, to kill -9 a replica
// and start it again from its data dir (or start one that is down). A server started by hand has no
// launcher, and then the page offers no such button.

/** A replica asks its launcher to restart (or start) the replica `id`. */
export interface LauncherRequest {
  type: 'qc-launcher-request';
  requestId: number;
  action: 'restart';
  id: string;
}

export interface LauncherReply {
  type: 'qc-launcher-reply';
  requestId: number;
  ok: boolean;
  message: string;
}

export function isLauncherRequest(m: unknown): m is LauncherRequest {
  const r = m as Partial<LauncherRequest> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.type === 'qc-launcher-request' &&
    typeof r.requestId === 'number' &&
    r.action === 'restart' &&
    typeof r.id === 'string'
  );
}

function isLauncherReply(m: unknown): m is LauncherReply {
  const r = m as Partial<LauncherReply> | null;
  return (
    typeof r === 'object' && r !== null && r.type === 'qc-launcher-reply' && typeof r.requestId === 'number'
  );
}

/** What a replica can ask its launcher. */
export interface Launcher {
  /** Kill -9 the replica `id` and start it again (or start it if it is down). Resolves to a sentence;
   *  rejects with one when the launcher refuses or does not answer. */
  restart(id: string): Promise<string>;
}

/** The slice of `process` the link uses (a fake in tests). */
export interface IpcProcess {
  connected?: boolean;
  send?: (message: unknown) => boolean;
  on(event: 'message', listener: (m: unknown) => void): unknown;
  off(event: 'message', listener: (m: unknown) => void): unknown;
  channel?: { unref(): void } | null;
}

/**
 * The launcher this process runs under, or undefined when it was not started by one. Env
 * QC_LAUNCHER=1 marks a launcher's IPC channel (a process may have one for other reasons).
 */
export function launcherOf(
  proc: IpcProcess = process,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 3000,
): Launcher | undefined {
  if (env.QC_LAUNCHER !== '1' || !proc.send || !proc.connected) return undefined;
  // The channel must not keep a stopping replica alive; a listener refs it again only while a request
  // is pending.
  proc.channel?.unref();
  return new IpcLauncher(proc, timeoutMs);
}

class IpcLauncher implements Launcher {
  private next = 1;
  private readonly pending = new Map<number, (reply: LauncherReply) => void>();
  private readonly onMessage = (m: unknown) => {
    if (!isLauncherReply(m)) return;
    this.pending.get(m.requestId)?.(m);
  };

  constructor(
    private readonly proc: IpcProcess,
    private readonly timeoutMs: number,
  ) {}

  restart(id: string): Promise<string> {
    if (!this.proc.connected || !this.proc.send) return Promise.reject(new Error('the launcher is gone'));
    const requestId = this.next++;
    if (this.pending.size === 0) this.proc.on('message', this.onMessage);
    return new Promise<string>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.pending.delete(requestId);
        if (this.pending.size === 0) {
          this.proc.off('message', this.onMessage);
          this.proc.channel?.unref();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the launcher did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(requestId, (reply) => {
        done();
        if (reply.ok) resolve(reply.message);
        else reject(new Error(reply.message));
      });
      const request: LauncherRequest = { type: 'qc-launcher-request', requestId, action: 'restart', id };
      try {
        this.proc.send?.(request);
      } catch (err) {
        done();
        reject(err as Error);
      }
    });
  }
}
