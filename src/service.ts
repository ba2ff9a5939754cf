/**
 * The composition root: connects Redis and MongoDB, builds every service once, and serves
 * GraphQL, health and metrics on one HTTP server. `main.ts` and the integration tests both
 * start the service through here.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLFormattedError } from 'graphql';
import type { Connection } from 'mongoose';
import type { Logger } from 'pino';
import type { Config, RedisTarget } from './config';
import { buildContext, type GraphQLContext, type Services } from './context';
import { failedDependency, serviceUnavailable, toClientError } from './errors';
import { createGraphQLHandler, sendJson } from './http/graphql-handler';
import { checkHealth } from './http/health';
import { createMetrics, type Metrics } from './metrics';
import { connectMongo } from './mongo/connection';
import { ensureIndexes, registerModels, type Models } from './mongo/models';
import { createPlaygroundHandler } from './playground';
import { assertNoEviction, connectRedis, createRedisClient, type RedisClient } from './redis/client';
import { stockPublisher, stockSubscriber } from './redis/pubsub';
import { resolvers } from './resolvers';
import { typeDefs } from './schema';
import { Admission, LoopLag } from './services/admission';
import { Authenticator } from './services/auth';
import { ClaimService, type ClaimServiceOptions } from './services/claim-service';
import { CouponCatalog } from './services/coupon-catalog';
import { CouponGate } from './services/coupon-gate';
import { CouponReader } from './services/coupon-reader';
import { DbLockClaims, DbLockStock } from './services/db-lock-claims';
import { IssuanceWriter } from './services/issuance-writer';
import { Reconciler } from './services/reconciler';
import { StockFeed } from './services/stock-feed';
import { ClaimRateLimiter } from './services/rate-limiter';
import { requestLimits } from './http/request-limits';
import { attachSubscriptions } from './http/subscriptions';
import { logRequestFailures, requestLoggingPlugin } from './http/request-logging';
import { CompiledOperations } from './http/compiled-operations';
import { clientAddressOf } from './http/client-address';
import { requestTarget } from './http/request-target';

export type ServiceSettings = Config & {
  /** The Redis to use (resolved: an embedded server is a `single` target). */
  redis: RedisTarget;
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
  redis: RedisClient;
  mongo: Connection;
  metrics: Metrics;
  reconciler: Reconciler;
  /** Graceful: stop accepting, finish in-flight requests and writes, close connections. */
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;
/** The contract's coalescing interval for stock updates. */
const STOCK_UPDATE_INTERVAL_MS = 100;
/** Last-resort answer time for any GraphQL request, inside the contract's 3 s. */
const REQUEST_DEADLINE_MS = 2500;
/** A graceful-stop step that takes this long is logged with its name. */
const SLOW_STOP_STEP_MS = 1000;
/** Longest a claim waits for the rate limiter's Redis before it counts in memory (it fails open). */
const RATE_LIMIT_TIMEOUT_MS = 250;

