// The chart dialog's server side: each machine's active state for the lit nodes, and the generated
// diagrams served under /cluster/charts/ (only the six known names).
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChartNode, chartRoutes, chartStatesOf, chatStateFor } from '../../src/web/charts.js';
import { type HttpServer, startHttpServer } from '../../src/web/http-server.js';
import { FakeChatApi } from './web-fake-api.js';

function fakeNode(role: string, leaderId: string | null, value: unknown, replication?: unknown): ChartNode {
  return {
    status: () => ({ id: 'n1', role, leaderId }),
    actor: {
      getSnapshot: () => ({
        value,
        children:
          replication === undefined ? {} : { replication: { getSnapshot: () => ({ value: replication }) } },
      }),
    },
  };
}

describe('chart states', () => {
  it("runs the chat machine's own guards on the replica's role", () => {
    expect(chatStateFor('n1', 'leader', 'n1')).toBe('leader');
    expect(chatStateFor('n1', 'follower', 'n2')).toBe('follower');
    expect(chatStateFor('n1', 'follower', null)).toBe('leaderless');
    expect(chatStateFor('n1', 'candidate', null)).toBe('leaderless');
  });

  it('reads the replica state, and the replication actor only while leading', () => {
    const leader = fakeNode(
      'leader',
      'n1',
      { leader: 'active' },
      { heartbeats: 'waiting', quorum: 'watching' },
    );
    expect(chartStatesOf(leader)).toEqual({
      replica: 'leader.active',
      replication: 'heartbeats.waiting,quorum.watching',
      chat: 'leader',
    });
    expect(chartStatesOf(fakeNode('follower', 'n2', 'preCandidate'))).toEqual({
      replica: 'preCandidate',
      replication: null,
      chat: 'follower',
    });
    const notStarted: ChartNode = {
      status: () => ({ id: 'n1', role: 'follower', leaderId: null }),
      actor: {
        getSnapshot: () => {
          throw new Error('not started');
        },
      },
    };
    expect(chartStatesOf(notStarted)).toEqual({ replica: 'stopped', replication: null, chat: 'leaderless' });
  });
});

describe('/cluster/charts/', () => {
  let http: HttpServer | undefined;
  afterEach(async () => {
    await http?.close();
    http = undefined;
  });

  it('serves the reference and overview SVG of each machine, and nothing else', async () => {
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      gateway: new FakeChatApi().asApi(),
      logger: (await import('pino')).default({ level: 'silent' }),
      extraRoutes: chartRoutes(),
    });
    const base = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}/cluster/charts`;
    const diagrams = join(import.meta.dirname, '..', '..', 'diagrams');
    for (const name of ['replica', 'replication', 'chat']) {
      for (const file of [`${name}.svg`, `${name}.overview.svg`]) {
        const res = await fetch(`${base}/${file}`);
        expect(res.status, file).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/svg+xml');
        expect(await res.text()).toBe(readFileSync(join(diagrams, file), 'utf8'));
      }
    }
    for (const bad of ['replica.dot', '..%2Fpackage.json', 'README.md', 'x.svg']) {
      const res = await fetch(`${base}/${bad}`);
      expect(res.status, bad).toBe(404);
      expect(await res.text()).toContain('No chart');
    }
    expect((await fetch(`${base}/replica.svg`, { method: 'POST' })).status).toBe(405);
  });
});
