/**
 * POST /graphql over Node's own http server, through Apollo's integration API
 * (executeHTTPGraphQLRequest), or, for a document Apollo has already accepted, through its
 * compiled form (compiled-operations.ts). No web framework: three routes do not need one, and
 * the claim path is shorter without it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer } from '@apollo/server';
import type { GraphQLError, GraphQLFormattedError } from 'graphql';
import type { GraphQLContext } from '../context';
import { DeadlineExceededError, readsLimited, retryAfterSeconds, serviceUnavailable, withDeadline } from '../errors';
import { asPlainRequest, formatResult, type CompiledOperations, type PlainRequest } from './compiled-operations';

export interface BodyLimits {
  maxBytes: number;
  /** From the request's arrival; a body not complete by then is answered 408 and its connection cut. */
  timeoutMs: number;
}

/**
 * Reads a request body whole, under a size limit and a deadline of its own, or answers the
 * request itself: 413 for a body over the limit, 408 for one not complete in time (a client
 * trickling a byte at a time). Resolves undefined when it answered, or when the client left.
 * Node's own requestTimeout is no help here: it is checked on a periodic sweep, and sockets
 * trickling a body lived 23 s against it.
 */
export function receiveBody(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (raw: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      resolve(raw);
    };
    const tooLarge = () => {
      settle(undefined);
      // Discard the rest instead of cutting the socket, so the client reads a 413, not a reset;
      // this connection ends with the answer.
      req.resume();
      res.setHeader('connection', 'close');
      sendJson(res, 413, { errors: [{ message: `request body larger than ${limits.maxBytes} bytes`, extensions: { code: 'BAD_REQUEST' } }] });
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) return tooLarge();
      chunks.push(chunk);
    };
    const onEnd = () => settle(Buffer.concat(chunks).toString('utf8'));
    const onGone = () => settle(undefined);
    const timer = setTimeout(() => {
      settle(undefined);
      if (res.headersSent || res.destroyed) return void req.socket.destroy();
      res.setHeader('connection', 'close');
      // Once the answer is out, the socket goes too: nothing more is read from it.
      res.once('finish', () => req.socket.destroy());
      sendJson(res, 408, { errors: [{ message: `request body not received within ${limits.timeoutMs} ms`, extensions: { code: 'BAD_REQUEST' } }] });
    }, limits.timeoutMs);

    if (Number(req.headers['content-length'] ?? 0) > limits.maxBytes) return tooLarge();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

export interface GraphQLHandlerOptions {
  apollo: ApolloServer<GraphQLContext>;
  /** Before Apollo parses a document it has not accepted before: ms to wait when its address may not send one now. */
  newDocument?: (req: IncomingMessage, query: string) => number | undefined;
  /** The request's context; `releaseSlot` gives its admission slot back (a claim held by an opening draw). */
  context: (req: IncomingMessage, releaseSlot?: () => void) => GraphQLContext;
  /** Documents Apollo has accepted, answered without its pipeline; with Apollo's formatting and request log. */
  compiled?: {
    operations: CompiledOperations;
    formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
    onErrors: (context: GraphQLContext, operationName: string | undefined, errors: readonly GraphQLError[]) => void;
    /** Which path answered each request. */
    onAnswered?: (path: 'compiled' | 'apollo') => void;
  };
}

/**
 * Answers a request whose body has been read whole (`raw`, see receiveBody). `deadlineMs` is per
 * request (what is left of its budget after the body and admission): whatever happens below,
 * the client has an answer by then (the contract allows 3 s). `releaseSlot`, when given, frees the
 * request's admission slot early; the context hands it to the resolvers.
 */
export function createGraphQLHandler(options: GraphQLHandlerOptions) {
  /**
   * The answer from the compiled form when there is one; undefined, with nothing run, when
   * Apollo has to answer (an unknown document, or a request-level error such as invalid
   * variables, which Apollo reports in its own way).
   */
  const runCompiled = async (req: IncomingMessage, request: PlainRequest, releaseSlot?: () => void): Promise<{ requestId: string; payload: string; retryAfterMs?: number } | undefined> => {
    const compiled = options.compiled!.operations.find(request.query, request.operationName);
    if (!compiled) return undefined;
    const context = options.context(req, releaseSlot);
    // Charged to the caller's budgets as Apollo's path charges it (request-limits.ts, pagedCostPlugin).
    const wait = context.services.reads.charge(context.clientIp, context.viewer?.id, options.compiled!.operations.costOf(compiled));
    if (wait !== undefined) return { requestId: context.requestId, retryAfterMs: wait, payload: formatResult({ errors: [readsLimited(wait)] }, options.compiled!.formatError) };
    const result = await compiled.query(undefined, context, request.variables);
    if (!('data' in result)) return undefined;
    if (result.errors?.length) options.compiled!.onErrors(context, request.operationName, result.errors);
    return { requestId: context.requestId, payload: formatResult(result, options.compiled!.formatError) };
  };

  return async (req: IncomingMessage, res: ServerResponse, raw: string, search: string, deadlineMs: number, releaseSlot?: () => void): Promise<void> => {
    let body: unknown = raw;
    if (raw && (req.headers['content-type'] ?? '').startsWith('application/json')) {
      try {
        body = JSON.parse(raw);
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
      }
    }
    try {
      const plain = options.compiled && req.method === 'POST' ? asPlainRequest(body, req.headers.accept) : undefined;
      const compiled = plain && (await withDeadline(runCompiled(req, plain, releaseSlot), deadlineMs, 'graphql request'));
      if (compiled) {
        options.compiled!.onAnswered?.('compiled');
        if (compiled.retryAfterMs !== undefined) res.setHeader('retry-after', retryAfterSeconds(compiled.retryAfterMs));
        res.writeHead(compiled.retryAfterMs === undefined ? 200 : 429, { 'x-request-id': compiled.requestId, 'content-type': plain.mediaType, 'content-length': Buffer.byteLength(compiled.payload) });
        res.end(compiled.payload);
        return;
      }
      const query = queryOf(body, search);
      const refusedFor = query === undefined ? undefined : options.newDocument?.(req, query);
      if (refusedFor !== undefined) return sendRefusal(res, refusedFor, 'too many new GraphQL documents from this address, slow down');
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const response = await withDeadline(
        options.apollo.executeHTTPGraphQLRequest({
          httpGraphQLRequest: { method: req.method!.toUpperCase(), headers, search, body },
          context: async () => options.context(req, releaseSlot),
        }),
        deadlineMs,
        'graphql request',
      );
      options.compiled?.onAnswered?.('apollo');
      for (const [name, value] of response.headers) res.setHeader(name, value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === 'complete') {
        res.end(response.body.string);
        return;
      }
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    } catch (error) {
      if (!(error instanceof DeadlineExceededError)) throw error;
      const unavailable = serviceUnavailable();
      sendJson(res, 503, { errors: [{ message: unavailable.message, extensions: unavailable.extensions }] });
    }
  };
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The document text of a POST body or a GET query string, if there is one. */
function queryOf(body: unknown, search: string): string | undefined {
  const query = typeof body === 'object' && body !== null ? (body as { query?: unknown }).query : search ? new URLSearchParams(search).get('query') : undefined;
  return typeof query === 'string' ? query : undefined;
}

/** RATE_LIMITED with HTTP 429 and retry-after. */
export function sendRefusal(res: ServerResponse, retryAfterMs: number, message?: string): void {
  const limited = readsLimited(retryAfterMs, message);
  res.setHeader('retry-after', retryAfterSeconds(retryAfterMs));
  sendJson(res, 429, { errors: [{ message: limited.message, extensions: limited.extensions }] });
}
