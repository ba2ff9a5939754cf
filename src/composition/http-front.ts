/**
 * The HTTP front of the main port: the server with its header deadlines, the request context,
 * admission control, where /metrics is served, and the routes (developer pages included).
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Admission, LoopLag } from '../access/admission';
import { buildContext, type Services } from '../context';
import { clientAddressOf } from '../http/client-address';
import { createDevTokenHandler } from '../http/dev-token';
import { createIssuancesCsvHandler } from '../http/issuances-csv';
import { createDrawCsvHandler } from '../http/draw-csv';
import { createMetricsServer, sharedRender, type MetricsSource } from '../http/metrics-endpoint';
import type { Metrics } from '../metrics';
import { createPlaygroundHandler } from '../playground';
import { createDropPageHandler } from '../playground/drop-page';
import type { Connections } from './connections';
import type { GraphQLServer } from './graphql-server';
import { createRoutes } from './http-routes';
import type { ServiceSettings } from './settings';

/**
 * Bodies have their own short deadline (BODY_READ_TIMEOUT_MS); these bound headers trickled a
 * byte at a time, checked every second rather than on Node's default 30 s sweep.
 */
export function createHttpServer(): http.Server {
  return http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, connectionsCheckingInterval: 1_000 });
}

/** The one context builder's HTTP side: the caller's token, address (behind TRUSTED_PROXIES) and request id. */
export function requestContext(settings: ServiceSettings, services: Services) {
  const clientAddress = clientAddressOf(settings.trustedProxies);
  const contextFor = (req: IncomingMessage, releaseSlot?: () => void) =>
    buildContext(services, {
      authorization: req.headers.authorization,
      clientIp: clientAddress(req),
      requestId: headerValue(req.headers['x-request-id']) ?? nextRequestId(),
      releaseSlot,
    });
  // A document never parsed before is charged to its address's budget of new documents (read-limiter.ts).
  const newDocumentFrom = services.reads.enabled ? (req: IncomingMessage) => services.reads.newDocument(clientAddress(req)) : undefined;
  return { clientAddress, contextFor, newDocumentFrom };
}

/** Random per process, so ids from different instances and restarts do not collide. */
const REQUEST_ID_PREFIX = randomUUID().slice(0, 23);
let requestCount = 0;

/**
 * A request id in UUID form: this process's random prefix and a counter. Unique like
 * randomUUID(), without drawing 16 random bytes for every claim.
 */
function nextRequestId(): string {
  requestCount += 1;
  return `${REQUEST_ID_PREFIX}-${requestCount.toString(16).padStart(12, '0')}`;
}

/**
 * Admission control over GraphQL requests, with the event-loop lag it watches (started here);
 * while `drawWindowOpen`, an opening draw's burst is let in rather than refused (admission.ts).
 */
export function admissionControl(settings: ServiceSettings, metrics: Metrics, drawWindowOpen: () => boolean): { admission: Admission; loopLag: LoopLag } {
  const loopLag = new LoopLag();
  loopLag.start();
  const admission = new Admission({
    maxConcurrent: settings.maxConcurrentRequests,
    maxWaitMs: settings.maxQueueWaitMs,
    maxQueued: settings.maxQueuedRequests,
    maxLoopLagMs: settings.maxEventLoopLagMs,
    loopLag: () => loopLag.current(),
    onShed: (reason) => metrics.shed.inc({ reason }),
    surgeExpected: drawWindowOpen,
  });
  return { admission, loopLag };
}

/**
 * What GET /metrics serves and where: on the main port, or with METRICS_PORT on a server of its
 * own only (404 on the main port); a worker whose primary serves it has neither.
 */
export function metricsEndpoints(settings: ServiceSettings, metrics: Metrics, logger: Logger) {
  const source: MetricsSource = {
    read: sharedRender(settings.readMetrics ?? (() => metrics.registry.metrics())),
    contentType: metrics.registry.contentType,
  };
  const elsewhere = settings.metricsPort !== undefined;
  const server = elsewhere && !settings.metricsOnPrimary ? createMetricsServer(source, logger) : undefined;
  return { onMainPort: elsewhere ? undefined : source, server };
}

export interface FrontParts {
  settings: ServiceSettings;
  services: Services;
  connections: Connections;
  graphql: GraphQLServer;
  admission: Admission;
  metricsOnMainPort?: MetricsSource;
  logger: Logger;
}

/** Every route of the main port, attached to the server. */
export function attachRoutes(httpServer: http.Server, parts: FrontParts): void {
  const { settings, services, connections, logger } = parts;
  const devTokens = settings.devTokens === true && settings.env !== 'production';
  const clientAddress = clientAddressOf(settings.trustedProxies);
  httpServer.on(
    'request',
    createRoutes({
      graphql: parts.graphql,
      admission: parts.admission,
      playground: settings.playgroundEnabled ? developerPages(services, devTokens) : undefined,
      devToken: devTokens ? createDevTokenHandler(services.authenticator) : undefined,
      redis: connections.redis,
      mongo: connections.mongo,
      metrics: parts.metricsOnMainPort,
      logger,
      issuancesCsv: createIssuancesCsvHandler(services, logger),
      drawCsv: createDrawCsvHandler(services, logger),
      readsSpent: services.reads.enabled ? (req) => services.reads.spent(clientAddress(req)) : undefined,
    }),
  );
}

/** The playground (with a user and an admin token offered when `devTokens`) and the drop page. */
function developerPages(services: Services, devTokens: boolean): (req: IncomingMessage, res: ServerResponse) => boolean {
  const tokens = devTokens
    ? {
        user: services.authenticator.issue('dev-user', { expiresInSeconds: 12 * 3600 }),
        admin: services.authenticator.issue('dev-admin', { admin: true, expiresInSeconds: 12 * 3600 }),
      }
    : undefined;
  const playground = createPlaygroundHandler({ endpointPath: '/graphql', devTokens: tokens });
  const dropPage = createDropPageHandler();
  return (req, res) => playground(req, res) || dropPage(req, res);
}

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
