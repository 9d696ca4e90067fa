// The /cluster routes of one replica (API.md §3): the page, its chart, this replica's status as JSON
// (with every member's HTTP URL, so the page can open one feed per member), the inspector's event
// stream, and in development mode the controls (stop, pause, cut a link or heal them, transfer leadership, and restart or start
// a replica when a launcher supervises the replicas), which need the cluster secret. Wiring: `{ ...clusterRoutes(opts), '/metrics': metrics.route }` as extraRoutes.
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { RouteHandler, Routes } from './http-server.js';
import type { ReplicaInspector, ReplicaView } from './inspector.js';

/** The replica surface the controls and the status read. */
export interface ClusterViewNode {
  readonly id: string;
  status(): { role: string; config: { members: { id: string; address: string; voter: boolean }[] } };
  transferLeadership(to: string | null): Promise<void>;
}

export interface ClusterViewOptions {
  node: ClusterViewNode;
  inspector: ReplicaInspector;
  /** The view streamed and served (viewOfNode(node)). */
  view: () => ReplicaView;
  /** A member's HTTP base URL from its gRPC address (the server's httpUrlFor). */
  httpUrlFor: (grpcAddress: string) => string | undefined;
  secret: string;
  /** Development mode: the controls exist only then (QC_DEV=1; `make run` sets it). */
  dev?: boolean;
  /** Graceful stop of this process (the server sends itself SIGTERM). Without it, no stop control. */
  onStop?: () => void;
  /** Cut this replica off for `ms` (PausableTransport.pause). Without it, no pause control. */
  pause?: (ms: number) => void;
  /** Cut the link to a peer (both directions, dropped at this replica's transport), heal them all. */
  links?: { cut: (peer: string) => void; heal: () => void };
  /** Ask the launcher to kill -9 and start the replica `id` again, or start it if it is down
   *  (src/server/launcher-link.ts). Without it, no restart control. */
  restart?: (id: string) => Promise<string>;
  /** Seconds a pause lasts at most. */
  maxPauseSeconds?: number;
  staticDir?: string;
  chartFile?: string;
}

export const defaultStaticDir = fileURLToPath(new URL('./static/', import.meta.url));

/** diagrams/replica.svg from src/web/ or from dist/src/web/. */
export function defaultChartFiles(): string[] {
  return [
    fileURLToPath(new URL('../../diagrams/replica.svg', import.meta.url)),
    fileURLToPath(new URL('../../../diagrams/replica.svg', import.meta.url)),
  ];
}

/** Development mode from the environment (the flag is the server's). */
export function devFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.QC_DEV === '1' || env.QC_DEV === 'true';
}

export function secretMatches(given: string | undefined, secret: string): boolean {
  if (given === undefined || secret === '') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  // Length first: timingSafeEqual needs equal lengths; the length of the secret is no secret.
  return a.length === b.length && timingSafeEqual(a, b);
}

const cors: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type',
  'access-control-max-age': '600',
};

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...cors,
  });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage, limit = 4096): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface ClusterStatusJson extends ReplicaView {
  dev: boolean;
  controls: string[];
  members: { id: string; address: string; voter: boolean; http: string | null }[];
}

