/**
 * GET /metrics, cheap whoever asks and however often. A scrape renders the whole registry (and,
 * with several workers, asks each of them over IPC), and nothing stands in front of it: 512
 * concurrent scrapes made the event loop late enough that admission shed 8 claims in 9. Here at
 * most one render is in flight, every scrape arriving meanwhile shares it, and its result serves
 * the scrapes of the next moment too: a flood costs one render per METRICS_REUSE_MS. With
 * METRICS_PORT the endpoint has a server of its own, reachable from the monitoring network only.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { requestTarget } from './request-target';

/** How long a finished render answers later scrapes; Prometheus scrapes every 10-60 s. */
export const METRICS_REUSE_MS = 500;

/** `render`, shared by concurrent callers and reused for `reuseMs` after it finished; a failure is not reused. */
export function sharedRender(render: () => Promise<string>, reuseMs = METRICS_REUSE_MS): () => Promise<string> {
  let latest: { body: Promise<string>; finishedAt?: number } | undefined;
  return () => {
    if (latest && (latest.finishedAt === undefined || performance.now() - latest.finishedAt < reuseMs)) return latest.body;
    const entry: { body: Promise<string>; finishedAt?: number } = { body: render() };
    latest = entry;
    entry.body.then(
      () => (entry.finishedAt = performance.now()),
      () => {
        if (latest === entry) latest = undefined;
      },
    );
    return entry.body;
  };
}

export interface MetricsSource {
  /** The exposition text; wrap it in sharedRender. */
  read: () => Promise<string>;
  contentType: string;
}

export async function answerMetrics(res: ServerResponse, source: MetricsSource): Promise<void> {
  const body = await source.read();
  res.writeHead(200, { 'content-type': source.contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A server answering GET /metrics and nothing else (404), for METRICS_PORT. */
export function createMetricsServer(source: MetricsSource, logger: Logger): http.Server {
  const server = http.createServer({ requestTimeout: 5_000, headersTimeout: 5_000, connectionsCheckingInterval: 1_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const { pathname } = requestTarget(req.url);
    if (pathname !== '/metrics' || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('not found\n');
    }
    answerMetrics(res, source).catch((error: Error) => {
      logger.error({ err: error.message }, 'metrics scrape failed');
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  return server;
}

/** Listens on `port`, or rejects with one line naming `variable` (a taken port is a configuration error). */
export function listenOn(server: http.Server, port: number, host: string, variable: string, backlog?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'EADDRINUSE' ? `${variable}: port ${port} is already in use` : `${variable}: cannot listen (${error.message})`));
    server.once('error', failed);
    server.listen({ port, host, backlog }, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

/** Stops a server at once: no new connections, open ones (keep-alive scrapers) closed. */
export function closeNow(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