export async function startService(settings: ServiceSettings, logger: Logger): Promise<RunningService> {
  const redis = createRedisClient(settings.redis, { name: 'coupon-commands', logger, autoPipelining: true });
  await connectRedis(redis, settings.redis);
  await assertNoEviction(redis, settings.redis).catch((error) => {
    redis.disconnect();
    throw error;
  });

  let mongo: Connection;
  try {
    mongo = await connectMongo(settings.mongoUri, logger);
  } catch (error) {
    redis.disconnect();
    throw new Error(`MONGODB_URI: cannot connect to mongodb (${(error as Error).message})`);
  }
  const models = registerModels(mongo);
  await ensureIndexes(models);

  const metrics = createMetrics();
  const catalog = new CouponCatalog(models);
  const gate = new CouponGate(redis, models, logger, () => metrics.repairs.inc({ kind: 'redis_rebuilt' }));
  const writer = new IssuanceWriter(models, {
    windowMs: settings.groupCommitWindowMs,
    maxBatch: settings.groupCommitMaxBatch,
    maxConcurrentBatches: settings.groupCommitMaxInFlight,
    onBatch: (size, waitedMs, durationMs, failed) => {
      metrics.batchSize.observe(size);
      metrics.batchWaitSeconds.observe(waitedMs / 1000);
      metrics.batchWriteSeconds.observe(durationMs / 1000);
      if (failed) metrics.dependencyErrors.inc({ dependency: 'mongodb' });
    },
  });
  // CLAIM_STRATEGY=db-lock (load comparison only): claims and stock from a MongoDB counter, not Redis.
  const dbLockStock = settings.claimStrategy === 'db-lock' ? new DbLockStock(models) : undefined;
  const reader = new CouponReader(catalog, dbLockStock ?? gate, models);
  // Pub/sub needs connections of its own: a subscribed ioredis client can run nothing else.
  // On a cluster, stock goes over sharded pub/sub: the subscriber keeps a connection per master (src/redis/pubsub.ts).
  const publisher = createRedisClient(settings.redis, { name: 'coupon-stock-publisher', logger });
  const subscriber = createRedisClient(settings.redis, { name: 'coupon-stock-subscriber', logger, shardedSubscriber: true });
  // The limiter's own connection, so its short command timeout applies to its counts alone.
  const limiterRedis = createRedisClient(settings.redis, { name: 'coupon-rate-limiter', logger, commandTimeoutMs: RATE_LIMIT_TIMEOUT_MS });
  await Promise.all([publisher, subscriber, limiterRedis].map((client) => connectRedis(client, settings.redis)));
  const stockFeed = new StockFeed(stockPublisher(publisher), stockSubscriber(subscriber), catalog, reader, logger, {
    intervalMs: STOCK_UPDATE_INTERVAL_MS,
    onSubscribersChanged: (open) => metrics.subscriptions.set(open),
  });
  const rateLimiter = new ClaimRateLimiter(limiterRedis, {
    perUser: settings.claimRatePerUser,
    perIp: settings.claimRatePerIp,
    onFallback: () => metrics.dependencyErrors.inc({ dependency: 'redis' }),
  });
  const claimOptions: ClaimServiceOptions = {
    deadlineMs: settings.requestTimeoutMs,
    rateLimiter,
    onStockChanged: (couponId) => stockFeed.changed(couponId),
    onClaim: (outcome, seconds) => {
      metrics.claims.inc({ outcome });
      metrics.claimSeconds.observe(seconds);
    },
  };
  const claims = new ClaimService(catalog, gate, writer, logger, claimOptions);
  const dbLockClaims = dbLockStock && new DbLockClaims(catalog, models, dbLockStock, logger, claimOptions);
  const services: Services = {
    authenticator: new Authenticator(settings.jwtSecret),
    catalog,
    claims: dbLockClaims ?? claims,
    reader,
    stockFeed,
  };
  const reconciler = new Reconciler(catalog, gate, claims, models, logger, {
    intervalMs: settings.reconcileIntervalMs,
    pendingGraceMs: Math.max(settings.requestTimeoutMs * 2, 3000),
    onRepair: (kind, count) => metrics.repairs.inc({ kind }, count),
  });

  const schema = makeExecutableSchema<GraphQLContext>({ typeDefs, resolvers });
  // A client that trickles its request must not hold an admission slot for Node's default 300 s.
  const httpServer = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 });
  const limits = requestLimits({ hideSchema: !settings.introspectionEnabled });
  const formatError = (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const dependency = failedDependency(original);
    if (dependency) metrics.dependencyErrors.inc({ dependency });
    const code = formatted.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR') return formatted;
    // Logged with its request id by logRequestFailures; the client sees only the code.
    const mapped = toClientError(original);
    return { message: mapped.message, path: formatted.path, extensions: { code: mapped.extensions.code } };
  };
  const compiledOperations = settings.compiledOperationsMax > 0 ? new CompiledOperations(schema, settings.compiledOperationsMax) : undefined;
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: settings.introspectionEnabled,
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    ...limits,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      // Nothing here is cacheable (claims are mutations, stock is live), and the plugin's
      // per-field hook made Apollo wrap every resolver: a few percent of each claim's CPU.
      ApolloServerPluginCacheControlDisabled(),
      requestLoggingPlugin(logger),
      ...limits.plugins,
      ...(compiledOperations ? [compiledOperations.plugin()] : []),
    ],
    formatError,
  });
  await apollo.start();

  const clientAddress = clientAddressOf(settings.trustedProxies);
  const contextFor = (req: IncomingMessage) =>
    buildContext(services, {
      authorization: req.headers.authorization,
      clientIp: clientAddress(req),
      requestId: headerValue(req.headers['x-request-id']) ?? randomUUID(),
    });
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
  const graphql = createGraphQLHandler({
    apollo,
    context: contextFor,
    maxBodyBytes: MAX_BODY_BYTES,
    compiled: compiledOperations && {
      operations: compiledOperations,
      formatError,
      onErrors: (context, operationName, errors) => logRequestFailures(logger, { requestId: context.requestId, operationName, userId: context.viewer?.id, errors }),
      onAnswered: (path) => metrics.graphqlRequests.inc({ path }),
    },
  });
  const playground = settings.playgroundEnabled ? createPlaygroundHandler({ endpointPath: '/graphql' }) : undefined;

  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const { pathname, search } = requestTarget(req.url);
    const route = async () => {
      if (playground?.(req, res)) return;
      if (pathname === '/graphql') {
        // Admitted before the body is read: a refused request costs no parsing, no token check.
        const arrived = performance.now();
        const release = await admission.enter();
        if (!release) {
          const unavailable = serviceUnavailable('the service is at capacity, please retry');
          res.setHeader('retry-after', '1');
          return sendJson(res, 503, { errors: [{ message: unavailable.message, extensions: unavailable.extensions }] });
        }
        // 'close' comes once the answer is out or the client has gone; if it left while it
        // waited here, the response is closed already and the slot goes back now.
        if (res.closed) release();
        else res.once('close', release);
        // The wait for admission counts against the deadline: the contract's 3 s run from arrival.
        const deadlineMs = REQUEST_DEADLINE_MS - (performance.now() - arrived);
        return graphql(req, res, search, deadlineMs);
      }
      if (pathname === '/healthz' && req.method === 'GET') {
        const health = await checkHealth(redis, mongo);
        return sendJson(res, health.ok ? 200 : 503, health);
      }
      if (pathname === '/metrics' && req.method === 'GET') {
        const body = await (settings.readMetrics ?? (() => metrics.registry.metrics()))();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        return void res.end(body);
      }
      sendJson(res, 404, { error: 'not found' });
    };
    route().catch((error: Error) => {
      logger.error({ err: error.message, path: pathname }, 'unhandled request failure');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  await listen(httpServer, settings.port, settings.host).catch(async (error: NodeJS.ErrnoException) => {
    await apollo.stop();
    redis.disconnect();
    await mongo.close();
    throw new Error(error.code === 'EADDRINUSE' ? `PORT: port ${settings.port} is already in use` : `PORT: cannot listen (${error.message})`);
  });
  // Attached once listening, so a taken port is reported once, as a configuration error.
  const subscriptions = attachSubscriptions({
    httpServer,
    schema,
    services,
    logger,
    path: '/graphql',
    maxSubscriptionsPerConnection: 20,
    keepAliveMs: 12_000,
    connectionInitTimeoutMs: 3_000,
    maxPayloadBytes: MAX_BODY_BYTES,
    validationRules: limits.validationRules ?? [],
    clientAddress,
  });
  // Each strategy repairs its own state: Redis reservations, or the db-lock counter.
  if (dbLockClaims) dbLockClaims.start(settings.reconcileIntervalMs);
  else reconciler.start();
  const port = (httpServer.address() as AddressInfo).port;

  let stopping: Promise<void> | undefined;
  // A stop that runs into a supervisor's kill should say what it was waiting for.
  const stopStep = async (step: string, run: () => Promise<unknown>) => {
    const started = performance.now();
    await run();
    const ms = Math.round(performance.now() - started);
    if (ms >= SLOW_STOP_STEP_MS) logger.warn({ step, ms }, 'graceful stop: a slow step');
  };
  const stop = () =>
    (stopping ??= (async () => {
      await stopStep('background passes', async () => {
        await reconciler.stop();
        await dbLockClaims?.stop();
      });
      loopLag.stop();
      // Subscriptions complete before the HTTP drain, which would cut upgraded sockets.
      await stopStep('subscriptions', async () => {
        await stockFeed.stop();
        await subscriptions.dispose();
      });
      // Apollo's drain plugin stops accepting and waits for in-flight requests.
      await stopStep('in-flight requests', () => apollo.stop());
      await stopStep('issuance writes', () => writer.drained());
      await stopStep('connections', async () => {
        await Promise.all([redis, publisher, subscriber, limiterRedis].map((client) => client.quit().catch(() => client.disconnect())));
        await mongo.close();
      });
    })());

  return { url: `http://127.0.0.1:${port}`, port, services, models, redis, mongo, metrics, reconciler, stop };
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
