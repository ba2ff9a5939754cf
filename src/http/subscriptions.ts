/**
 * graphql-ws on the same HTTP server, port and path as POST /graphql, with the same schema, the
 * same context builder and the same limits: tokens at parse time, depth, aliases, cost, masked
 * suggestions, a deadline and coded, masked errors. Stock is public, so a token is optional; a
 * token that is present but invalid is refused at connection time (close code 4403).
 *
 * What one client may hold is bounded here: connections per client address (refused at the
 * upgrade with HTTP 429), subscriptions per connection, subscribe messages per second per
 * connection and per address, time without a subscription, and a connection's whole life.
 *
 * The socket adapter is ours (graphql-ws's `makeServer` on `ws`), not `graphql-ws/use/ws`: that
 * adapter prints every socket error and every failed message with console.error, a stack trace
 * per bad frame that any anonymous client can provoke; here they go to pino, rate-limited.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import { CloseCode, handleProtocols, makeServer, MessageType, type SubscribePayload } from 'graphql-ws';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { buildContext, type GraphQLContext, type Services } from '../context';
import { failedDependency, serviceUnavailable, toClientError, withDeadline } from '../errors';
import { addressKey } from '../access/rate-limiter';
import type { ClientAddress } from './client-address';
import { requestTarget } from './request-target';
import { subscribeShared, type SendPayload } from './shared-subscription';
import { textFrame } from './websocket-frame';

/** What one client may hold on one instance; 0 turns a limit off. */
export interface WebSocketLimits {
  /** Open connections from one client address (an IPv6 /56). */
  maxConnectionsPerAddress: number;
  /** Subscribe messages per second on one connection, after a burst that fills every slot and a second's worth more. */
  subscribesPerSecondPerConnection: number;
  /** Subscribe messages per second from one client address, over all its connections. */
  subscribesPerSecondPerAddress: number;
  /** A connection without a subscription for this long is closed (1000). */
  idleTimeoutMs: number;
  /** A connection is closed (1000) after this long, spread over its last tenth; clients reconnect. */
  maxConnectionAgeMs: number;
}

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
  /** The same token limit as POST /graphql, applied while parsing. */
  maxTokens: number;
  /** When introspection is off: no introspection, and no "Did you mean" naming the schema's fields. */
  hideSchema: boolean;
  /** Longest a subscribe waits for its first event (the current stock) before SERVICE_UNAVAILABLE. */
  firstEventDeadlineMs: number;
  /** The same client address as HTTP requests get (TRUSTED_PROXIES). */
  clientAddress: ClientAddress;
  limits: WebSocketLimits;
  /** A dependency failed a subscribe (for the metrics). */
  onDependencyError?: (dependency: 'redis' | 'mongodb') => void;
}

const COMPLETE_GRACE_MS = 1000;

/** Below this many bytes waiting for a client, a message is written without waiting for the write. */
const SEND_HIGH_WATER_BYTES = 16 * 1024;

/** The end of a `next` message whose payload is written in between. */
const CLOSING_BRACE = Buffer.from('}');

/** Distinct subscription documents kept parsed and validated, by total length of their text. */
const PREPARED_DOCUMENTS_MAX_CHARS = 2 * 1024 * 1024;

/** One log line per kind of client mistake per interval, with how many were not logged. */
const CLIENT_ERROR_LOG_INTERVAL_MS = 10_000;

/** Armor's mask, the one POST /graphql shows in place of a suggestion. */
const SUGGESTION_MASK = '[Suggestion hidden]';

/** The socket is for watching stock: queries and mutations (claims) go over HTTP. */
const subscriptionsOnly: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation !== 'subscription') {
      context.reportError(new GraphQLError('only subscriptions are served over WebSocket; send queries and mutations to POST /graphql', { nodes: [node] }));
    }
  },
});

/**
 * A subscription's root field cannot be skipped: graphql-js 16 throws a TypeError executing one
 * (the spec has since made it a validation error).
 */
const unconditionalRootField: ValidationRule = (context) => {
  const check = (selectionSet: SelectionSetNode, fragments: Set<string>) => {
    for (const selection of selectionSet.selections) {
      if (selection.directives?.some((d) => d.name.value === 'skip' || d.name.value === 'include')) {
        context.reportError(new GraphQLError("@skip and @include are not allowed on a subscription's root field", { nodes: [selection] }));
      }
      if (selection.kind === Kind.INLINE_FRAGMENT) check(selection.selectionSet, fragments);
      if (selection.kind === Kind.FRAGMENT_SPREAD && !fragments.has(selection.name.value)) {
        fragments.add(selection.name.value);
        const fragment = context.getFragment(selection.name.value);
        if (fragment) check(fragment.selectionSet, fragments);
      }
    }
  };
  return {
    OperationDefinition(node) {
      if (node.operation === 'subscription') check(node.selectionSet, new Set());
    },
  };
};

