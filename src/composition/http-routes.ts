/**
 * The HTTP routes of the one port: the playground, POST /graphql behind admission control,
 * GET /healthz, GET /metrics and GET /admin/coupons/{id}/issuances.csv. Anything else is 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import { serviceUnavailable } from '../errors';
import { sendJson } from '../http/graphql-handler';
import { checkHealth } from '../http/health';
import { requestTarget } from '../http/request-target';
import type { Metrics } from '../metrics';
import type { Admission } from '../services/admission';
import type { GraphQLServer } from './graphql-server';

/** Last-resort answer time for any GraphQL request, inside the contract's 3 s. */
export const REQUEST_DEADLINE_MS = 2500;

export interface RouteOptions {
  graphql: GraphQLServer['handle'];
  admission: Admission;
  /** Serves the playground's page and assets; true when it answered. */
  playground?: (req: IncomingMessage, res: ServerResponse) => boolean;
  redis: Redis;
  mongo: Connection;
  metrics: Metrics;
  /** What GET /metrics serves; by default this instance's registry. */
  readMetrics?: () => Promise<string>;
  logger: Logger;
  /** GET /admin/coupons/{id}/issuances.csv (src/http/issuances-csv.ts). */
  issuancesCsv?: (req: IncomingMessage, res: ServerResponse, couponId: string) => Promise<void>;
}

const ISSUANCES_CSV = /^\/admin\/coupons\/([^/]+)\/issuances\.csv$/;

export function createRoutes(options: RouteOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { admission, metrics, logger } = options;
  const readMetrics = options.readMetrics ?? (() => metrics.registry.metrics());

  const route = async (req: IncomingMessage, res: ServerResponse, pathname: string, search: string) => {
    if (options.playground?.(req, res)) return;
    if (pathname === '/graphql') {
      // Admitted before the body is read: a refused request costs no parsing, no token check.
      const arrived = performance.now();
      const release = await admission.enter();
      if (!release) {
        const unavailable = serviceUnavailable('the service is at capacity, please retry');
        res.setHeader('retry-after', '1');
        return sendJson(res, 503, { errors: [{ message: unavailable.message, extensions: unavailable.extensions }] });
      }
      // 'close' comes once the answer is out or the client has gone; if it left while it
      // waited here, the response is closed already and the slot goes back now.
      if (res.closed) release();
      else res.once('close', release);
      // The wait for admission counts against the deadline: the contract's 3 s run from arrival.
      const deadlineMs = REQUEST_DEADLINE_MS - (performance.now() - arrived);
      return options.graphql(req, res, search, deadlineMs);
    }
    if (pathname === '/healthz' && req.method === 'GET') {
      const health = await checkHealth(options.redis, options.mongo);
      return sendJson(res, health.ok ? 200 : 503, health);
    }
    if (pathname === '/metrics' && req.method === 'GET') {
      const body = await readMetrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      return void res.end(body);
    }
    const csv = req.method === 'GET' && options.issuancesCsv ? ISSUANCES_CSV.exec(pathname) : null;
    if (csv) return options.issuancesCsv!(req, res, csv[1]!);
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
