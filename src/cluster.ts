/**
 * WORKERS > 1: one primary process supervises that many service processes sharing the port
 * (node:cluster), so a machine's cores all serve claims. Each worker is a complete service
 * instance, exactly as several machines behind a load balancer would be: its own connections,
 * group commit, reconciler and stock-feed subscription. Nothing in the claim path depends on
 * being the only instance (Redis decides, MongoDB's unique indexes arbitrate, repairs are
 * idempotent), so the guarantees are the same as with one process.
 *
 * The primary serves no claims itself: it starts the workers, replaces one that dies, stops them
 * on SIGTERM, and answers their /metrics requests with every worker's metrics aggregated
 * (prom-client's AggregatorRegistry), so one scrape sees the whole service. With METRICS_PORT,
 * the primary serves those aggregated metrics there itself, and the workers serve none.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { closeNow, createMetricsServer, listenOn, sharedRender } from './http/metrics-endpoint';

type FromWorker =
  | { type: 'coupon:ready'; port: number }
  | { type: 'coupon:failed'; message: string }
  | { type: 'coupon:metrics-request'; id: number };
type FromPrimary = { type: 'coupon:metrics-response'; id: number; body?: string; error?: string };

/** How long a worker gets for its graceful stop before it is killed: inside the primary's own 10 s. */
const WORKER_STOP_MS = 9_500;
/** Pause before replacing a worker that died, so a crash loop does not spin. */
const RESPAWN_DELAY_MS = 1_000;
/** Tries per worker at start-up when it dies without saying why (killed, out of memory). */
const START_ATTEMPTS = 3;

/** A worker exited before it listened without reporting a reason: worth another try, unlike a reported one. */
class CrashedWhileStarting extends Error {}

export interface Supervisor {
  port: number;
  /** Where the primary serves the aggregated /metrics (METRICS_PORT). */
  metricsPort?: number;
  stop(): Promise<void>;
}

export interface SuperviseOptions {
  count: number;
  /**
   * Environment for the workers on top of the primary's own: the resolved Redis target (as
   * redisTargetEnv writes it: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS), MongoDB and secret.
   */
  env: Record<string, string>;
  /** METRICS_PORT: the primary serves every worker's metrics, aggregated, on this port. */
  metrics?: { port: number; host: string };
  logger: Logger;
}

/** Starts `count` workers and resolves when all listen; rejects with the first worker's start-up error. */
export async function superviseWorkers(options: SuperviseOptions): Promise<Supervisor> {
  const { logger } = options;
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  // Each worker accepts its own connections. With the default round-robin, the primary accepts
  // and hands sockets over, and a socket whose worker died mid-hand-over was held open, unanswered.
  cluster.schedulingPolicy = cluster.SCHED_NONE;

  // One aggregation (an IPC round to every worker) serves every scrape of the moment, whether
  // from a worker's /metrics or from the METRICS_PORT server below.
  const readMetrics = sharedRender(() => aggregator.clusterMetrics());
  cluster.on('message', (worker: Worker, message: FromWorker) => {
    if (message?.type !== 'coupon:metrics-request') return;
    readMetrics().then(
      (body) => worker.send({ type: 'coupon:metrics-response', id: message.id, body } satisfies FromPrimary),
      (error: Error) => worker.send({ type: 'coupon:metrics-response', id: message.id, error: error.message } satisfies FromPrimary),
    );
  });

  /**
   * Starts one worker; resolves with its port once it listens, rejects with the one line it
   * reported when it could not start (configuration, port, dependency). A worker that dies
   * after that is replaced.
   */
  const fork = () =>
    new Promise<number>((resolve, reject) => {
      const worker = cluster.fork(options.env);
      let ready = false;
      worker.on('message', (message: FromWorker) => {
        if (message?.type === 'coupon:ready') {
          ready = true;
          resolve(message.port);
        } else if (message?.type === 'coupon:failed') {
          reject(new Error(message.message));
        }
      });
      worker.once('exit', (code, signal) => {
        if (!ready) {
          reject(new CrashedWhileStarting(`a worker exited during start-up (${signal ?? `code ${code}`})`));
          return;
        }
        if (stopping) return;
        logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting a replacement');
        replace(RESPAWN_DELAY_MS);
      });
    });

  /** Keeps trying, backing off to 30 s, so a dependency that is down for a while costs no worker for good. */
  const replace = (delayMs: number) => {
    setTimeout(() => {
      if (stopping) return;
      fork().then(
        () => logger.info('replacement worker ready'),
        (error: Error) => {
          const retryInMs = Math.min(delayMs * 2, 30_000);
          logger.error({ err: error.message, retryInMs }, 'replacement worker failed to start');
          replace(retryInMs);
        },
      );
    }, delayMs);
  };

  const metricsServer = options.metrics && createMetricsServer({ read: readMetrics, contentType: aggregator.contentType }, logger);
  if (metricsServer) await listenOn(metricsServer, options.metrics!.port, options.metrics!.host, 'METRICS_PORT');

  const stop = async () => {
    stopping = true;
    if (metricsServer) await closeNow(metricsServer);
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            const killer = setTimeout(() => worker.process.kill('SIGKILL'), WORKER_STOP_MS);
            worker.once('exit', () => {
              clearTimeout(killer);
              resolve();
            });
            worker.process.kill('SIGTERM');
          }),
      ),
    );
  };

  /** One worker of the initial start: a reported failure (configuration, port, dependency) ends the start at once. */
  const start = async (attempt = 1): Promise<number> => {
    try {
      return await fork();
    } catch (error) {
      if (!(error instanceof CrashedWhileStarting) || attempt >= START_ATTEMPTS || stopping) throw error;
      logger.error({ err: error.message, attempt }, 'worker crashed while starting; starting it again');
      return start(attempt + 1);
    }
  };

  try {
    const ports = await Promise.all(Array.from({ length: options.count }, () => start()));
    return { port: ports[0]!, metricsPort: metricsServer && (metricsServer.address() as AddressInfo).port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** In a worker: tells the primary it listens on `port`. */
export function reportReady(port: number): void {
  process.send?.({ type: 'coupon:ready', port } satisfies FromWorker);
}

/** In a worker: tells the primary why it could not start (the primary prints it as the one line). */
export function reportFailure(message: string): void {
  process.send?.({ type: 'coupon:failed', message } satisfies FromWorker);
}

/**
 * In a worker: lets the primary collect this registry's metrics, and returns how to read the
 * whole service's metrics (every worker's, aggregated by the primary) for GET /metrics.
 */
export function clusterMetricsReader(registry: Registry): () => Promise<string> {
  new AggregatorRegistry(); // registers the worker's answer to the primary's collection request
  AggregatorRegistry.setRegistries(registry);
  const waiting = new Map<number, { resolve: (body: string) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  process.on('message', (message: FromPrimary) => {
    if (message?.type !== 'coupon:metrics-response') return;
    const request = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error !== undefined) request?.reject(new Error(message.error));
    else request?.resolve(message.body ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      process.send!({ type: 'coupon:metrics-request', id } satisfies FromWorker);
    });
}
