/**
 * The service on a real Redis Cluster: three masters with a replica each, started by the test
 * (src/infra/redis-topologies.ts), two service instances as child processes, MongoDB of the
 * test's own. Coupons spread over the shards, stock updates stay on each coupon's shard (sharded
 * pub/sub), and the loss of a master mid-drop costs retries, never a guarantee.
 */
import { Redis } from 'ioredis';
import { startMongoServer, type EmbeddedServer } from '../../src/infra/embedded';
import { startRedisCluster, type LocalRedisCluster } from '../../src/infra/redis-topologies';
import { createLogger } from '../../src/logger';
import { createRedisClient, scanKeys, type RedisClient } from '../../src/redis/client';
import { couponKeys, stockChannel } from '../../src/redis/scripts';
import type { ChildService } from '../support/child-service';
import { healthStatus, startChildService } from '../support/child-service';
import { createCoupons, dropLosingTheMaster, dropOnInstances, startServicesOn, tokensFor } from '../support/topology-drop';
import { watchStock, wsClient } from '../support/subscriptions';
import { claimAs, openModels, within, type MongoView } from './faults/contract';

let cluster: LocalRedisCluster;
let mongoServer: EmbeddedServer;
let mongo: MongoView;
let services: ChildService[] = [];
let admin: RedisClient;

beforeAll(async () => {
  [cluster, mongoServer] = await Promise.all([startRedisCluster(), startMongoServer({ database: 'cluster' })]);
  [services, mongo] = await Promise.all([startServicesOn(cluster.target, mongoServer.url, 2), openModels(mongoServer.url)]);
  admin = createRedisClient(cluster.target, { name: 'test-admin', logger: createLogger('silent') });
  await admin.connect();
}, 90_000);

afterAll(async () => {
  admin?.disconnect();
  await Promise.all(services.map((service) => service.stop()));
  await mongo?.close();
  await Promise.all([cluster?.stop(), mongoServer?.stop()]);
});

