/**
 * The contract's error codes, made in one place. Lower-level failures (Redis, MongoDB, JWT,
 * timeouts) are mapped here so clients see a coded GraphQLError and never an internal message.
 */
import { GraphQLError } from 'graphql';

export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  RATE_LIMITED: 'RATE_LIMITED',
  BAD_REQUEST: 'BAD_REQUEST',
  ISSUANCE_NOT_ACTIVE: 'ISSUANCE_NOT_ACTIVE',
  ISSUANCE_EXPIRED: 'ISSUANCE_EXPIRED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

function coded(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

export const unauthenticated = (reason = 'a valid bearer token is required') => coded(ErrorCode.UNAUTHENTICATED, reason);
export const forbidden = () => coded(ErrorCode.FORBIDDEN, 'this operation needs an admin token');
export const badUserInput = (message: string, field?: string) =>
  coded(ErrorCode.BAD_USER_INPUT, message, field ? { field } : {});
export const notFound = (what: string) => coded(ErrorCode.NOT_FOUND, `${what} not found`);
export const serviceUnavailable = (message = 'the service is temporarily unavailable, please retry') =>
  coded(ErrorCode.SERVICE_UNAVAILABLE, message);
export const issuanceNotActive = (message: string) => coded(ErrorCode.ISSUANCE_NOT_ACTIVE, message);
export const issuanceExpired = () => coded(ErrorCode.ISSUANCE_EXPIRED, "the coupon's redeemBy has passed");
export const rateLimited = (retryAfterMs: number) =>
  coded(ErrorCode.RATE_LIMITED, 'too many claims, slow down', { retryAfterMs });
/** The per-address or per-user budget of GraphQL requests is spent (src/access/read-limiter.ts). */
export const readsLimited = (retryAfterMs: number, message = 'too many requests, slow down') => coded(ErrorCode.RATE_LIMITED, message, { retryAfterMs });
/** The same for Apollo to answer: HTTP 429 with retry-after. */
export const readsLimitedOverHttp = (retryAfterMs: number, message?: string) =>
  coded(ErrorCode.RATE_LIMITED, readsLimited(retryAfterMs, message).message, { retryAfterMs, http: { status: 429, headers: retryAfterHeader(retryAfterMs) } });
export const retryAfterSeconds = (retryAfterMs: number) => String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
const retryAfterHeader = (retryAfterMs: number) => new Map([['retry-after', retryAfterSeconds(retryAfterMs)]]);

/** A request the transport cannot serve; `httpStatus` is what POST /graphql answers with. */
export const badRequest = (message: string, httpStatus = 400) => coded(ErrorCode.BAD_REQUEST, message, { http: { status: httpStatus } });

/** A dependency did not answer in time or at all; carries the cause for logs, not for clients. */
export class DependencyError extends Error {
  override name = 'DependencyError';
  constructor(
    readonly dependency: 'redis' | 'mongodb',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
}

/**
 * Redis failures by message: timeouts and lost connections, a Redis loading or busy, and a Redis
 * Cluster between two slot maps (a failover: ioredis's auto-pipelining refuses keys of two slot
 * groups, redirections run out, the slot map cannot be refreshed), all passing.
 */
const REDIS_FAILURE =
  /Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|max retries per request|LOADING|BUSY|slots allocation group|Cluster redirections|refresh slots cache|startup nodes|CLUSTERDOWN|TRYAGAIN/i;

/** Which dependency an error came from, when it is an infrastructure failure. */
export function failedDependency(error: unknown): 'redis' | 'mongodb' | undefined {
  if (error instanceof DependencyError) return error.dependency;
  if (!(error instanceof Error)) return undefined;
  if (/^Mongo|^Mongoose/.test(error.name) || /^Mongo|^Mongoose/.test(error.constructor?.name ?? '')) return 'mongodb';
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'ReplyError' || error.name === 'ClusterAllFailedError' || REDIS_FAILURE.test(error.message)) return 'redis';
  return undefined;
}

/**
 * GraphQL's own refusal of an argument while it executes a field (graphql-js's getArgumentValues,
 * graphql-jit's compiled equivalent). Validation lets a nullable variable with a default fill a
 * required argument (`query($id: ID = "…") { coupon(id: $id) }`), and the spec then makes an
 * explicit `null` a field error at run time: the client's input, not a fault of the service.
 * The engines give these errors no code, so they are recognised by their fixed wording.
 */
const ARGUMENT_ERROR = /^Argument "[^"]+" (?:of (?:non-null |required )?type "[^"]+" )?(?:must not be null|was provided the variable|was not provided|has invalid value)/;

export function isArgumentError(error: unknown): error is GraphQLError {
  return error instanceof GraphQLError && !error.extensions?.code && ARGUMENT_ERROR.test(error.message);
}

/**
 * Maps anything thrown below the resolvers to what a client may see: coded errors pass,
 * infrastructure failures and timeouts become SERVICE_UNAVAILABLE, anything else is an
 * internal error whose message stays in the logs.
 */
export function toClientError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError && error.extensions?.code) return error;
  if (isArgumentError(error)) return badUserInput(error.message);
  if (error instanceof DeadlineExceededError || failedDependency(error)) return serviceUnavailable();
  return new GraphQLError('internal error', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

/** Runs `work` but gives up after `ms`; the work itself is not cancelled. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  // One promise and one timer per call (not Promise.race over a second promise): every claim
  // passes through two of these.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExceededError(`${what} took longer than ${ms} ms`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
