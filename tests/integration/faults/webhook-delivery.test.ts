/**
 * Guarantee 7 under faults: a drop with the service killed (SIGKILL) in the middle and started
 * again, a receiver that fails or hangs on first attempts, cancels, redeems, a second sell-out
 * and an early end. Every change acknowledged to a client has its event, signed, acknowledged by
 * the receiver, in order per issuance; every event matches MongoDB (no phantom); no claim took
 * 3 s; both counters end at 0. The receiver's behaviour is drawn from a printed seed.
 */
import { loadavg } from 'node:os';
import { Webhook } from 'standardwebhooks';
import { startChildService, type ChildService } from '../../support/child-service';
import { createCoupon, gql } from '../../support/graphql';
import { dataOf, END } from '../../support/admin';
import { adminToken, userToken, type Stack } from '../../support/stack';
import { ALL_EVENTS, CREATE_WEBHOOK, WEBHOOKS, startReceiver, type Receiver } from '../../support/webhook-receiver';
import { cancelAs, claimLikeAClient, finalAnswers, redeemAs, startFaultEnvironment, stopFaultEnvironment, storedIssuances, within, type ClaimAnswer, type LifecycleAnswer, type MongoView } from './contract';

const SEED = Number(process.env.WEBHOOK_FAULT_SEED ?? Date.now() % 1_000_000);
// Group commit as in the crash suite (the kill lands while writes wait); retries and the attempt
// limit shortened so the receiver's failures play out in seconds (the schedule's shape is unit-tested).
const env = {
  RECONCILE_INTERVAL_MS: '200',
  GROUP_COMMIT_WINDOW_MS: '50',
  GROUP_COMMIT_MAX_BATCH: '10',
  GROUP_COMMIT_MAX_IN_FLIGHT: '1',
  WEBHOOK_RETRY_DELAYS_MS: '300,600,1000,1000,1000,1000,1000,1000,1000,1000',
  WEBHOOK_ATTEMPT_TIMEOUT_MS: '1500',
};

let stack: Stack;
let service: ChildService | undefined;
let mongo: MongoView;
let receiver: Receiver;

beforeAll(async () => {
  ({ stack, service, mongo } = await startFaultEnvironment(env));
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver?.close();
  await stopFaultEnvironment({ stack, service, mongo });
});

/** A number in [0, 1) from the seed and a string: the same receiver behaviour for the same seed. */
function draw(key: string): number {
  let h = 2166136261 ^ SEED;
  for (let i = 0; i < key.length; i += 1) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return ((h >>> 0) % 10_000) / 10_000;
}

