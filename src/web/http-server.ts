// The replica's HTTP server (API.md §3), on node:http: the web client at `/`, its JSON/SSE gateway under
// `/api/`, `/healthz`, and whatever others hang off it through `extraRoutes` (`/metrics`, `/cluster`).
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import { UserError } from '../user-error.js';
import type { ChatApi } from './chat-api.js';
import { Gateway } from './gateway.js';
import { StaticFiles } from './static-files.js';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => unknown;

/**
 * Extra routes by path. A key matches that exact path; a key ending in `/*` matches everything under
 * it (`/cluster/*` matches `/cluster/events`, not `/cluster`). Exact keys win over prefixes.
 */
export type Routes = Record<string, RouteHandler>;

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  gateway: ChatApi;
  logger: Logger;
  extraRoutes?: Routes;
  /**
   * A member's HTTP base URL from its gRPC address, for the page's failover list. The default is the
   * contract's default, gRPC port + 1000 on the same host.
   */
  httpUrlFor?: (grpcAddress: string) => string | undefined;
  /** `/healthz` answers 200 while this returns true (default: always, i.e. while the process serves). */
  healthy?: () => boolean;
  staticDir?: string;
  keepaliveMs?: number;
  /** Timeouts and caps (tests pass short ones); each defaults to `defaultHttpLimits`. */
  limits?: Partial<HttpLimits>;
  /**
   * Hosts (gRPC or HTTP addresses, `host:port`) whose HTTP servers the pages may call, beyond the
   * gateway's voting members: /cluster reads every member, learners included. Goes into the CSP.
   */
  pageHosts?: () => string[];
  /** Serve https with this certificate and key (the replica's --tls-cert-file/--tls-key-file). */
  tls?: { cert: Buffer; key: Buffer };
}

/** The bounds on what one client can hold of the HTTP server (issue 13, finding 10). */
export interface HttpLimits {
  /** The request line and headers must arrive within this (slow-header clients are cut off). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this. Responses are not bounded by it, so
   *  event streams stay open. */
  requestTimeoutMs: number;
  /** How often node checks the two timeouts above (its default, 30 s, would let them overrun by that). */
  checkIntervalMs: number;
  /** Open connections at once; more are dropped as they arrive. */
  maxConnections: number;
  /** Open /api/events streams per session token; more get 429. */
  maxStreamsPerToken: number;
}

export const defaultHttpLimits: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  checkIntervalMs: 1000,
  maxConnections: 500,
  maxStreamsPerToken: 8,
};

/**
 * The Content-Security-Policy of every response. Scripts, styles and images come only from this
 * server (no inline script, no eval); the pages may call this server and the other members' HTTP
 * servers (the web client fails over to them, /cluster reads each member's feed), on any port of the
 * members' hosts so that a member added later still works; nothing may frame a page.
 */
