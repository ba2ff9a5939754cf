/**
 * graphql-ws on the main HTTP server, with the same schema, limits and masking as POST /graphql
 * and the per-address WebSocket limits from the configuration.
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Services } from '../context';
import type { ClientAddress } from '../http/client-address';
import { REQUEST_LIMITS } from '../http/request-limits';
import { attachSubscriptions } from '../http/subscriptions';
import type { Metrics } from '../metrics';
import { MAX_BODY_BYTES, type GraphQLServer } from './graphql-server';
import { REQUEST_DEADLINE_MS } from './http-routes';

export interface WebSocketParts {
  httpServer: http.Server;
  graphql: GraphQLServer;
  services: Services;
  metrics: Metrics;
  clientAddress: ClientAddress;
  logger: Logger;
}

export function attachWebSocket(settings: Config, parts: WebSocketParts): { dispose(): Promise<void> } {
  return attachSubscriptions({
    httpServer: parts.httpServer,
    schema: parts.graphql.schema,
    services: parts.services,
    logger: parts.logger,
    path: '/graphql',
    maxSubscriptionsPerConnection: 20,
    keepAliveMs: 12_000,
    connectionInitTimeoutMs: 3_000,
    maxPayloadBytes: MAX_BODY_BYTES,
    validationRules: parts.graphql.validationRules,
    maxTokens: REQUEST_LIMITS.maxTokens,
    hideSchema: !settings.introspectionEnabled,
    firstEventDeadlineMs: REQUEST_DEADLINE_MS,
    clientAddress: parts.clientAddress,
    limits: {
      maxConnectionsPerAddress: settings.wsMaxConnectionsPerIp,
      subscribesPerSecondPerConnection: settings.wsSubscribeRatePerConnection,
      subscribesPerSecondPerAddress: settings.wsSubscribeRatePerIp,
      idleTimeoutMs: settings.wsIdleTimeoutMs,
      maxConnectionAgeMs: settings.wsMaxConnectionAgeMs,
    },
    onDependencyError: (dependency) => parts.metrics.dependencyErrors.inc({ dependency }),
  });
}
