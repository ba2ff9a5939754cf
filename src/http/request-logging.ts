/**
 * One structured log line per GraphQL request that failed for a reason an operator should see
 * (a dependency down, a timeout, a bug), tagged with the request id that is also returned to
 * the client in `x-request-id`. Business outcomes and client mistakes are not logged.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import type { GraphQLContext } from '../context';
import { DeadlineExceededError, failedDependency, isArgumentError } from '../errors';

const CLIENT_CODES = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'RATE_LIMITED', 'GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_REQUEST', 'PERSISTED_QUERY_NOT_FOUND', 'OPERATION_RESOLUTION_FAILURE']);

export interface FailedRequest {
  requestId: string;
  operationName?: string | null;
  userId?: string;
  errors: readonly GraphQLError[];
}

/** Logs the errors of one request that an operator should see; says nothing about client mistakes. */
export function logRequestFailures(logger: Logger, request: FailedRequest): void {
  const serious = request.errors.filter((error) => !CLIENT_CODES.has(String(error.extensions?.code ?? '')) && !isArgumentError(unwrapResolverError(error)));
  if (serious.length === 0) return;
  logger.error(
    {
      requestId: request.requestId,
      operationName: request.operationName,
      userId: request.userId,
      errors: serious.map((error) => {
        const unwrapped = unwrapResolverError(error);
        // Services attach the infrastructure failure behind a coded error as originalError.
        const original = unwrapped instanceof GraphQLError && unwrapped.originalError ? unwrapped.originalError : unwrapped;
        return {
          path: error.path?.join('.'),
          code: error.extensions?.code,
          dependency: failedDependency(original),
          message: original instanceof Error ? original.message : String(original),
          // A stack only helps for bugs, not for a dependency that is down or slow.
          stack: original instanceof Error && !failedDependency(original) && !(original instanceof DeadlineExceededError) ? original.stack : undefined,
        };
      }),
    },
    'graphql request failed',
  );
}

export function requestLoggingPlugin(logger: Logger): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart({ contextValue }) {
      return {
        async willSendResponse({ response }) {
          response.http.headers.set('x-request-id', contextValue.requestId);
        },
        async didEncounterErrors({ errors, operationName }) {
          logRequestFailures(logger, { requestId: contextValue.requestId, operationName, userId: contextValue.viewer?.id, errors });
        },
      };
    },
  };
}