export function contentSecurityPolicy(hosts: Iterable<string>): string {
  const sources = new Set<string>(["'self'"]);
  for (const address of hosts) {
    const host = /^(?:https?:\/\/)?(\[[^\]]*\]|[^/:]+)/.exec(address)?.[1];
    if (!host) continue;
    // CSP's host-source grammar has no IPv6 literals: allow any HTTP(S) host rather than break the page.
    if (host.startsWith('[')) {
      sources.add('http:').add('https:');
      continue;
    }
    if (/^[A-Za-z0-9.-]+$/.test(host)) sources.add(`${host}:*`);
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${[...sources].join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export interface HttpServer {
  readonly server: Server;
  readonly port: number;
  /** `http://host:port` (https with TLS) */
  readonly url: string;
  /** Adds or replaces a route after start (same matching as `extraRoutes`). */
  addRoute(path: string, handler: RouteHandler): void;
  close(): Promise<void>;
}

/**
 * Members' HTTP URLs assuming each runs its HTTP server `offset` ports above its gRPC port. A replica
 * started with a non-default --http-port can pass its own offset (httpPort - grpcPort), which holds
 * when a cluster is launched with one scheme, as `quorum-chat cluster` does.
 */
export function httpUrlForOffset(
  offset: number,
  scheme: 'http' | 'https' = 'http',
): (grpcAddress: string) => string | undefined {
  return (grpcAddress) => {
    const m = /^(.*):(\d+)$/.exec(grpcAddress);
    if (!m) return undefined;
    const port = Number(m[2]) + offset;
    if (port < 1 || port > 65535) return undefined;
    const host = m[1].includes(':') && !m[1].startsWith('[') ? `[${m[1]}]` : m[1];
    return `${scheme}://${host}:${port}`;
  };
}

/** gRPC port + 1000, as `--http-port` defaults to (API.md §1). */
export const defaultHttpUrlFor = httpUrlForOffset(1000);

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { logger } = opts;
  const routes = new Map(Object.entries(opts.extraRoutes ?? {}));
  const limits: HttpLimits = { ...defaultHttpLimits, ...opts.limits };
  const gateway = new Gateway({
    api: opts.gateway,
    logger,
    httpUrlFor: opts.httpUrlFor ?? (opts.tls ? httpUrlForOffset(1000, 'https') : defaultHttpUrlFor),
    keepaliveMs: opts.keepaliveMs,
    maxStreamsPerToken: limits.maxStreamsPerToken,
  });
  const csp = () =>
    contentSecurityPolicy([
      ...opts.gateway.members(),
      ...gateway.members().flatMap((m) => (m.http ? [m.http] : [])),
      ...(opts.pageHosts?.() ?? []),
    ]);
  const files = new StaticFiles(opts.staticDir);

  const findRoute = (path: string): RouteHandler | undefined => {
    const exact = routes.get(path);
    if (exact) return exact;
    let best: [string, RouteHandler] | undefined;
    for (const [key, handler] of routes) {
      if (key.endsWith('/*') && path.startsWith(key.slice(0, -1)) && (!best || key.length > best[0].length)) {
        best = [key, handler];
      }
    }
    return best?.[1];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    // On every response, pages or not: cheap, and nothing slips through a route that forgot them.
    res.setHeader('content-security-policy', csp());
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('x-content-type-options', 'nosniff');
    // /api/events may carry ?access_token=: no Referer may take it elsewhere.
    res.setHeader('referrer-policy', 'no-referrer');
    if (path === '/healthz') {
      const ok = opts.healthy?.() ?? true;
      res.writeHead(ok ? 200 : 503, {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(ok ? 'ok\n' : 'unavailable\n');
      return;
    }
    if (path.startsWith('/api/')) return gateway.handle(req, res, url);
    const route = findRoute(path);
    if (route) {
      await route(req, res, url);
      return;
    }
    if (await files.serve(req, res, url)) return;
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  };

  const serverOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      logger.warn({ err, url: req.url }, 'http handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end();
    });
  };
  // https.Server is an http.Server underneath (same timeouts, limits, events).
  const server: Server = opts.tls
    ? createHttpsServer({ ...serverOptions, cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : createServer(serverOptions, onRequest);
  server.maxConnections = limits.maxConnections;
  // Dropped connections are said in the log, at most once a minute: a flood must not flood the log too.
  let lastDropLog = 0;
  server.on('drop', () => {
    if (Date.now() - lastDropLog < 60_000) return;
    lastDropLog = Date.now();
    logger.warn({ max: limits.maxConnections }, 'http connection cap reached; dropping new connections');
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE')
        reject(new UserError(`HTTP port ${opts.port} on ${opts.host} is already in use.`));
      else if (err.code === 'EACCES')
        reject(new UserError(`No permission to listen on HTTP port ${opts.port}.`));
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(opts.port, opts.host);
  });
  server.on('error', (err) => logger.warn({ err }, 'http server error'));

  const port = (server.address() as AddressInfo).port;
  const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  logger.info({ port }, 'http server listening');
  return {
    server,
    port,
    url: `${opts.tls ? 'https' : 'http'}://${hostPart}:${port}`,
    addRoute: (path, handler) => {
      routes.set(path, handler);
    },
    close: () =>
      new Promise<void>((resolve) => {
        gateway.closeStreams();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
