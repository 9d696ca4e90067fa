// Serves the web client's files from src/web/static (dist/src/web/static once built). The files are
// few and small, so each is read once and kept in memory.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const defaultStaticDir = fileURLToPath(new URL('./static/', import.meta.url));

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export class StaticFiles {
  private readonly cache = new Map<string, Buffer>();

  constructor(private readonly dir: string = defaultStaticDir) {}

  /** Serves `url.pathname` if it names a file; returns false (nothing written) otherwise. */
  async serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const rel = url.pathname === '/' ? 'index.html' : decodeSafe(url.pathname.slice(1));
    if (rel === undefined) return false;
    const file = normalize(join(this.dir, rel));
    // No escaping the static dir (`..`, encoded slashes, absolute paths).
    if (!file.startsWith(normalize(this.dir + sep)) || rel.includes('\0')) return false;
    const body = await this.load(file);
    if (!body) return false;
    res.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      // Pages must pick up a new build at once; the files are tiny, so revalidating costs little.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }

  private async load(file: string): Promise<Buffer | null> {
    const hit = this.cache.get(file);
    if (hit) return hit;
    // Misses are not cached: random probes must not grow the map.
    const body = await readFile(file).catch(() => null);
    if (body) this.cache.set(file, body);
    return body;
  }
}

function decodeSafe(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
