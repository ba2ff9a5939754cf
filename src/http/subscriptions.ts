/**
 * graphql-ws on the same HTTP server, port and path as POST /graphql, with the same schema and
 * the same context builder. Stock is public, so a token is optional; a token that is present
 * but invalid is refused at connection time (close code 4403).
 */
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { GraphQLError, specifiedRules, validate, type DocumentNode, type GraphQLSchema, type ValidationRule } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { buildContext, type GraphQLContext, type Services } from '../context';
import type { ClientAddress } from './client-address';

export interface SubscriptionServerOptions {
  httpServer: Server;
  schema: GraphQLSchema;
  services: Services;
  logger: Logger;
  path: string;
  /** Operations one connection may keep open at once. */
  maxSubscriptionsPerConnection: number;
  /** Ping interval; a client that misses a pong is dropped. */
  keepAliveMs: number;
  /** A socket that does not send connection_init within this time is closed (4408). */
  connectionInitTimeoutMs: number;
  maxPayloadBytes: number;
  /** The same depth, alias, cost and one-claim limits as POST /graphql. */
  validationRules: readonly ValidationRule[];
  /** The same client address as HTTP requests get (TRUSTED_PROXIES). */
  clientAddress: ClientAddress;
}

/** The socket is for watching stock: queries and mutations (claims) go over HTTP. */
const subscriptionsOnly: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation !== 'subscription') {
      context.reportError(new GraphQLError('only subscriptions are served over WebSocket; send queries and mutations to POST /graphql', { nodes: [node] }));
    }
  },
});

const COMPLETE_GRACE_MS = 1000;

/** Distinct subscription documents whose validation is remembered. */
const VALIDATED_DOCUMENTS_MAX = 500;

interface ConnectionState {
  context?: GraphQLContext;
  operations: Set<string>;
}

export function attachSubscriptions(options: SubscriptionServerOptions): { dispose(): Promise<void> } {
  const wsServer = new WebSocketServer({ server: options.httpServer, path: options.path, maxPayload: options.maxPayloadBytes });
  const state = new WeakMap<object, ConnectionState>();
  const stateOf = (extra: object) => {
    let found = state.get(extra);
    if (!found) state.set(extra, (found = { operations: new Set() }));
    return found;
  };

  const rules = [...specifiedRules, ...options.validationRules, subscriptionsOnly];
  // Validation depends on the schema and the document's text alone, and every watcher of a drop
  // sends the same text: validating each one cost about 0.7 ms of the 1.8 ms a subscription cost
  // the service, so 10,000 reconnecting watchers took seconds of CPU. Apollo keeps validated
  // documents for the same reason.
  const validated = new LRUCache<string, readonly GraphQLError[]>({ max: VALIDATED_DOCUMENTS_MAX });
  const validateOnce = (schema: GraphQLSchema, document: DocumentNode): readonly GraphQLError[] => {
    const source = document.loc?.source.body;
    const known = source === undefined ? undefined : validated.get(source);
    if (known) return known;
    const errors = validate(schema, document, rules);
    if (source !== undefined) validated.set(source, errors);
    return errors;
  };

  let openOperations = 0;
  let allCompleted: (() => void) | undefined;
  const cleanup = useServer<Record<string, unknown> | undefined>(
    {
      schema: options.schema,
      validate: validateOnce,
      connectionInitWaitTimeout: options.connectionInitTimeoutMs,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        const context = buildContext(options.services, {
          authorization: typeof authorization === 'string' ? authorization : undefined,
          clientIp: options.clientAddress(ctx.extra.request),
          requestId: randomUUID(),
        });
        if (context.authError) return false;
        stateOf(ctx.extra).context = context;
        return true;
      },
      context: (ctx) => stateOf(ctx.extra).context!,
      onSubscribe: (ctx, id) => {
        const operations = stateOf(ctx.extra).operations;
        if (operations.size >= options.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`at most ${options.maxSubscriptionsPerConnection} subscriptions per connection`, {
              extensions: { code: 'BAD_USER_INPUT' },
            }),
          ];
        }
        operations.add(id);
        openOperations += 1;
      },
      onComplete: (ctx, id) => {
        if (!stateOf(ctx.extra).operations.delete(id)) return;
        openOperations -= 1;
        if (openOperations === 0) allCompleted?.();
      },
      onError: (_ctx, id, _payload, errors) => options.logger.debug({ id, errors: errors.map((e) => e.message) }, 'subscription error'),
    },
    wsServer,
    options.keepAliveMs,
  );

  return {
    /** Call after the stock streams have ended: waits (briefly) for their `complete` messages to go out. */
    dispose: async () => {
      if (openOperations > 0) {
        await new Promise<void>((resolve) => {
          allCompleted = resolve;
          setTimeout(resolve, COMPLETE_GRACE_MS).unref();
        });
      }
      // graphql-ws sends `complete` right after onComplete returns: let those frames go out first.
      await new Promise((resolve) => setImmediate(resolve));
      // Closes every socket (1001) and the WebSocket server itself.
      await cleanup.dispose();
    },
  };
}
