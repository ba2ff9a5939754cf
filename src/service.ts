/**
 * The composition root: `main.ts` and the integration tests both start the service through
 * `startService`, which reads as its parts, in order: connections, the services graph, the
 * HTTP front with GraphQL and its routes, subscriptions on the same port, and the graceful stop.
 * Each part lives in `composition/`.
 */
import type { AddressInfo } from 'node:net';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import type { Services } from './context';
import type { Reconciler } from './claims/reconciler';
import { openConnections } from './composition/connections';
import { gracefulStop } from './composition/graceful-stop';
import { startGraphQLServer } from './composition/graphql-server';
import { admissionControl, attachRoutes, createHttpServer, metricsEndpoints, requestContext } from './composition/http-front';
import { buildServices } from './composition/services';
import type { ServiceSettings } from './composition/settings';
import { attachWebSocket } from './composition/websocket';
import { closeNow, listenOn } from './http/metrics-endpoint';
import type { Metrics } from './metrics';
import type { Models } from './mongo/models';
import type { RedisClient } from './redis/client';

export type { ServiceSettings } from './composition/settings';

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

  const httpServer = createHttpServer();
  const { clientAddress, contextFor, newDocumentFrom } = requestContext(settings, services);
  const graphql = await startGraphQLServer({ httpServer, ...settings, metrics, logger, context: contextFor, newDocumentFrom });
  const { admission, loopLag } = admissionControl(settings, metrics, () => services.openingDraw.windowOpen());
  const metricsAt = metricsEndpoints(settings, metrics, logger);
  attachRoutes(httpServer, { settings, services, connections, graphql, admission, metricsOnMainPort: metricsAt.onMainPort, logger });

  try {
    // A drop opens thousands of connections in the same second: a deep accept queue keeps them.
    await listenOn(httpServer, settings.port, settings.host, 'PORT', 4096);
    if (metricsAt.server) await listenOn(metricsAt.server, settings.metricsPort!, settings.host, 'METRICS_PORT');
  } catch (error) {
    loopLag.stop();
    if (metricsAt.server) await closeNow(metricsAt.server);
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
      ['metrics port', () => metricsAt.server && closeNow(metricsAt.server)],
      ['issuance writes', () => graph.writer.drained()],
      // What the last claims changed goes out before the publisher closes.
      ['stock updates', () => graph.stockFeed.flush()],
      ['connections', () => connections.close()],
    ],
    logger,
  );

  const port = (httpServer.address() as AddressInfo).port;
  const { models, redis, mongo } = connections;
  const metricsPort = metricsAt.server && (metricsAt.server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, metricsPort, services, models, redis, mongo, metrics, reconciler: graph.reconciler, stop };
}