/** Tokens refilled continuously at `perSecond`, up to `burst`. */
class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** 0 when a token was taken, else the milliseconds until one is there. */
  take(): number {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }
}

interface AddressState {
  connections: number;
  subscribes?: TokenBucket;
}

interface ConnectionState {
  address: AddressState;
  context?: GraphQLContext;
  /** Subscriptions admitted and not yet completed: each holds a slot. */
  operations: Set<string>;
  subscribes?: TokenBucket;
  idleTimer?: NodeJS.Timeout;
  socket: WebSocket;
  /** The TCP socket under `socket`, the one the upgrade came on. */
  transport: Duplex;
}

interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
  connection: ConnectionState;
}

interface Prepared {
  document?: DocumentNode;
  errors: readonly GraphQLError[];
}

const coded = (error: GraphQLError, code: string) =>
  new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { ...error.extensions, code } });

function isAsyncIterable(value: unknown): value is AsyncIterableIterator<ExecutionResult> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** Logs at most one line per kind per interval, saying how many it left out. */
function throttledLog(logger: Logger): (kind: string, fields: Record<string, unknown>) => void {
  const kinds = new Map<string, { until: number; suppressed: number }>();
  return (kind, fields) => {
    const now = Date.now();
    const seen = kinds.get(kind);
    if (seen && now < seen.until) {
      seen.suppressed += 1;
      return;
    }
    kinds.set(kind, { until: now + CLIENT_ERROR_LOG_INTERVAL_MS, suppressed: 0 });
    logger.info({ kind, ...fields, suppressedBefore: seen?.suppressed ?? 0 }, 'websocket client error');
  };
}

