/**
 * GraphQL over HTTP: the executable schema, Apollo Server with the request limits and error
 * masking, the compiled fast path, and the POST /graphql handler that uses them.
 */
import type http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLFormattedError, GraphQLSchema, ValidationRule } from 'graphql';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../context';
import { failedDependency, toClientError } from '../errors';
import { CompiledOperations } from '../http/compiled-operations';
import { createGraphQLHandler, receiveBody } from '../http/graphql-handler';
import { KnownDocuments, publicCostRule, requestLimits } from '../http/request-limits';
import { logRequestFailures, requestLoggingPlugin } from '../http/request-logging';
import { subscriptionsOverHttpRefused } from '../http/subscriptions-over-http';
import type { Metrics } from '../metrics';
import { resolvers } from '../resolvers';
import { typeDefs } from '../schema';

export const MAX_BODY_BYTES = 64 * 1024;
/** graphql-js's hints: `Did you mean "x"?`, `Did you mean the enum value "X"?`, `Did you mean "a" or "b"?`. */
const SUGGESTION = /Did you mean .+/;
const SUGGESTION_MASK = '[Suggestion hidden]';
/**
 * A request body not complete this long after the request arrived is answered 408 and its
 * connection cut. A claim's body (~200 bytes) comes with its headers; 64 KB at a slow mobile
 * link's 50 KB/s takes about 1.3 s. What is left of the contract's 3 s covers the rest.
 */
export const BODY_READ_TIMEOUT_MS = 1500;

export interface GraphQLServer {
  schema: GraphQLSchema;
  apollo: ApolloServer<GraphQLContext>;
  /** The same depth, alias, cost and one-claim limits for the WebSocket. */
  validationRules: readonly ValidationRule[];
  /** Answers POST /graphql, its body read whole, within `deadlineMs`. */
  handle: ReturnType<typeof createGraphQLHandler>;
  /** Reads a request's body under the size limit and BODY_READ_TIMEOUT_MS, or answers 413/408 itself. */
  receiveBody: (req: IncomingMessage, res: ServerResponse) => Promise<string | undefined>;
}

export interface GraphQLServerOptions {
  httpServer: http.Server;
  introspectionEnabled: boolean;
  compiledOperationsMax: number;
  metrics: Metrics;
  logger: Logger;
  context: (req: IncomingMessage, releaseSlot?: () => void) => GraphQLContext;
  /** A document Apollo has not accepted before, from this request's address: ms to wait when refused (READ limits). */
  newDocumentFrom?: (req: IncomingMessage) => number | undefined;
}

export async function startGraphQLServer(options: GraphQLServerOptions): Promise<GraphQLServer> {
  const { metrics, logger } = options;
  const schema = makeExecutableSchema<GraphQLContext>({ typeDefs, resolvers });
  const limits = requestLimits({ hideSchema: !options.introspectionEnabled });
  const hideSchema = !options.introspectionEnabled;
  const formatError = (given: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // Without introspection, no answer names the schema: "Did you mean ...?" hints of every kind
    // (fields, arguments, types, enum values in literals and variables) go, on both paths.
    const formatted = hideSchema && SUGGESTION.test(given.message) ? { ...given, message: given.message.replace(SUGGESTION, SUGGESTION_MASK) } : given;
    const original = unwrapResolverError(error);
    const dependency = failedDependency(original);
    if (dependency) metrics.dependencyErrors.inc({ dependency });
    const code = formatted.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR') return formatted;
    // Logged with its request id by logRequestFailures; the client sees only the code.
    const mapped = toClientError(original);
    return { message: mapped.message, path: formatted.path, extensions: { code: mapped.extensions.code } };
  };
  const knownDocuments = new KnownDocuments();
  const compiledOperations = options.compiledOperationsMax > 0 ? new CompiledOperations(schema, options.compiledOperationsMax) : undefined;
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: options.introspectionEnabled,
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    ...limits,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: options.httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      // Nothing here is cacheable (claims are mutations, stock is live), and the plugin's
      // per-field hook made Apollo wrap every resolver: a few percent of each claim's CPU.
      ApolloServerPluginCacheControlDisabled(),
      requestLoggingPlugin(logger),
      ...limits.plugins,
      subscriptionsOverHttpRefused('/graphql'),
      ...(compiledOperations ? [compiledOperations.plugin()] : []),
      knownDocuments.plugin(),
    ],
    formatError,
  });
  await apollo.start();

  const newDocumentFrom = options.newDocumentFrom;
  const handle = createGraphQLHandler({
    apollo,
    newDocument: newDocumentFrom && ((req, query) => (knownDocuments.has(query) ? undefined : newDocumentFrom(req))),
    context: options.context,
    compiled: compiledOperations && {
      operations: compiledOperations,
      formatError,
      onErrors: (context, operationName, errors) => logRequestFailures(logger, { requestId: context.requestId, operationName, userId: context.viewer?.id, errors }),
      onAnswered: (path) => metrics.graphqlRequests.add(path),
    },
  });
  const limitsOfBody = { maxBytes: MAX_BODY_BYTES, timeoutMs: BODY_READ_TIMEOUT_MS };
  // Subscriptions (public, over WebSocket) are held to the everyone-bound of the cost limit.
  return {
    schema,
    apollo,
    validationRules: [...(limits.validationRules ?? []), publicCostRule],
    handle,
    receiveBody: (req, res) => receiveBody(req, res, limitsOfBody),
  };
}
