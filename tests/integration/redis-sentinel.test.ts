/**
 * The service on a Sentinel-watched Redis: a master, one replica and three sentinels started by
 * the test (src/infra/redis-topologies.ts), two service instances as child processes. ioredis asks
 * the sentinels for the master and follows a failover; the loss of the master mid-drop costs
 * retries, never a guarantee.
 */
import { startMongoServer, type EmbeddedServer } from '../../src/infra/embedded';
import { startRedisSentinel, type LocalSentinelGroup } from '../../src/infra/redis-topologies';
import { healthStatus, type ChildService } from '../support/child-service';
import { createCoupons, dropLosingTheMaster, dropOnInstances, startServicesOn } from '../support/topology-drop';
import { openModels, type MongoView } from './faults/contract';

let group: LocalSentinelGroup;
let mongoServer: EmbeddedServer;
let mongo: MongoView;
let services: ChildService[] = [];

beforeAll(async () => {
  [group, mongoServer] = await Promise.all([startRedisSentinel(), startMongoServer({ database: 'sentinel' })]);
  [services, mongo] = await Promise.all([startServicesOn(group.target, mongoServer.url, 2), openModels(mongoServer.url)]);
}, 90_000);

afterAll(async () => {
  await Promise.all(services.map((service) => service.stop()));
  await mongo?.close();
  await Promise.all([group?.stop(), mongoServer?.stop()]);
});

test('a drop served by two instances through Sentinel, two coupons at once: no oversell, one per user, nothing lost, and watchers on one instance see what the other sells', async () => {
  const total = 100;
  const couponIds = await createCoupons(services[0]!.url, ['sentinel-a', 'sentinel-b'], total);
  const users = Array.from({ length: 250 }, (_, i) => `sentinel-drop-${i}`);
  const { answers, attempts, slowestMs } = await dropOnInstances(services, mongo, couponIds, total, users);
  console.log(`sentinel drop: ${answers.length} claims (${attempts} attempts, slowest ${slowestMs.toFixed(0)} ms)`);
});

test('kill -9 of the master mid-drop: the claims in flight answer within 3 s, resume (live stock too) on the replica Sentinel promotes without a restart, and nothing is lost, oversold or stuck', async () => {
  const total = 350;
  const [couponId] = await createCoupons(services[0]!.url, ['sentinel-failover'], total);
  const users = Array.from({ length: 500 }, (_, i) => `sentinel-failover-${i}`);
  expect(await group.currentMaster()).toEqual({ host: '127.0.0.1', port: group.master.port });
  const started = performance.now();
  const report = await dropLosingTheMaster({ services, mongo, couponId: couponId!, total, users, killAfterIssued: 80, master: group.master, replicas: [group.replica] });
  expect(await group.currentMaster()).toEqual({ host: '127.0.0.1', port: group.replica.port });
  expect(await healthStatus(services[0]!.url)).toBe(200);
  console.log(
    `sentinel master loss: ${report.issuedWhileReplicaBehind} ISSUED while the replica was behind; first ISSUED ${report.firstIssuedAfterKillMs.toFixed(0)} ms after the kill, ` +
      `claims in flight at the kill ${JSON.stringify(report.inFlightAtKill)}, slowest ${report.slowestInFlightMs.toFixed(0)} ms; slowest attempt of the drop ${report.slowestAnswerMs.toFixed(0)} ms (${report.answersOver3s} over 3 s); attempts during ${JSON.stringify(report.during)}, after ${JSON.stringify(report.after)}; ` +
      `reconciler repairs ${JSON.stringify(report.repairs)}, claims settled against MongoDB ${JSON.stringify(report.claimRepairs)}; ` +
      `remaining consistent ${report.convergedMs.toFixed(0)} ms after the second round; the drop and its checks took ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
});
