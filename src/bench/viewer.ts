// The bench's /cluster viewer (issue 12, cost): what a browser tab on /cluster costs the replicas is one
// open /cluster/events stream per replica, read as it comes. Opening these switches every replica's
// inspector on (the XState observer and the transport tap), so a load phase with them open measures the
// inspector's cost against a phase without.
import * as http from 'node:http';

export interface Viewers {
  /** Bytes of events received so far (proof the streams flowed). */
  bytes(): number;
  /** Frames of each kind received (`traffic`, `status`, `transition`, `snapshot`). */
  frames(): Record<string, number>;
  close(): void;
}

/** Opens /cluster/events on each base URL (`http://host:port`) and reads it until closed. */
export function openViewers(bases: string[]): Viewers {
  let bytes = 0;
  const frames: Record<string, number> = {};
  const requests = bases.map((base) => {
    const req = http.get(`${base}/cluster/events`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        bytes += chunk.length;
        for (const m of chunk.matchAll(/^event: (\w+)$/gm)) frames[m[1]] = (frames[m[1]] ?? 0) + 1;
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    return req;
  });
  return {
    bytes: () => bytes,
    frames: () => ({ ...frames }),
    close: () => {
      for (const r of requests) r.destroy();
    },
  };
}