/** Direct connection to one server, as an operator would open with redis-cli. */
async function onServer<T>(server: EmbeddedServer, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await redis.connect();
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

/** Coupons created until every master owns at least one, keyed by the master's port. */
async function couponsOnEveryShard(prefix: string, total: number): Promise<Map<number, string>> {
  const masters = await cluster.masters();
  const byMaster = new Map<number, string>();
  for (let i = 0; byMaster.size < masters.length; i++) {
    if (i >= 40) throw new Error(`40 coupons all landed on ${byMaster.size} of ${masters.length} masters`);
    const [couponId] = await createCoupons(services[0]!.url, [`${prefix}-${i}`], total);
    const master = await cluster.masterFor(couponKeys(couponId!).meta);
    if (!byMaster.has(master.port)) byMaster.set(master.port, couponId!);
  }
  return byMaster;
}

test('coupons land on different shards: each coupon\'s keys and its stock channel live on the master that owns its slot, and SCAN finds keys on every master', async () => {
  const byMaster = await couponsOnEveryShard('shard', 5);
  expect(byMaster.size).toBe(3);
  const [user] = ['shard-user'];
  const tokens = await tokensFor([user!]);
  const client = wsClient(services[1]!.url);
  try {
    for (const [port, couponId] of byMaster) {
      // A claim loads the coupon's state into Redis; a watcher subscribes to its stock channel.
      expect((await claimAs(services[0]!.url, couponId, user!, tokens.get(user!)!)).status).toBe('ISSUED');
      const watcher = watchStock(client, couponId);
      await watcher.until((event) => event.remaining === 4);
      const master = cluster.servers.find((server) => server.port === port)!;
      const keys = couponKeys(couponId);
      const [metaSlot, channelSlot] = await onServer(master, (redis) => Promise.all([redis.cluster('KEYSLOT', keys.meta), redis.cluster('KEYSLOT', stockChannel(couponId))]));
      expect(channelSlot).toBe(metaSlot);
      // On the owning master itself: the keys, and the shard channel with its subscriber.
      expect(await onServer(master, (redis) => redis.exists(keys.meta, keys.winners))).toBe(2);
      await within(5_000, 'the stock channel is a shard channel on its coupon\'s master', async () =>
        (await onServer(master, (redis) => redis.call('PUBSUB', 'SHARDCHANNELS', 'coupon-stock:*') as Promise<string[]>)).includes(stockChannel(couponId)),
      );
      // Not a classic channel anywhere: nothing is broadcast over the cluster bus.
      for (const server of cluster.servers) {
        expect(await onServer(server, (redis) => redis.call('PUBSUB', 'CHANNELS', 'coupon-stock:*'))).toEqual([]);
      }
      for (const other of (await cluster.masters()).filter((m) => m.port !== port)) {
        expect(await onServer(other, (redis) => redis.call('PUBSUB', 'SHARDCHANNELS', 'coupon-stock:*'))).not.toContain(stockChannel(couponId));
      }
    }
  } finally {
    await client.dispose();
  }
  const scanned = new Set<string>();
  for await (const keys of scanKeys(admin, 'coupon:*:meta')) keys.forEach((key) => scanned.add(key));
  for (const couponId of byMaster.values()) expect(scanned).toContain(couponKeys(couponId).meta);
});

test('a drop served by two instances on the cluster, three coupons on three shards at once: no oversell, one per user, nothing lost, and watchers on one instance see what the other sells', async () => {
  const total = 100;
  const byMaster = await couponsOnEveryShard('drop', total);
  const users = Array.from({ length: 250 }, (_, i) => `cluster-drop-${i}`);
  const { answers, attempts, slowestMs } = await dropOnInstances(services, mongo, [...byMaster.values()], total, users);
  console.log(`cluster drop: ${answers.length} claims (${attempts} attempts, slowest ${slowestMs.toFixed(0)} ms) on ${byMaster.size} shards`);
});

test('kill -9 of the master holding a coupon mid-drop: the claims in flight answer within 3 s, resume (live stock too) on the promoted replica without a restart, and nothing is lost, oversold or stuck', async () => {
  const total = 350;
  const [couponId] = await createCoupons(services[0]!.url, ['failover'], total);
  const users = Array.from({ length: 500 }, (_, i) => `cluster-failover-${i}`);
  // Load the coupon's state first, so the kill hits a shard that holds it.
  await claimAs(services[0]!.url, couponId!, users[0]!, (await tokensFor([users[0]!])).get(users[0]!)!);
  const victim = await cluster.masterFor(couponKeys(couponId!).meta);
  const started = performance.now();
  const report = await dropLosingTheMaster({
    services,
    mongo,
    couponId: couponId!,
    total,
    users,
    killAfterIssued: 80,
    master: victim,
    replicas: await cluster.replicasOf(victim),
  });
  const promoted = await cluster.masterFor(couponKeys(couponId!).meta);
  expect(promoted.port).not.toBe(victim.port);
  expect(await healthStatus(services[0]!.url)).toBe(200);
  console.log(
    `cluster master loss: ${report.issuedWhileReplicaBehind} ISSUED while the replica was behind; first ISSUED ${report.firstIssuedAfterKillMs.toFixed(0)} ms after the kill, claims in flight at the kill ${JSON.stringify(report.inFlightAtKill)}, slowest ${report.slowestInFlightMs.toFixed(0)} ms; slowest attempt of the drop ${report.slowestAnswerMs.toFixed(0)} ms (${report.answersOver3s} over 3 s); ` +
      `attempts during ${JSON.stringify(report.during)}, after ${JSON.stringify(report.after)}; reconciler repairs ${JSON.stringify(report.repairs)}, claims settled against MongoDB ${JSON.stringify(report.claimRepairs)}; ` +
      `remaining consistent ${report.convergedMs.toFixed(0)} ms after the second round; the drop and its checks took ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
});

test('with WORKERS=2 the primary hands the cluster to its workers: both serve claims on it', async () => {
  const service = await startChildService({ redis: cluster.target, mongoUri: mongoServer.url, env: { WORKERS: '2', LOG_LEVEL: 'info' } });
  try {
    const [couponId] = await createCoupons(service.url, ['workers'], 50);
    const users = Array.from({ length: 40 }, (_, i) => `cluster-workers-${i}`);
    const tokens = await tokensFor(users);
    const answers = await Promise.all(users.map((user) => claimAs(service.url, couponId!, user, tokens.get(user)!)));
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill('ISSUED'));
    expect(await mongo.models.Issuance.countDocuments({ userId: { $in: users } })).toBe(40);
    // No worker fell back to an embedded redis-server (logged as 'REDIS_URL unset: ...').
    expect(service.output()).not.toMatch(/REDIS_URL/);
  } finally {
    await service.stop();
  }
});