export function clusterRoutes(opts: ClusterViewOptions): Routes {
  const staticDir = opts.staticDir ?? defaultStaticDir;
  const controls = () =>
    opts.dev
      ? [
          'transfer',
          ...(opts.pause ? ['pause'] : []),
          ...(opts.links ? ['cut', 'heal'] : []),
          ...(opts.onStop ? ['stop'] : []),
          ...(opts.restart ? ['restart'] : []),
        ]
      : ([] as string[]);
  let chart: Promise<Buffer | null> | undefined;
  const loadChart = () => {
    chart ??= (async () => {
      for (const f of opts.chartFile ? [opts.chartFile] : defaultChartFiles()) {
        const body = await readFile(f).catch(() => null);
        if (body) return body;
      }
      return null;
    })();
    return chart;
  };

  // The live view, and the simulator replay (a trace file opened in the browser; it reads no replica).
  const pageOf =
    (file: string): RouteHandler =>
    async (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(res);
      const body = await readFile(`${staticDir}${file}`);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
  const page = pageOf('cluster.html');

  const status = (): ClusterStatusJson => ({
    ...opts.view(),
    dev: opts.dev === true,
    controls: controls(),
    members: opts.node.status().config.members.map((m) => ({
      id: m.id,
      address: m.address,
      voter: m.voter,
      http: opts.httpUrlFor(m.address) ?? null,
    })),
  });

  const control = async (req: IncomingMessage, res: ServerResponse) => {
    if (!opts.dev)
      return json(res, 404, {
        error: 'The controls exist only in development mode (QC_DEV=1, as make run sets).',
      });
    if (req.method !== 'POST') return notAllowed(res);
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (!secretMatches(token, opts.secret))
      return json(res, 401, {
        error:
          token === undefined || token === ''
            ? 'The controls need the cluster secret (cluster.secret) as a bearer token, and none was given.'
            : "The cluster secret given is wrong: it is not this cluster's (compare cluster.secret on a member).",
      });
    const raw = await readBody(req);
    let body: { action?: unknown; seconds?: unknown; to?: unknown; id?: unknown; peer?: unknown };
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      return json(res, 400, { error: 'The body is not JSON.' });
    }
    const action = String(body.action ?? '');
    if (!controls().includes(action))
      return json(res, 400, {
        error: `Unknown action '${action}'; this replica has: ${controls().join(', ')}.`,
      });
    if (action === 'stop') {
      json(res, 202, { ok: true, message: `${opts.node.id} is stopping.` });
      // After the answer is out: the stop closes this HTTP server too.
      setTimeout(() => opts.onStop?.(), 50);
      return;
    }
    if (action === 'restart') {
      // Any member, this one included, up or down: the launcher knows them by id.
      const id = typeof body.id === 'string' && body.id !== '' ? body.id : opts.node.id;
      if (!opts.node.status().config.members.some((m) => m.id === id))
        return json(res, 404, { error: `There is no member ${id}.` });
      try {
        const message = (await opts.restart?.(id)) ?? '';
        return json(res, 202, { ok: true, message });
      } catch (err) {
        return json(res, 409, { error: `The launcher refused: ${(err as Error).message}` });
      }
    }
    if (action === 'cut') {
      const peer = typeof body.peer === 'string' ? body.peer : '';
      if (peer === opts.node.id)
        return json(res, 400, { error: 'A replica has no link to itself; choose another peer.' });
      if (!opts.node.status().config.members.some((m) => m.id === peer))
        return json(res, 404, { error: `There is no member '${peer}' to cut the link to.` });
      opts.links?.cut(peer);
      return json(res, 200, {
        ok: true,
        message: `The link ${opts.node.id} ↔ ${peer} is cut at ${opts.node.id}.`,
      });
    }
    if (action === 'heal') {
      opts.links?.heal();
      return json(res, 200, { ok: true, message: `${opts.node.id}'s links are healed.` });
    }
    if (action === 'pause') {
      const max = opts.maxPauseSeconds ?? 60;
      const seconds = Number(body.seconds ?? 5);
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > max)
        return json(res, 400, { error: `seconds must be above 0 and at most ${max}.` });
      opts.pause?.(seconds * 1000);
      return json(res, 200, { ok: true, message: `${opts.node.id} is cut off for ${seconds} s.` });
    }
    // transfer
    if (opts.node.status().role !== 'leader')
      return json(res, 409, { error: `${opts.node.id} is not the leader; ask the leader to transfer.` });
    const to = typeof body.to === 'string' && body.to !== '' ? body.to : null;
    try {
      await opts.node.transferLeadership(to);
      return json(res, 200, { ok: true, message: `${opts.node.id} handed leadership over.` });
    } catch (err) {
      return json(res, 409, { error: `The transfer did not complete: ${(err as Error).message}.` });
    }
  };

  const sub: RouteHandler = async (req, res, url) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    switch (url.pathname) {
      case '/cluster/status':
        return json(res, 200, status());
      case '/cluster/events':
        return opts.inspector.serveEvents(req, res);
      case '/cluster/chart.svg': {
        const body = await loadChart();
        if (!body) return json(res, 404, { error: 'diagrams/replica.svg is missing (make diagrams).' });
        res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-cache', ...cors });
        res.end(body);
        return;
      }
      case '/cluster/control':
        return control(req, res);
      default:
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found\n');
    }
  };

  return {
    '/cluster': page,
    '/cluster/': page,
    '/cluster/replay': pageOf('replay.html'),
    '/cluster/*': sub,
  };
}

function notAllowed(res: ServerResponse): void {
  res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET' });
  res.end('method not allowed\n');
}
