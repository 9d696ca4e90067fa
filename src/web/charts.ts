// The chart dialog's server side: which state each of a replica's three machines is in (for the lit
// nodes), and the generated diagrams it draws (diagrams/<machine>.svg and <machine>.overview.svg,
// committed by `make diagrams`), served under /cluster/charts/.
//
// The replica's state is its actor's; the replication actor's is the leader's invoked child (none
// unless leading). The chat router's actor lives in the server, out of reach here, but its state is a
// function of the last role change alone (every roleChanged picks leader, follower or leaderless by
// its guards), so the chat machine itself is run on the replica's current role: the same guards.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { initialTransition, transition } from 'xstate';
import { chatMachine } from '../../machines/chat/chat.machine.js';
import type { Role } from '../../machines/protocol.js';
import type { RouteHandler, Routes } from './http-server.js';
import { stateName } from './inspector.js';

/** Active states, dotted (parallel regions joined by `,`), per machine. */
export interface ChartStates {
  replica: string;
  /** Only while this replica leads. */
  replication: string | null;
  chat: string;
}

/** The parts of a RaftNode read here. */
export interface ChartNode {
  status(): { id: string; role: string; leaderId: string | null };
  readonly actor: {
    getSnapshot(): { value: unknown; children?: Record<string, { getSnapshot(): unknown } | undefined> };
  };
}

let lastChat: { key: string; state: string } | null = null;

/**
 * The chat machine's state after a role change to `role` (its guards decide). A pure function of its
 * arguments, and running the machine costs about half a millisecond, so the last answer is kept.
 */
export function chatStateFor(id: string, role: string, leaderId: string | null): string {
  const key = JSON.stringify([id, role, leaderId]);
  if (lastChat?.key === key) return lastChat.state;
  const [start] = initialTransition(chatMachine, { id, leaderWaitMs: 1000 });
  const [next] = transition(chatMachine, start, {
    type: 'roleChanged',
    role: role as Role,
    term: 0,
    leaderId,
  });
  lastChat = { key, state: stateName(next.value) };
  return lastChat.state;
}

export function chartStatesOf(node: ChartNode): ChartStates {
  const s = node.status();
  let replica = 'stopped';
  let replication: string | null = null;
  try {
    const snap = node.actor.getSnapshot();
    replica = stateName(snap.value);
    const child = snap.children?.replication?.getSnapshot() as { value?: unknown } | undefined;
    if (child?.value !== undefined) replication = stateName(child.value);
  } catch {
    // Not started yet.
  }
  return { replica, replication, chat: chatStateFor(s.id, s.role, s.leaderId) };
}

export const CHART_MACHINES = ['replica', 'replication', 'chat'] as const;

/** diagrams/ from src/web/ or from dist/src/web/. */
export function defaultDiagramDirs(): string[] {
  return [
    fileURLToPath(new URL('../../diagrams/', import.meta.url)),
    fileURLToPath(new URL('../../../diagrams/', import.meta.url)),
  ];
}

/**
 * GET /cluster/charts/<machine>.svg (reference) and /cluster/charts/<machine>.overview.svg. Only those
 * six names: the path never reaches the file system otherwise.
 */
export function chartRoutes(dirs: string[] = defaultDiagramDirs()): Routes {
  const names = new Set(CHART_MACHINES.flatMap((m) => [`${m}.svg`, `${m}.overview.svg`]));
  const cache = new Map<string, Promise<Buffer | null>>();
  const load = (name: string) => {
    let body = cache.get(name);
    if (!body) {
      body = (async () => {
        for (const d of dirs) {
          const b = await readFile(`${d}${name}`).catch(() => null);
          if (b) return b;
        }
        return null;
      })();
      cache.set(name, body);
    }
    return body;
  };
  const handler: RouteHandler = async (req, res, url) => {
    const name = url.pathname.slice('/cluster/charts/'.length);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET' });
      res.end('method not allowed\n');
      return;
    }
    const body = names.has(name) ? await load(name) : null;
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(
        names.has(name)
          ? `diagrams/${name} is missing (make diagrams).\n`
          : `No chart ${name}; there are: ${[...names].join(', ')}.\n`,
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  return { '/cluster/charts/*': handler };
}
