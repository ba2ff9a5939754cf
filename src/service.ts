/**
 * The composition root: `main.ts` and the integration tests both start the service through
 * `startService`, which reads as its parts, in order: connections, the services graph, the
 * HTTP server with GraphQL and its routes, subscriptions on the same port, and the graceful stop.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import { openConnections } from './composition/connections';
import { gracefulStop } from './composition/graceful-stop';
import { MAX_BODY_BYTES, startGraphQLServer } from './composition/graphql-server';
import { createRoutes, REQUEST_DEADLINE_MS } from './composition/http-routes';
import { buildServices } from './composition/services';
import type { Config } from './config';
import { buildContext, type Services } from './context';
import { clientAddressOf } from './http/client-address';
import { createIssuancesCsvHandler } from './http/issuances-csv';
import { REQUEST_LIMITS } from './http/request-limits';
import { attachSubscriptions } from './http/subscriptions';
import type { Metrics } from './metrics';
import type { Models } from './mongo/models';
import { createPlaygroundHandler } from './playground';
import { Admission, LoopLag } from './services/admission';
import type { Reconciler } from './services/reconciler';

export type ServiceSettings = Config & {
  redisUrl: string;
  mongoUri: string;
  jwtSecret: string;
  /** What GET /metrics serves when this instance is one of several workers: all of them, aggregated. */
  readMetrics?: () => Promise<string>;
};

export interface RunningService {
  url: string;
  port: number;
  services: Services;
  models: Models;
  redis: Redis;
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

  // A client that trickles its request must not hold an admission slot for Node's default 300 s.
  const httpServer = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 });
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
  httpServer.on(
    'request',
    createRoutes({
      graphql: graphql.handle,
      admission,
      playground: settings.playgroundEnabled ? createPlaygroundHandler({ endpointPath: '/graphql' }) : undefined,
      redis: connections.redis,
      mongo: connections.mongo,
      metrics,
      readMetrics: settings.readMetrics,
      logger,
      issuancesCsv: createIssuancesCsvHandler(services, logger),
    }),
  );

  await listen(httpServer, settings.port, settings.host).catch(async (error: NodeJS.ErrnoException) => {
    loopLag.stop();
    await graphql.apollo.stop();
    await connections.close();
    throw new Error(error.code === 'EADDRINUSE' ? `PORT: port ${settings.port} is already in use` : `PORT: cannot listen (${error.message})`);
  });
  // Attached once listening, so a taken port is reported once, as a configuration error.
  const subscriptions = attachSubscriptions({
    httpServer,
    schema: graphql.schema,
    services,
    logger,
    path: '/graphql',
    maxSubscriptionsPerConnection: 20,
    keepAliveMs: 12_000,
    connectionInitTimeoutMs: 3_000,
    maxPayloadBytes: MAX_BODY_BYTES,
    validationRules: graphql.validationRules,
    maxTokens: REQUEST_LIMITS.maxTokens,
    hideSchema: !settings.introspectionEnabled,
    firstEventDeadlineMs: REQUEST_DEADLINE_MS,
    clientAddress,
    limits: {
      maxConnectionsPerAddress: settings.wsMaxConnectionsPerIp,
      subscribesPerSecondPerConnection: settings.wsSubscribeRatePerConnection,
      subscribesPerSecondPerAddress: settings.wsSubscribeRatePerIp,
      idleTimeoutMs: settings.wsIdleTimeoutMs,
      maxConnectionAgeMs: settings.wsMaxConnectionAgeMs,
    },
    onDependencyError: (dependency) => metrics.dependencyErrors.inc({ dependency }),
  });
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
      ['issuance writes', () => graph.writer.drained()],
      // What the last claims changed goes out before the publisher closes.
      ['stock updates', () => graph.stockFeed.flush()],
      ['connections', () => connections.close()],
    ],
    logger,
  );

  const port = (httpServer.address() as AddressInfo).port;
  const { models, redis, mongo } = connections;
  return { url: `http://127.0.0.1:${port}`, port, services, models, redis, mongo, metrics, reconciler: graph.reconciler, stop };
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // A drop opens thousands of connections in the same second: a deep accept queue keeps them.
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
