/**
 * Fault: the service process is killed with SIGKILL in the middle of a drop and started again
 * on the same Redis and MongoDB.
 */
import { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { couponKeys } from '../../../src/redis/scripts';
import { startChildService, type ChildService } from '../../support/child-service';
import { createCoupon } from '../../support/graphql';
import { adminToken, userToken, type Stack } from '../../support/stack';
import { claimLikeAClient, expectConverges, expectNoOversellNoDoubleNothingLost, finalAnswers, startFaultEnvironment, stopFaultEnvironment, storedIssuances, summarize, within, type ClaimAnswer, type MongoView } from './contract';

let stack: Stack;
let service: ChildService | undefined;
let mongo: MongoView;
let redis: Redis;
// Small batches, one in flight at a time, after a longer window (default 3 ms): at any moment at
// most one batch of 10 has been sent and the other reservations wait in the queue, so the kill
// reliably lands while some are unwritten (a batch already sent is still written by MongoDB after
// the kill). This changes when writes happen, not how.
const env = { RECONCILE_INTERVAL_MS: '200', GROUP_COMMIT_WINDOW_MS: '50', GROUP_COMMIT_MAX_BATCH: '10', GROUP_COMMIT_MAX_IN_FLIGHT: '1' };

beforeAll(async () => {
  ({ stack, service, mongo } = await startFaultEnvironment(env));
  redis = new Redis(stack.redis.url);
});

afterAll(async () => {
  redis?.disconnect();
  await stopFaultEnvironment({ stack, service, mongo });
});

test('after a kill -9 mid-drop and a restart, every ISSUED is in MongoDB, unwritten reservations are persisted, and the drop sells out exactly', async () => {
  const total = 1000;
  const couponId = await createCoupon(service!.url, await adminToken(), { name: 'Crash', totalQuantity: total });
  const users = Array.from({ length: 1600 }, (_, i) => `crash-${i}`);
  const tokens = new Map(await Promise.all(users.map(async (u) => [u, await userToken(u)] as const)));

  // The drop: every user claims (and retries when refused). The kill lands once 100 winners have
  // heard ISSUED, at a moment when Redis holds at least 20 winners MongoDB does not have yet.
  const first = service!;
  const keys = couponKeys(couponId);
  let issued = 0;
  const onAnswer = (answer: ClaimAnswer) => void (answer.status === 'ISSUED' && (issued += 1));
  const drop = Promise.all(users.map((user) => claimLikeAClient(first.url, couponId, user, tokens.get(user)!, { onAnswer })));
  const unwrittenNow = async () => (await redis.hlen(keys.winners)) - (await mongo.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId) }));
  await within(30_000, '100 ISSUED answered and 20 reservations not yet written', async () => issued >= 100 && (await unwrittenNow()) >= 20, 2);
  await first.kill9();
  const before = (await drop).flat();

  // What the crash left: reservations in Redis whose MongoDB write never happened.
  const pendingUsers = await redis.zrange(keys.pending, '0', '-1');
  const storedAtCrash = new Set((await storedIssuances(mongo.models, couponId)).map((doc) => doc.userId));
  const unwritten = pendingUsers.filter((user) => !storedAtCrash.has(user));
  const reserved = new Map(Object.entries(await redis.hgetall(keys.winners)));
  console.log(
    `crash: answers before the kill ${JSON.stringify(summarize(before))}; ` +
      `at the kill MongoDB held ${storedAtCrash.size}, Redis had ${reserved.size} winners, ${pendingUsers.length} pending, ${unwritten.length} never written`,
  );
  expect(unwritten.length).toBeGreaterThan(0);

  service = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, port: first.port, env });
  const convergedMs = await expectConverges(service.url, mongo.models, couponId, total);
  // The reconciler wrote each unwritten reservation as Redis had reserved it: same issuance id.
  const stored = new Map((await storedIssuances(mongo.models, couponId)).map((doc) => [doc.userId, doc]));
  for (const user of unwritten) expect(stored.get(user)?._id.toHexString()).toBe(reserved.get(user)!.split(':')[2]);
  expect(await redis.zcard(keys.pending)).toBe(0);
  expect(service.logLines(/settled reservations/).length).toBeGreaterThan(0);

  // The drop goes on: the users who got no answer try again, until the stock is gone.
  const after = finalAnswers(await Promise.all(users.map((user) => claimLikeAClient(service!.url, couponId, user, tokens.get(user)!))));
  expect(after.filter((a) => !a.status)).toEqual([]);
  const docs = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, [...before, ...after]);
  expect(docs).toHaveLength(total);
  // Whoever holds an issuance hears about it again, and nobody else got one.
  const holders = new Map(docs.map((doc) => [doc.userId, doc._id.toHexString()]));
  for (const answer of after) {
    if (holders.has(answer.user)) expect(answer.issuance?.id).toBe(holders.get(answer.user));
    else expect(answer.status).toBe('SOLD_OUT');
  }
  await expectConverges(service.url, mongo.models, couponId, total);
  console.log(`crash: restart converged in ${convergedMs.toFixed(0)} ms after healthy; after the restart ${JSON.stringify(summarize(after))}`);
});
