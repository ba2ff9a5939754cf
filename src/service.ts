/**
 * The composition root: `main.ts` and the integration tests both start the service through
 * `startService`, which reads as its parts, in order: connections, the services graph, the
 * HTTP server with GraphQL and its routes, subscriptions on the same port, and the graceful stop.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import { openConnections } from './composition/connections';
import { gracefulStop } from './composition/graceful-stop';
import { startGraphQLServer } from './composition/graphql-server';
import { createRoutes } from './composition/http-routes';
import { buildServices } from './composition/services';
import { attachWebSocket } from './composition/websocket';
import type { Config, RedisTarget } from './config';
import { buildContext, type Services } from './context';
import { clientAddressOf } from './http/client-address';
import { createIssuancesCsvHandler } from './http/issuances-csv';
import { closeNow, createMetricsServer, listenOn, sharedRender, type MetricsSource } from './http/metrics-endpoint';
import type { Metrics } from './metrics';
import type { Models } from './mongo/models';
import { createDevTokenHandler } from './http/dev-token';
import { createPlaygroundHandler } from './playground';
import { createDropPageHandler } from './playground/drop-page';
import { Admission, LoopLag } from './services/admission';
import type { RedisClient } from './redis/client';
import type { Reconciler } from './services/reconciler';

export type ServiceSettings = Config & {
  /** The Redis to use (resolved: an embedded server is a `single` target). */
  redis: RedisTarget;
  mongoUri: string;
  jwtSecret: string;
  /**
   * The signing key was generated for this run (JWT_SECRET unset, development): POST /dev/token
   * mints tokens and the playground offers a user and an admin token. Never in production.
   */
  devTokens?: boolean;
  /** What GET /metrics serves when this instance is one of several workers: all of them, aggregated. */
  readMetrics?: () => Promise<string>;
  /** A worker of a WORKERS > 1 start with METRICS_PORT: the primary serves /metrics there, this instance nowhere. */
  metricsOnPrimary?: boolean;
};

export interface RunningService {
  url: string;
  port: number;
  /** Where GET /metrics is served when METRICS_PORT is set (and not by a primary). */
  metricsPort?: number;
  services: Services;
  models: Models;
  redis: RedisClient;
  mongo: Connection;
  metrics: Metrics;
  reconciler: Reconciler;
  /** Graceful: stop accepting, finish in-flight requests and writes, close connections. */
  stop(): Promise<void>;
}

export async function startService(settings: ServiceSettings, logger: Logger): Promise<RunningService> {
  const connections = await openConnections(settings, logger);
  const graph = buildServices(settings, connections, logger);
  const { services, metrics } = graph;

  // Bodies have their own short deadline (BODY_READ_TIMEOUT_MS); these bound headers trickled
  // a byte at a time, checked every second rather than on Node's default 30 s sweep.
  const httpServer = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, connectionsCheckingInterval: 1_000 });
  const clientAddress = clientAddressOf(settings.trustedProxies);
  const contextFor = (req: IncomingMessage) =>
    buildContext(services, {
      authorization: req.headers.authorization,
      clientIp: clientAddress(req),
      requestId: headerValue(req.headers['x-request-id']) ?? randomUUID(),
    });
  const graphql = await startGraphQLServer({ httpServer, ...settings, metrics, logger, context: contextFor });
  const loopLag = new LoopLag();
  loopLag.start();
  const admission = new Admission({
    maxConcurrent: settings.maxConcurrentRequests,
    maxWaitMs: settings.maxQueueWaitMs,
    maxQueued: settings.maxQueuedRequests,
    maxLoopLagMs: settings.maxEventLoopLagMs,
    loopLag: () => loopLag.current(),
    onShed: (reason) => metrics.shed.inc({ reason }),
  });
  const metricsSource: MetricsSource = {
    read: sharedRender(settings.readMetrics ?? (() => metrics.registry.metrics())),
    contentType: metrics.registry.contentType,
  };
  // METRICS_PORT: /metrics on a server of its own only (404 on the main port).
  const metricsElsewhere = settings.metricsPort !== undefined;
  const metricsServer = metricsElsewhere && !settings.metricsOnPrimary ? createMetricsServer(metricsSource, logger) : undefined;
  const devTokens = settings.devTokens === true && settings.env !== 'production';
  httpServer.on(
    'request',
    createRoutes({
      graphql,
      admission,
      playground: settings.playgroundEnabled ? developerPages(services, devTokens) : undefined,
      devToken: devTokens ? createDevTokenHandler(services.authenticator) : undefined,
      redis: connections.redis,
      mongo: connections.mongo,
      metrics: metricsElsewhere ? undefined : metricsSource,
      logger,
      issuancesCsv: createIssuancesCsvHandler(services, logger),
    }),
  );

  try {
    // A drop opens thousands of connections in the same second: a deep accept queue keeps them.
    await listenOn(httpServer, settings.port, settings.host, 'PORT', 4096);
    if (metricsServer) await listenOn(metricsServer, settings.metricsPort!, settings.host, 'METRICS_PORT');
  } catch (error) {
    loopLag.stop();
    if (metricsServer) await closeNow(metricsServer);
    await graphql.apollo.stop();
    await connections.close();
    throw error;
  }
  // Attached once listening, so a taken port is reported once, as a configuration error.
  const subscriptions = attachWebSocket(settings, { httpServer, graphql, services, metrics, clientAddress, logger });
  graph.startBackground();

  const stop = gracefulStop(
    [
      ['background passes', () => graph.stopBackground()],
      ['event-loop monitor', () => loopLag.stop()],
      // Subscriptions complete before the HTTP drain, which would cut upgraded sockets.
      [
        'subscriptions',
        async () => {
          await graph.stockFeed.stop();
          await subscriptions.dispose();
        },
      ],
      // Apollo's drain plugin stops accepting and waits for in-flight requests.
      ['in-flight requests', () => graphql.apollo.stop()],
      ['metrics port', () => metricsServer && closeNow(metricsServer)],
      ['issuance writes', () => graph.writer.drained()],
      // What the last claims changed goes out before the publisher closes.
      ['stock updates', () => graph.stockFeed.flush()],
      ['connections', () => connections.close()],
    ],
    logger,
  );

  const port = (httpServer.address() as AddressInfo).port;
  const { models, redis, mongo } = connections;
  const metricsPort = metricsServer && (metricsServer.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, metricsPort, services, models, redis, mongo, metrics, reconciler: graph.reconciler, stop };
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
