/**
 * The HTTP routes of the main port: the playground and the drop page, POST /graphql behind
 * admission control, GET /healthz, GET /metrics (unless METRICS_PORT serves it),
 * GET /admin/coupons/{id}/issuances.csv, and in development POST /dev/token. Anything else is 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import { serviceUnavailable } from '../errors';
import { sendJson, sendRefusal } from '../http/graphql-handler';
import { DEV_TOKEN_PATH } from '../http/dev-token';
import { checkHealth } from '../http/health';
import { requestTarget } from '../http/request-target';
import type { RedisClient } from '../redis/client';
import { answerMetrics, type MetricsSource } from '../http/metrics-endpoint';
import type { Admission } from '../access/admission';
import type { GraphQLServer } from './graphql-server';
import { withGraphQLSpan } from '../tracing/tracer';

/** Last-resort answer time for any GraphQL request, inside the contract's 3 s. */
export const REQUEST_DEADLINE_MS = 2500;

export interface RouteOptions {
  graphql: Pick<GraphQLServer, 'handle' | 'receiveBody'>;
  admission: Admission;
  /** Serves the playground's page and assets; true when it answered. */
  playground?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Development tokens on POST /dev/token; only when the signing key was generated for this run. */
  devToken?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  redis: RedisClient;
  mongo: Connection;
  /** What GET /metrics serves; unset when METRICS_PORT serves it elsewhere (404 here). */
  metrics?: MetricsSource;
  logger: Logger;
  /** Milliseconds to wait when the request's address has spent its budget for now (src/access/read-limiter.ts). */
  readsSpent?: (req: IncomingMessage) => number | undefined;
  /** GET /admin/coupons/{id}/issuances.csv (src/http/issuances-csv.ts). */
  issuancesCsv?: (req: IncomingMessage, res: ServerResponse, couponId: string) => Promise<void>;
  /** v3: GET /admin/coupons/{id}/draw.csv (src/http/draw-csv.ts). */
  drawCsv?: (req: IncomingMessage, res: ServerResponse, couponId: string) => Promise<void>;
}

const ISSUANCES_CSV = /^\/admin\/coupons\/([^/]+)\/issuances\.csv$/;
const DRAW_CSV = /^\/admin\/coupons\/([^/]+)\/draw\.csv$/;

function atCapacity(res: ServerResponse): void {
  const unavailable = serviceUnavailable('the service is at capacity, please retry');
  res.setHeader('retry-after', '1');
  sendJson(res, 503, { errors: [{ message: unavailable.message, extensions: unavailable.extensions }] });
}

function budgetSpent(req: IncomingMessage, res: ServerResponse, retryAfterMs: number): void {
  // The body is discarded unread, and the connection stays open for the next request.
  req.resume();
  sendRefusal(res, retryAfterMs);
}

export function createRoutes(options: RouteOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { admission, metrics, logger } = options;

  const route = async (req: IncomingMessage, res: ServerResponse, pathname: string, search: string) => {
    if (options.playground?.(req, res)) return;
    if (pathname === '/graphql') {
      // Under overload a request is refused on arrival, before anything of it is read. Otherwise
      // its body comes first, whole, under its own short deadline and holding no slot (a client
      // trickling it must not keep real claims out); then a slot, before any parsing or token check.
      const arrived = performance.now();
      if (admission.refusesNow()) return atCapacity(res);
      // An address that spent this second's request budget is refused before its body is read.
      const spent = options.readsSpent?.(req);
      if (spent !== undefined) return budgetSpent(req, res, spent);
      const raw = await options.graphql.receiveBody(req, res);
      if (raw === undefined) return;
      const release = await admission.enter({ lagChecked: true });
      if (!release) return atCapacity(res);
      // 'close' comes once the answer is out or the client has gone; if it left while it
      // waited here, the response is closed already and the slot goes back now.
      if (res.closed) release();
      else res.once('close', release);
      // The body and the wait for admission count against the deadline: the contract's 3 s run from arrival.
      const deadlineMs = REQUEST_DEADLINE_MS - (performance.now() - arrived);
      // A claim held by an opening draw waits without working: it gives its slot back (src/draw/).
      return withGraphQLSpan(raw, () => options.graphql.handle(req, res, raw, search, deadlineMs, release));
    }
    if (pathname === DEV_TOKEN_PATH && options.devToken) return options.devToken(req, res);
    if (pathname === '/healthz' && req.method === 'GET') {
      const health = await checkHealth(options.redis, options.mongo);
      return sendJson(res, health.ok ? 200 : 503, health);
    }
    // Outside admission control, so it must stay cheap: renders are shared (metrics-endpoint.ts).
    if (metrics && pathname === '/metrics' && req.method === 'GET') return answerMetrics(res, metrics);
    const csv = (req.method === 'GET' || req.method === 'HEAD') && options.issuancesCsv ? ISSUANCES_CSV.exec(pathname) : null;
    if (csv) return options.issuancesCsv!(req, res, csv[1]!);
    const drawCsv = req.method === 'GET' && options.drawCsv ? DRAW_CSV.exec(pathname) : null;
    if (drawCsv) return options.drawCsv!(req, res, drawCsv[1]!);
    sendJson(res, 404, { error: 'not found' });
  };

  return (req, res) => {
    const { pathname, search } = requestTarget(req.url);
    route(req, res, pathname, search).catch((error: Error) => {
      logger.error({ err: error.message, path: pathname }, 'unhandled request failure');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}
