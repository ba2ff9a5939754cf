/**
 * The nemesis's world: Redis (one server, or a Cluster of three masters with a replica each), the
 * MongoDB-compatible server, and two or three service instances run as child processes
 * (tests/support/child-service.ts), all on free loopback ports of the run's own. Faults act on
 * these processes only; nothing here ever connects to a Redis it did not start.
 */
import { Redis } from 'ioredis';
import type { RedisTarget } from '../../src/config';
import { startMongoServer, startRedisServer, type EmbeddedServer } from '../../src/infra/embedded';
import { startRedisCluster, type LocalRedisCluster } from '../../src/infra/redis-topologies';
import { startChildService, type ChildService } from '../support/child-service';
import { openModels, type MongoView } from '../integration/faults/contract';

export type Topology = 'single' | 'cluster';

/**
 * Service settings: frequent reconciliation, so repairs happen within a short history. Shedding on
 * event-loop lag is off: on a shared two-core machine a busy neighbour makes every instance late,
 * and admission's quick SERVICE_UNAVAILABLE (a fair answer, tested in tests/integration/faults)
 * would pass for a failure with no fault. The concurrency limit stays on.
 */
// The webhook's retries: a short schedule (the default waits 5 s, then 5 min) so that deliveries drain
// within a history; each attempt cut after 1 s (the receiver sometimes never answers).
export const NEMESIS_SERVICE_ENV: Record<string, string> = {
  RECONCILE_INTERVAL_MS: '300',
  MAX_EVENT_LOOP_LAG_MS: '0',
  WEBHOOK_RETRY_DELAYS_MS: '200,400,800,1000,1000,1000,1000,1000,1000,1000',
  WEBHOOK_ATTEMPT_TIMEOUT_MS: '1000',
};

export interface NemesisEnvironment {
  readonly topology: Topology;
  readonly mongoServer: EmbeddedServer;
  readonly mongo: MongoView;
  /** The instances now; an entry is undefined while that instance is killed. */
  readonly instances: Array<ChildService | undefined>;
  /** Every instance process started, killed ones included (their output is kept), with its index. */
  readonly started: Array<{ index: number; service: ChildService }>;
  /** The Redis servers now (a restarted single Redis replaces its entry). */
  redisServers(): EmbeddedServer[];
  /** The Redis servers that are masters now. */
  redisMasters(): Promise<EmbeddedServer[]>;
  readonly cluster?: LocalRedisCluster;
  /** kill -9 of the single Redis and, `downMs` later, a new empty one on the same port (no persistence). */
  restartRedis(downMs: number): Promise<void>;
  killInstance(index: number): Promise<void>;
  restartInstance(index: number): Promise<void>;
  /** Runs one command on a Redis server of the run's own (never one it did not start). */
  onRedis<T>(server: EmbeddedServer, work: (redis: Redis) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

export async function startNemesisEnvironment(options: { topology: Topology; instances: number; database: string }): Promise<NemesisEnvironment> {
  const [redis, mongoServer] = await Promise.all([
    options.topology === 'cluster' ? startRedisCluster() : startRedisServer(),
    startMongoServer({ database: options.database }),
  ]);
  const cluster = options.topology === 'cluster' ? (redis as LocalRedisCluster) : undefined;
  let single = options.topology === 'single' ? (redis as EmbeddedServer) : undefined;
  const target = (): RedisTarget => (cluster ? cluster.target : { kind: 'single', url: single!.url });
  const ours = () => (cluster ? cluster.servers : [single!]);
  const mongo = await openModels(mongoServer.url);
  const instances: Array<ChildService | undefined> = [];
  const ports: number[] = [];
  const started: Array<{ index: number; service: ChildService }> = [];
  const start = async (index: number) => {
    const service = await startChildService({ redis: target(), mongoUri: mongoServer.url, port: ports[index], env: NEMESIS_SERVICE_ENV });
    ports[index] = service.port;
    instances[index] = service;
    started.push({ index, service });
  };
  try {
    await Promise.all(Array.from({ length: options.instances }, (_, i) => start(i)));
  } catch (error) {
    await Promise.all(instances.map((instance) => instance?.kill9()));
    await mongo.close();
    await Promise.all([cluster ? cluster.stop() : single!.stop(), mongoServer.stop()]);
    throw error;
  }

  const environment: NemesisEnvironment = {
    topology: options.topology,
    mongoServer,
    mongo,
    instances,
    started,
    cluster,
    redisServers: () => ours().filter((server) => server.alive()),
    redisMasters: async () => (cluster ? cluster.masters() : [single!]),
    async restartRedis(downMs) {
      if (!single) throw new Error('restartRedis is for a single Redis');
      const port = single.port;
      single.signal('SIGKILL');
      await waitUntilDead(single);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      single = await startRedisServer({ port });
    },
    async killInstance(index) {
      const instance = instances[index];
      instances[index] = undefined;
      await instance?.kill9();
    },
    async restartInstance(index) {
      if (!instances[index]) await start(index);
    },
    async onRedis(server, work) {
      if (!ours().includes(server)) throw new Error(`refusing to touch redis ${server.port}: not one of the run's own`);
      const redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000, commandTimeout: 5000 });
      try {
        await redis.connect();
        return await work(redis);
      } finally {
        redis.disconnect();
      }
    },
    async stop() {
      ours().forEach((server) => server.signal('SIGCONT'));
      mongoServer.signal('SIGCONT');
      await Promise.all(instances.map((instance) => instance?.stop()));
      await mongo.close().catch(() => undefined);
      await Promise.all([cluster ? cluster.stop() : single!.stop(), mongoServer.stop()]);
    },
  };
  return environment;
}

async function waitUntilDead(server: EmbeddedServer) {
  for (let i = 0; i < 100 && server.alive(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
}
