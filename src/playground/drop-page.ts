/**
 * The reference drop page (web/), served in development at /drop/ and /drop/<couponId> from its
 * committed build (web/dist), so that `npm ci && npm start` shows it without installing web/'s
 * own dependencies. Served only where the playground is (PLAYGROUND_ENABLED, on by default
 * outside production): a production deployment hosts its own frontend. Files are read once at
 * start-up and named by their path inside web/dist only, never by a path from the request.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { requestTarget } from '../http/request-target';
import { contentSecurityPolicy } from './html';

export const DROP_PAGE_PATH = '/drop/';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** web/dist beside src/ (run with tsx) or beside dist/src/ (the compiled server). */
function distDirectory(): string | undefined {
  return [path.resolve(__dirname, '../../web/dist'), path.resolve(__dirname, '../../../web/dist')].find((dir) => existsSync(path.join(dir, 'index.html')));
}

function readTree(root: string, dir = root, files = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) readTree(root, full, files);
    else files.set(path.relative(root, full).split(path.sep).join('/'), readFileSync(full));
  }
  return files;
}

const NOT_BUILT = Buffer.from(
  '<!doctype html><meta charset="utf-8"><title>Drop page not built</title><p>The drop page is not built: run <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>, then restart.</p>',
);

/** /drop/ and /drop/<24 hex digits> are the page; anything else under /drop/ must be a built file. */
const PAGE = /^\/drop\/?(?:[0-9a-f]{24}\/?)?$/i;

export function createDropPageHandler(): (req: IncomingMessage, res: ServerResponse) => boolean {
  const dir = distDirectory();
  const files = dir ? readTree(dir) : new Map<string, Buffer>();
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const { pathname } = requestTarget(req.url);
    if (!pathname.startsWith('/drop')) return false;
    const security = {
      'Content-Security-Policy': contentSecurityPolicy(req.headers.host),
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    };
    if (PAGE.test(pathname)) {
      const page = files.get('index.html');
      res.writeHead(page ? 200 : 503, { 'Content-Type': CONTENT_TYPES['.html']!, 'Cache-Control': 'no-store', 'Content-Length': (page ?? NOT_BUILT).length, ...security });
      res.end(req.method === 'HEAD' ? undefined : (page ?? NOT_BUILT));
      return true;
    }
    const file = pathname.startsWith(DROP_PAGE_PATH) ? files.get(pathname.slice(DROP_PAGE_PATH.length)) : undefined;
    if (!file) return false;
    const type = CONTENT_TYPES[path.extname(pathname)] ?? 'application/octet-stream';
    // Vite names built assets by content hash: a URL under assets/ never changes content.
    const cache = pathname.startsWith(`${DROP_PAGE_PATH}assets/`) ? 'public, max-age=31536000, immutable' : 'no-cache';
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': cache, 'Content-Length': file.length, ...security });
    res.end(req.method === 'HEAD' ? undefined : file);
    return true;
  };
}
