// Issue 13 finding 5: a flood of password guesses must not starve Raft. A 3-replica cluster at the
// production scrypt cost (N = 2^17) takes a closed-loop flood of Logins (distinct unknown names, so every
// admitted one costs a full password check and the failed-login limit does not stop them) on all three
// replicas for a few seconds. The leader runs at most K checks at once and sheds what does not fit in its
// queue, so its event loop stays responsive: the term and the leader do not move, and the event-loop
// delay each replica reports on /metrics stays far below the election timeout. The figures are printed.
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { services } from '../../src/proto.js';
import { unary } from '../../src/server/local-cluster.js';
import { type Harness, Status, codeOf, startCluster } from './harness.js';
import { withReport } from './support/checks.js';

const FLOOD_MS = Number(process.env.QC_FLOOD_MS ?? 6000);
const CALLERS = Number(process.env.QC_FLOOD_CALLERS ?? 24);
/** The server defaults of API.md: heartbeat 50 ms, election timeout 150-300 ms; scrypt at its default. */
const SERVER_ARGS = ['--heartbeat-ms', '50', '--election-timeout-ms', '150-300'];

async function metric(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`/metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

describe('e2e: a login flood does not starve Raft (3 replicas, scrypt N = 2^17)', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.destroy();
  });

  it('the term and the leader do not move; every Login is answered or shed; event-loop delay is reported', async () => {
    h = await startCluster({ size: 3, serverArgs: SERVER_ARGS });
    const c = h;
    await withReport(
      () => h,
      async () => {
        const { ChatService } = services();
        const stubs = c.addresses().map((a) => new ChatService(a, grpc.credentials.createInsecure()));
        const httpPorts = c.ids().map((id) => c.get(id).spec.httpPort as number);
        try {
          // One real account, so the flood also includes known users with wrong passwords.
          await unary(
            stubs[0],
            'Signup',
            { username: 'victim', nickname: 'V', password: 'a good password' },
            {
              deadlineMs: 60_000,
            },
          );
          const before = await c.waitForLeader();
          const counts = new Map<string, number>();
          let end = 0;
          let n = 0;
          const caller = async (k: number) => {
            if (end === 0) end = Date.now() + FLOOD_MS;
            for (let i = 0; i < 100_000 && Date.now() < end; i++) {
              const username = (n++ % 10 === 0 ? 'victim' : `nobody${k}x${i}`).slice(0, 32);
              let code = 'OK';
              try {
                await unary(
                  stubs[(k + i) % stubs.length],
                  'Login',
                  { username, password: `guess ${i}` },
                  {
                    deadlineMs: 5000,
                  },
                );
              } catch (err) {
                code = Status[codeOf(err) ?? Status.UNKNOWN];
              }
              counts.set(code, (counts.get(code) ?? 0) + 1);
            }
          };
          // Sample the lag, the terms and the leaders on every replica while `work` runs.
          const observe = async (work: () => Promise<unknown>) => {
            const seen = { maxLagMs: 0, maxP99Ms: 0, terms: new Set<number>(), leaders: new Set<string>() };
            let sampling = true;
            const sampler = (async () => {
              for (let i = 0; i < 1000 && sampling; i++) {
                for (const port of httpPorts) {
                  seen.maxLagMs = Math.max(
                    seen.maxLagMs,
                    1000 * (await metric(port, 'qc_event_loop_delay_max_seconds')),
                  );
                  seen.maxP99Ms = Math.max(
                    seen.maxP99Ms,
                    1000 * (await metric(port, 'qc_event_loop_delay_p99_seconds')),
                  );
                }
                for (const s of (await c.statuses()).values()) {
                  seen.terms.add(s.term);
                  if (s.leader_id) seen.leaders.add(s.leader_id);
                }
                await new Promise((r) => setTimeout(r, 250));
              }
            })();
            await work();
            sampling = false;
            await sampler;
            return seen;
          };
          const show = (what: string, s: Awaited<ReturnType<typeof observe>>) =>
            `${what}: event-loop delay max ${s.maxLagMs.toFixed(1)} ms, per-second p99 up to ${s.maxP99Ms.toFixed(1)} ms; terms ${[...s.terms].join(',')}; leaders ${[...s.leaders].join(',')}`;
          // The same span without a flood first: what this machine's load alone does to the loop.
          const idle = await observe(() => new Promise((r) => setTimeout(r, FLOOD_MS)));
          const flood = await observe(() =>
            Promise.all(Array.from({ length: CALLERS }, (_, k) => caller(k))),
          );
          const terms = flood.terms;
          const leaders = flood.leaders;
          const after = await c.waitForLeader();
          const leaderPort = c.get(after.node_id).spec.httpPort as number;
          const shed = await metric(leaderPort, 'qc_password_hashes_shed_total');
          const total = [...counts.values()].reduce((a, b) => a + b, 0);
          console.log(
            [
              show('idle (no flood)', idle),
              show(`login flood, ${CALLERS} callers for ${FLOOD_MS} ms`, flood),
              `${total} Logins: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}; ${shed} shed by the leader's hash queue`,
            ].join('\n'),
          );
          expect([...terms]).toEqual([before.term]);
          expect(after.term).toBe(before.term);
          expect(after.node_id).toBe(before.node_id);
          expect([...leaders]).toEqual([before.node_id]);
          // Every Login got the server's answer: checked (UNAUTHENTICATED, OK for the victim), shed at once
          // (RESOURCE_EXHAUSTED), or out of time while queued; never UNAVAILABLE, which would mean the
          // leader was lost or unreachable.
          const allowed = new Set(['OK', 'UNAUTHENTICATED', 'RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']);
          expect([...counts.keys()].filter((k) => !allowed.has(k))).toEqual([]);
          expect(shed).toBeGreaterThan(0);
          // The delay figures are printed, not asserted: on a shared 2-core machine the idle figure alone
          // varies from a few ms to over 100 ms with the load of other processes.
        } finally {
          for (const s of stubs) s.close();
        }
      },
    );
  }, 120_000);
});
