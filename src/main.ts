/**
 * Entry point: validate configuration, start embedded dependencies when none are configured
 * (development), start the service (in this process, or as WORKERS processes sharing the port),
 * and shut down gracefully on SIGTERM/SIGINT.
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { clusterMetricsReader, reportFailure, reportReady, superviseWorkers } from './cluster';
import { ConfigError, loadConfig, redisTargetEnv, type Config, type RedisTarget } from './config';
import { startMongoServer, startRedisServer, type EmbeddedServer } from './infra/embedded';
import { createLogger } from './logger';
import type { startService as StartService } from './service';
import { Authenticator } from './access/auth';
import { startTracing, type RunningTracing } from './tracing/sdk';

/**
 * The service's modules, required only after tracing has started: its instrumentations patch
 * ioredis and mongodb as they are required (a static import would load them first).
 */
function loadService(): { startService: typeof StartService } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./service') as typeof import('./service');
}

/** Configuration, or one line naming the variable and exit 1; then tracing, when configured. */
function configure(): { config: Config; tracing?: RunningTracing } {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWith(error.message);
    throw error;
  }
  return { config, tracing: config.tracing && startTracing(config.tracing) };
}

async function main(): Promise<void> {
  const { config, tracing } = configure();
  const { startService } = loadService();
  const logger = createLogger(config.logLevel);
  const embedded: EmbeddedServer[] = [];
  const stopEmbedded = () => Promise.all(embedded.map((server) => server.stop()));

  let redis: RedisTarget | undefined = config.redis;
  let mongoUri = config.mongoUri;
  try {
    if (!redis) {
      const server = await startRedisServer();
      embedded.push(server);
      redis = { kind: 'single', url: server.url };
      logger.info({ url: server.url }, 'REDIS_URL unset: started an embedded redis-server (development only)');
    }
    if (!mongoUri) {
      const mongo = await startMongoServer({ database: 'coupons' });
      embedded.push(mongo);
      mongoUri = mongo.url;
      logger.info({ url: mongo.url }, 'MONGODB_URI unset: started the embedded MongoDB-compatible server (development only)');
    }
  } catch (error) {
    await stopEmbedded();
    exitWith(`${redis ? 'MONGODB_URI' : 'REDIS_URL'}: unset, and the embedded server could not start (${(error as Error).message})`);
  }
  const jwtSecret = config.jwtSecret ?? randomBytes(32).toString('base64url');

  let running: { port: number; metricsPort?: number; stop(): Promise<void> };
  try {
    running =
      config.workers > 1
        ? await superviseWorkers({
            count: config.workers,
            env: { ...redisTargetEnv(redis), MONGODB_URI: mongoUri, JWT_SECRET: jwtSecret },
            metrics: config.metricsPort === undefined ? undefined : { port: config.metricsPort, host: config.host },
            logger,
          })
        : await startService({ ...config, redis, mongoUri, jwtSecret, devTokens: !config.jwtSecret }, logger);
  } catch (error) {
    await stopEmbedded();
    exitWith((error as Error).message);
  }
  const host = displayHost(config.host);
  const base = `http://${host}:${running.port}`;
  const metrics = running.metricsPort === undefined ? `${base}/metrics` : `http://${host}:${running.metricsPort}/metrics`;
  logger.info({ graphql: `${base}/graphql`, metrics, playground: config.playgroundEnabled, workers: config.workers, host: config.host }, 'coupon service ready');
  if (!config.jwtSecret) printDevTokens(jwtSecret, base, config.playgroundEnabled && config.workers === 1);
  stopOnSignal(logger, async () => {
    await running.stop();
    await tracing?.shutdown();
    await stopEmbedded();
  });
}

/** A worker of a WORKERS > 1 start: the primary resolved Redis, MongoDB and the secret for it. */
async function runWorker(): Promise<void> {
  const { config, tracing } = configure();
  const { startService } = loadService();
  let service: Awaited<ReturnType<typeof startService>>;
  const logger = createLogger(config.logLevel).child({ worker: cluster.worker!.id });
  let readMetrics: (() => Promise<string>) | undefined;
  try {
    service = await startService(
      {
        ...config,
        redis: config.redis!,
        mongoUri: config.mongoUri!,
        jwtSecret: config.jwtSecret!,
        readMetrics: () => readMetrics!(),
        // With METRICS_PORT, the primary serves every worker's metrics there.
        metricsOnPrimary: config.metricsPort !== undefined,
      },
      logger,
    );
  } catch (error) {
    reportFailure((error as Error).message);
    process.exit(1);
  }
  readMetrics = clusterMetricsReader(service.metrics.registry);
  reportReady(service.port);
  stopOnSignal(logger, async () => {
    await service.stop();
    await tracing?.shutdown();
  });
}

/** Graceful stop on SIGTERM/SIGINT, once, with a 10 s limit. */
function stopOnSignal(logger: Logger, stop: () => Promise<void>): void {
  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    // A repeated signal (a supervisor, or tsx relaying it) must not cut the graceful stop short.
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down: finishing in-flight claims');
    const forced = setTimeout(() => {
      logger.error('shutdown took longer than 10 s; exiting');
      process.exit(1);
    }, 10_000).unref();
    await stop();
    clearTimeout(forced);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * Development only (JWT_SECRET unset): the tokens, and where the pages that use them are. With one
 * process the playground sends these tokens itself and the drop page signs in through POST /dev/token.
 */
function printDevTokens(secret: string, base: string, pages: boolean): void {
  const auth = new Authenticator(secret);
  const user = auth.issue('dev-user', { expiresInSeconds: 12 * 3600 });
  const admin = auth.issue('dev-admin', { admin: true, expiresInSeconds: 12 * 3600 });
  process.stdout.write(
    [
      '',
      `  Coupon service on ${base}/graphql (open it in a browser for the playground)`,
      ...(pages ? [`  Drop page: ${base}/drop/ (signs in with a development token; creates a demo coupon)`] : []),
      '  JWT_SECRET unset: a random key was generated for this run. Development tokens (12 h):',
      `    user  (sub dev-user):   Bearer ${user}`,
      `    admin (sub dev-admin):  Bearer ${admin}`,
      ...(pages ? ['  The playground offers both in a switch above the editor; POST /dev/token {"sub": "alice"} mints more.'] : []),
      '',
    ].join('\n') + '\n',
  );
}

/** The address to print for a listening host: a wildcard is reached as localhost. */
function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

function exitWith(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

(cluster.isWorker ? runWorker() : main()).catch((error: Error) => exitWith(`fatal: ${error.message}`));