test('a drop with a kill -9, a failing and hanging receiver, cancels, redeems and an early end delivers every event, signed, in order, with no phantom', async () => {
  console.log(`webhook faults: seed ${SEED} (WEBHOOK_FAULT_SEED=${SEED} repeats the receiver's behaviour)`);
  // First attempts: a fifth answer 500, a tenth hang past the attempt limit; second attempts: a tenth answer 500.
  receiver.behave = ({ id, attempt }) => {
    const r = draw(`${id}:${attempt}`);
    if (attempt === 1) return r < 0.2 ? 500 : r < 0.3 ? 'hang' : 204;
    if (attempt === 2) return r < 0.1 ? 503 : 200;
    return 202;
  };
  const hook = dataOf(await gql(service!.url, CREATE_WEBHOOK, { url: receiver.url, events: ALL_EVENTS }, adminToken())).createWebhook;
  const total = 300;
  const couponId = await createCoupon(service!.url, adminToken(), { name: 'Hooked drop', totalQuantity: total });
  const users = Array.from({ length: 450 }, (_, i) => `hooked-${i}`);
  const tokens = new Map(users.map((u) => [u, userToken(u)] as const));

  // The drop, killed once 100 winners have heard ISSUED.
  let issued = 0;
  const first = service!;
  const drop = Promise.all(users.map((user) => claimLikeAClient(first.url, couponId, user, tokens.get(user)!, { onAnswer: (a) => void (a.status === 'ISSUED' && (issued += 1)) })));
  await within(90_000, '100 ISSUED answered', async () => issued >= 100, 2);
  await first.kill9();
  const before = (await drop).flat();
  service = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, port: first.port, env });
  const after = finalAnswers(await Promise.all(users.map((user) => claimLikeAClient(service!.url, couponId, user, tokens.get(user)!))));
  const winners = after.filter((a) => a.status === 'ISSUED' || a.status === 'ALREADY_ISSUED');
  expect(winners).toHaveLength(total);

  // Cancels and redeems by the holders; the cancelled units go to users who had none: a second sell-out.
  const cancelled = winners.slice(0, 20);
  const redeemed = winners.slice(20, 40);
  // Like a client, a holder tries again after SERVICE_UNAVAILABLE (shed while the restarted service catches up).
  const retried = async (call: () => Promise<LifecycleAnswer>) => {
    for (let i = 0; ; i += 1) {
      const answer = await call();
      if (answer.code !== 'SERVICE_UNAVAILABLE' || i === 20) return answer;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 300));
    }
  };
  const lifecycle = await Promise.all([
    ...cancelled.map((a) => retried(() => cancelAs(service!.url, a.issuance!.id, tokens.get(a.user)!))),
    ...redeemed.map((a) => retried(() => redeemAs(service!.url, a.issuance!.id, `order-${a.user}`, tokens.get(a.user)!))),
  ]);
  expect(lifecycle.filter((l) => l.status !== 'CANCELLED' && l.status !== 'REDEEMED')).toEqual([]);
  const holders = new Set(winners.map((a) => a.user));
  const latecomers = users.filter((u) => !holders.has(u)).slice(0, 40);
  const reclaims = finalAnswers(await Promise.all(latecomers.map((user) => claimLikeAClient(service!.url, couponId, user, tokens.get(user)!))));
  expect(reclaims.filter((a) => a.status === 'ISSUED')).toHaveLength(20);
  dataOf(await gql(service!.url, END, { id: couponId }, adminToken()));

  // What MongoDB holds decides which events must exist.
  const docs = await storedIssuances(mongo.models, couponId);
  const coupon = await mongo.models.Coupon.findById(couponId).lean();
  const expected = new Map<string, string>();
  for (const doc of docs) {
    const id = doc._id.toHexString();
    expected.set(`evt_${id}_issued`, 'ISSUANCE_ISSUED');
    if (doc.status === 'REDEEMED') expected.set(`evt_${id}_redeemed`, 'ISSUANCE_REDEEMED');
    if (doc.status === 'CANCELLED') expected.set(`evt_${id}_cancelled`, 'ISSUANCE_CANCELLED');
  }
  expected.set(`evt_${couponId}_soldout_${total}_0`, 'COUPON_SOLD_OUT');
  expected.set(`evt_${couponId}_soldout_${total}_20`, 'COUPON_SOLD_OUT');
  expected.set(`evt_${couponId}_ended_${coupon!.endsAt!.getTime()}`, 'COUPON_ENDED');

  const counters = async () => (dataOf(await gql(service!.url, WEBHOOKS, {}, adminToken())).webhooks as any[]).find((w) => w.id === hook.id);
  const deliveredMs = await within(120_000, 'every expected event acknowledged and both counters at 0', async () => {
    const acked = new Set(receiver.acknowledged().map((e) => e.id));
    if (![...expected.keys()].every((id) => acked.has(id))) return false;
    const c = await counters();
    return c.pendingDeliveries === 0 && c.failedDeliveries === 0;
  }, 250).catch((error: Error) => {
    const acked = new Set(receiver.acknowledged().map((e) => e.id));
    throw new Error(`${error.message}: missing ${[...expected.keys()].filter((id) => !acked.has(id)).slice(0, 5).join(', ')} (seed ${SEED})`);
  });

  // Every acknowledged event was expected (no phantom), and carries what MongoDB holds.
  const acked = receiver.acknowledged();
  expect(acked.filter((e) => expected.get(e.id) !== e.type).map((e) => e.id)).toEqual([]);
  const byId = new Map(docs.map((doc) => [doc._id.toHexString(), doc]));
  for (const event of acked.filter((e) => e.type.startsWith('ISSUANCE_'))) {
    const doc = byId.get(event.data.issuance.id)!;
    expect(event.data.issuance).toMatchObject({ userId: doc.userId, sequence: doc.sequence, couponId, issuedAt: doc.issuedAt.toISOString() });
    if (event.type === 'ISSUANCE_REDEEMED') expect(event.data.issuance).toMatchObject({ status: 'REDEEMED', orderId: doc.orderId, redeemedAt: doc.redeemedAt!.toISOString() });
    if (event.type === 'ISSUANCE_CANCELLED') expect(event.data.issuance).toMatchObject({ status: 'CANCELLED', cancelledAt: doc.cancelledAt!.toISOString() });
  }
  // Every ISSUED a client heard has its event (guarantee 7 read from the clients' side too).
  const ackedIds = new Set(acked.map((e) => e.id));
  const heard = [...before, ...after, ...reclaims].filter((a: ClaimAnswer) => a.status === 'ISSUED');
  expect(heard.filter((a) => !ackedIds.has(`evt_${a.issuance!.id}_issued`))).toEqual([]);

  // Signed: every request, retries included, verifies with the secret shown at creation.
  receiver.verifyAll(hook.secret);
  expect(() => new Webhook(hook.secret).verify(receiver.requests[0]!.body + ' ', receiver.requests[0]!.headers as Record<string, string>)).toThrow();

  // In order: an issuance's final event was first sent after its ISSUED was acknowledged.
  const ackAt = new Map(acked.map((e) => [e.id, e.receivedAt]));
  const firstSent = new Map<string, number>();
  for (const r of receiver.requests) if (!firstSent.has(r.id)) firstSent.set(r.id, r.receivedAt);
  for (const [id, type] of expected) {
    if (type !== 'ISSUANCE_REDEEMED' && type !== 'ISSUANCE_CANCELLED') continue;
    const issuedId = id.replace(/_(redeemed|cancelled)$/, '_issued');
    expect([id, firstSent.get(id)! >= ackAt.get(issuedId)!]).toEqual([id, true]);
  }

  // No claim slower than 3 s, as the restarted service measured them (resolver start to result).
  // The test's own clocks are printed too: on a machine shared by several suites they include the
  // harness's scheduling delays (a restarted service's first answers queue behind its start-up).
  const answered = [...before, ...after, ...reclaims].filter((a) => a.status || a.code);
  const slow = (list: ClaimAnswer[]) => list.filter((a) => (a.status || a.code) && a.ms >= 3000).length;
  const metricsText = await (await fetch(`${service!.url}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metricsText)?.[1]);
  const claimsMeasured = metric('coupon_claim_duration_seconds_count');
  expect(claimsMeasured).toBeGreaterThanOrEqual(after.length);
  expect(metric('coupon_claim_duration_seconds_bucket\\{le="3"\\}')).toBe(claimsMeasured);
  console.log(
    `webhook faults: claims measured by the restarted service ${claimsMeasured}, all within 3 s; ` +
      `client-side answers of 3 s or more: before the kill ${slow(before)}/${before.length}, after ${slow(after)}/${after.length}, re-claims ${slow(reclaims)}/${reclaims.length} (load average ${loadavg()[0]!.toFixed(1)})`,
  );

  const failedFirst = receiver.requests.filter((r) => r.attempt === 1 && r.answer !== 204).length;
  const duplicates = receiver.requests.filter((r) => typeof r.answer === 'number' && r.answer < 300).length - acked.length;
  console.log(
    `webhook faults: ${expected.size} events, ${receiver.requests.length} requests (${failedFirst} first attempts failed or hung), ` +
      `${duplicates} acknowledged twice (at least once), all acknowledged ${(deliveredMs / 1000).toFixed(1)} s after the end; ` +
      `claims answered ${answered.length}, slowest ${Math.max(...answered.map((a) => a.ms)).toFixed(0)} ms (seed ${SEED})`,
  );
}, 300_000);