export function attachSubscriptions(options: SubscriptionServerOptions): { dispose(): Promise<void> } {
  const { logger, limits } = options;
  const logClientError = throttledLog(logger);
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, perMessageDeflate: false, handleProtocols });
  const addresses = new Map<string, AddressState>();
  const rules = [
    ...specifiedRules,
    ...options.validationRules,
    ...(options.hideSchema ? [NoSchemaIntrospectionCustomRule] : []),
    subscriptionsOnly,
    unconditionalRootField,
  ];

  const hide = (message: string) => (options.hideSchema ? message.replace(/Did you mean .+/g, SUGGESTION_MASK) : message);

  // Every watcher of a drop sends the same text: parsing and validating it once (as Apollo does
  // for HTTP) keeps a subscription cheap. Tokens are counted while parsing, so a document past the
  // limit costs a lexer's pass over at most `maxTokens` tokens, never a validation.
  const prepared = new LRUCache<string, Prepared>({ maxSize: PREPARED_DOCUMENTS_MAX_CHARS, sizeCalculation: (_, text) => text.length + 1 });
  const prepare = (text: unknown): Prepared => {
    if (typeof text !== 'string') return { errors: [new GraphQLError('a subscribe message needs a query', { extensions: { code: 'BAD_REQUEST' } })] };
    const known = prepared.get(text);
    if (known) return known;
    let result: Prepared;
    try {
      const document = parse(text, { maxTokens: options.maxTokens });
      const errors = validate(options.schema, document, rules).map((error) => coded(error, 'GRAPHQL_VALIDATION_FAILED'));
      result = { document, errors };
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      result = { errors: [coded(error, 'GRAPHQL_PARSE_FAILED')] };
    }
    prepared.set(text, result);
    return result;
  };

  /** What a client sees of an error: coded errors keep their message, anything else is mapped as on HTTP. */
  const formatError = (error: GraphQLError, id: string): GraphQLFormattedError => {
    const code = error.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR') return { ...error.toJSON(), message: hide(error.message) };
    // graphql-js's own errors (variables that do not coerce) carry no original error.
    if (!error.originalError) return { message: hide(error.message), locations: error.locations, extensions: { code: 'BAD_USER_INPUT' } };
    const dependency = failedDependency(error.originalError);
    if (dependency) options.onDependencyError?.(dependency);
    const mapped = toClientError(error.originalError);
    logger.warn({ id, dependency, err: error.originalError.message }, 'subscription failed');
    return { message: mapped.message, path: error.path, extensions: { code: mapped.extensions.code } };
  };

  // The first event (the current stock) comes with the subscribe itself: it gets the deadline an
  // HTTP request gets. A late stream is closed as soon as it arrives.
  const subscribeWithin = async (args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> => {
    const started = subscribeShared(args, senders.get(args)).catch((error: unknown) => ({
      errors: [error instanceof GraphQLError ? error : new GraphQLError('subscribe failed', { originalError: error as Error })],
    }));
    try {
      return await withDeadline(started, options.firstEventDeadlineMs, 'subscribe');
    } catch {
      void started.then((late) => {
        if (isAsyncIterable(late)) void late.return?.();
      });
      logger.warn({ deadlineMs: options.firstEventDeadlineMs }, 'subscription got no first event in time');
      return { errors: [serviceUnavailable()] };
    }
  };

  /**
   * Each subscription's direct sender (shared-subscription.ts): its `next` message, byte for byte
   * as graphql-ws writes it, framed in one buffer (websocket-frame.ts) and written to the socket
   * `ws` writes to, while the client reads. Otherwise graphql-ws sends it, once the client's writes
   * drain. Writes keep their order: `ws` queues nothing of its own without an extension such as
   * compression (off here; a connection with one has no direct sender). Only results without
   * errors are sent this way, which `onNext` below passes on unchanged.
   */
  const senders = new WeakMap<ExecutionArgs, SendPayload>();
  const directSender = (connection: ConnectionState, id: string): SendPayload => {
    const { socket, transport } = connection;
    const head = Buffer.from(`{"id":${JSON.stringify(id)},"type":"${MessageType.Next}","payload":`);
    return (payload) => {
      if (socket.readyState !== socket.OPEN || socket.bufferedAmount >= SEND_HIGH_WATER_BYTES) return false;
      transport.write(textFrame([head, payload, CLOSING_BRACE]));
      return true;
    };
  };

  let openOperations = 0;
  let allCompleted: (() => void) | undefined;
  const armIdle = (connection: ConnectionState) => {
    if (limits.idleTimeoutMs <= 0 || connection.operations.size > 0 || connection.socket.readyState > connection.socket.OPEN) return;
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => connection.socket.close(1000, 'idle: no subscription'), limits.idleTimeoutMs).unref();
  };
  const release = (connection: ConnectionState, id: string) => {
    if (!connection.operations.delete(id)) return;
    openOperations -= 1;
    armIdle(connection);
    if (openOperations === 0) allCompleted?.();
  };
  const refuse = (message: string, code: string, extensions: Record<string, unknown> = {}) => [new GraphQLError(message, { extensions: { code, ...extensions } })];

  const server = makeServer<Record<string, unknown> | undefined, Extra>({
    schema: options.schema,
    connectionInitWaitTimeout: options.connectionInitTimeoutMs,
    onConnect: (ctx) => {
      const authorization = ctx.connectionParams?.authorization;
      const context = buildContext(options.services, {
        authorization: typeof authorization === 'string' ? authorization : undefined,
        clientIp: options.clientAddress(ctx.extra.request),
        requestId: randomUUID(),
      });
      if (context.authError) return false;
      ctx.extra.connection.context = context;
      return true;
    },
    onSubscribe: (ctx, id, payload: SubscribePayload) => {
      const connection = ctx.extra.connection;
      const wait = Math.max(connection.subscribes?.take() ?? 0, connection.address.subscribes?.take() ?? 0);
      if (wait > 0) return refuse('too many subscriptions started, slow down', 'RATE_LIMITED', { retryAfterMs: wait });
      if (connection.operations.size >= options.maxSubscriptionsPerConnection) {
        return refuse(`at most ${options.maxSubscriptionsPerConnection} subscriptions per connection`, 'BAD_USER_INPUT');
      }
      const { document, errors } = prepare(payload.query);
      if (errors.length > 0 || !document) return [...errors];
      if (!getOperationAST(document, payload.operationName)) return refuse('the operation to run cannot be identified: name it in operationName', 'BAD_USER_INPUT');
      // From here graphql-ws always ends in onComplete (or the socket closes): the slot is given back.
      connection.operations.add(id);
      openOperations += 1;
      clearTimeout(connection.idleTimer);
      const args: ExecutionArgs = {
        schema: options.schema,
        document,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue: connection.context,
      };
      if (connection.socket.extensions === '') senders.set(args, directSender(connection, id));
      return args;
    },
    subscribe: subscribeWithin,
    onNext: (_ctx, id, _payload, _args, result) =>
      result.errors ? { ...result, errors: result.errors.map((error) => formatError(error, id)) } : undefined,
    onError: (_ctx, id, _payload, errors) => errors.map((error) => formatError(error, id)),
    onComplete: (ctx, id) => release(ctx.extra.connection, id),
  });

  const refuseUpgrade = (socket: Duplex, status: number, reason: string) => {
    socket.once('finish', () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n${status === 429 ? 'Retry-After: 10\r\n' : ''}\r\n`);
  };

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (requestTarget(request.url).pathname !== options.path) return refuseUpgrade(socket, 400, 'Bad Request');
    const key = addressKey(options.clientAddress(request));
    const address = addresses.get(key) ?? { connections: 0 };
    if (limits.maxConnectionsPerAddress > 0 && address.connections >= limits.maxConnectionsPerAddress) {
      logClientError('connections per address', { address: key, limit: limits.maxConnectionsPerAddress });
      return refuseUpgrade(socket, 429, 'Too Many Requests');
    }
    // Counted now, before the handshake's reply, so a burst of upgrades cannot pass the cap together.
    address.connections += 1;
    if (!address.subscribes && limits.subscribesPerSecondPerAddress > 0) {
      address.subscribes = new TokenBucket(limits.subscribesPerSecondPerAddress, limits.subscribesPerSecondPerAddress);
    }
    addresses.set(key, address);
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      address.connections -= 1;
      if (address.connections === 0) addresses.delete(key);
    };
    // A handshake that fails (bad headers, the socket gone) never reaches the callback.
    socket.once('close', uncount);
    wsServer.handleUpgrade(request, socket, head, (ws) => opened(ws, socket, request, address, uncount));
  };

  const opened = (socket: WebSocket, transport: Duplex, request: IncomingMessage, address: AddressState, uncount: () => void) => {
    const connection: ConnectionState = {
      address,
      operations: new Set(),
      socket,
      transport,
      subscribes:
        limits.subscribesPerSecondPerConnection > 0
          ? new TokenBucket(limits.subscribesPerSecondPerConnection, options.maxSubscriptionsPerConnection + limits.subscribesPerSecondPerConnection)
          : undefined,
    };
    armIdle(connection);
    const maxAge =
      limits.maxConnectionAgeMs > 0
        ? setTimeout(() => socket.close(1000, 'max connection age: please reconnect'), limits.maxConnectionAgeMs * (0.9 + 0.1 * Math.random())).unref()
        : undefined;

    // Frames past maxPayload, bad UTF-8, protocol violations: ws closes the socket itself.
    socket.on('error', (error) => logClientError('socket', { err: error.message, address: request.socket.remoteAddress }));

    let pongWait: NodeJS.Timeout | undefined;
    const ping =
      options.keepAliveMs > 0
        ? setInterval(() => {
            if (socket.readyState !== socket.OPEN) return;
            pongWait = setTimeout(() => socket.terminate(), options.keepAliveMs);
            socket.once('pong', () => clearTimeout(pongWait));
            socket.ping();
          }, options.keepAliveMs)
        : undefined;

    const closed = server.opened(
      {
        protocol: socket.protocol,
        // graphql-ws hands a subscription its next update once this settles. While the client
        // reads (little is buffered) that is at once, with no callback and no promise per write:
        // work a hand-out to 10,000 watchers does not need. A client that does not read holds its
        // subscription until its writes drain, so it gets the newest update then, never a
        // backlog (LatestValueStream).
        send: (data) => {
          if (socket.readyState !== socket.OPEN) return;
          if (socket.bufferedAmount < SEND_HIGH_WATER_BYTES) return socket.send(data);
          return new Promise<void>((resolve, reject) => socket.send(data, (error) => (error ? reject(error) : resolve())));
        },
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data) => {
            handle(String(data)).catch((error: Error) => {
              logClientError('message', { err: error.message });
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      { socket, request, connection },
    );

    socket.once('close', (code, reason) => {
      clearTimeout(pongWait);
      clearInterval(ping);
      clearTimeout(maxAge);
      clearTimeout(connection.idleTimer);
      uncount();
      // Streams are ended by `closed` and complete through onComplete; whatever is left goes now.
      void closed(code, String(reason)).finally(() => [...connection.operations].forEach((id) => release(connection, id)));
    });
  };

  options.httpServer.on('upgrade', onUpgrade);

  return {
    /** Call after the stock streams have ended: waits (briefly) for their `complete` messages to go out. */
    dispose: async () => {
      options.httpServer.off('upgrade', onUpgrade);
      if (openOperations > 0) {
        await new Promise<void>((resolve) => {
          allCompleted = resolve;
          setTimeout(resolve, COMPLETE_GRACE_MS).unref();
        });
      }
      // graphql-ws sends `complete` right after onComplete returns: let those frames go out first.
      await new Promise((resolve) => setImmediate(resolve));
      for (const client of wsServer.clients) client.close(1001, 'Going away');
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
