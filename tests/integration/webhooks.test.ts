/**
 * Webhooks (contract v3): registration, signed delivery of each event type, retries, given-up
 * events queued again, deletion, and the SSRF rule in production.
 */
import { Webhook } from 'standardwebhooks';
import { Types } from 'mongoose';
import { CANCEL, END, REDEEM, UPDATE, claimIssuance, dataOf } from '../support/admin';
import { createCoupon, errorCode, gql } from '../support/graphql';
import { adminToken, productionEnv, startStack, startTestService, useTestService, userToken, type Stack } from '../support/stack';
import { ALL_EVENTS, CREATE_WEBHOOK, DELETE_WEBHOOK, REDELIVER, WEBHOOKS, startReceiver, type Receiver } from '../support/webhook-receiver';

const suite = useTestService({ WEBHOOK_RETRY_DELAYS_MS: '200,200', WEBHOOK_ATTEMPT_TIMEOUT_MS: '1000' });
const url = () => suite.service.url;
let receiver: Receiver;

beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(async () => {
  const hooks = dataOf(await gql(url(), WEBHOOKS, {}, adminToken())).webhooks as Array<{ id: string }>;
  for (const hook of hooks) await gql(url(), DELETE_WEBHOOK, { id: hook.id }, adminToken());
  await receiver.close();
});

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const register = async (events = ALL_EVENTS, target = receiver.url) => dataOf(await gql(url(), CREATE_WEBHOOK, { url: target, events }, adminToken())).createWebhook;
const counts = async (id: string) => (dataOf(await gql(url(), WEBHOOKS, {}, adminToken())).webhooks as any[]).find((w) => w.id === id);

test('only an admin manages webhooks', async () => {
  for (const [query, variables] of [
    [WEBHOOKS, {}],
    [CREATE_WEBHOOK, { url: receiver.url, events: ['ISSUANCE_ISSUED'] }],
    [DELETE_WEBHOOK, { id: new Types.ObjectId().toHexString() }],
    [REDELIVER, { id: new Types.ObjectId().toHexString() }],
  ] as const) {
    expect(errorCode(await gql(url(), query, variables, userToken('someone')))).toBe('FORBIDDEN');
    expect(errorCode(await gql(url(), query, variables))).toBe('UNAUTHENTICATED');
  }
});

test('the secret is shown once, in the answer to createWebhook, as whsec_ and 32 random bytes in base64', async () => {
  const hook = await register(['ISSUANCE_ISSUED']);
  expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  expect(Buffer.from(hook.secret.slice(6), 'base64')).toHaveLength(32);
  expect(hook).toMatchObject({ url: receiver.url, events: ['ISSUANCE_ISSUED'], pendingDeliveries: 0, failedDeliveries: 0 });
  const listed = await counts(hook.id);
  expect(listed.secret).toBeNull();
  expect(listed.url).toBe(receiver.url);
});

test('a URL that is not http or https, and an empty list of events, are BAD_USER_INPUT', async () => {
  for (const target of ['ftp://127.0.0.1/x', 'file:///etc/passwd', 'not a url', 'http://user:pw@127.0.0.1/']) {
    expect(errorCode(await gql(url(), CREATE_WEBHOOK, { url: target, events: ['ISSUANCE_ISSUED'] }, adminToken()))).toBe('BAD_USER_INPUT');
  }
  expect(errorCode(await gql(url(), CREATE_WEBHOOK, { url: receiver.url, events: [] }, adminToken()))).toBe('BAD_USER_INPUT');
});

test('an issuance, its redeem, a cancel, the sell-out and the end each reach the receiver signed, with the stored fields', async () => {
  const hook = await register();
  const couponId = await createCoupon(url(), adminToken(), { name: 'Hooked', totalQuantity: 2 });
  const a = await claimIssuance(url(), couponId, userToken('hook-a'));
  const b = await claimIssuance(url(), couponId, userToken('hook-b'));
  dataOf(await gql(url(), REDEEM, { issuanceId: a.issuance.id, orderId: 'order-1' }, userToken('hook-a')));
  dataOf(await gql(url(), CANCEL, { issuanceId: b.issuance.id }, userToken('hook-b')));
  dataOf(await gql(url(), END, { id: couponId }, adminToken()));

  const types = (wanted: number) => until(`${wanted} events`, () => (receiver.acknowledged().length >= wanted ? receiver.acknowledged() : undefined));
  const events = await types(6);
  const byId = new Map(events.map((e) => [e.id, e]));
  receiver.verifyAll(hook.secret);
  const verifier = new Webhook(hook.secret);
  const request = receiver.requests[0]!;
  expect(request.headers['content-type']).toBe('application/json');
  expect(request.headers['webhook-id']).toBe(JSON.parse(request.body).id);
  expect(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
  expect(() => verifier.verify(request.body.replace('}', ' }'), request.headers as Record<string, string>)).toThrow();

  const ofType = (type: string, subject?: string) => events.filter((e) => e.type === type && (!subject || (e.data.issuance?.id ?? e.data.coupon?.id) === subject));
  expect(ofType('ISSUANCE_ISSUED', a.issuance.id)[0].data.issuance).toEqual({ ...a.issuance, status: 'ACTIVE', redeemedAt: null, orderId: null, cancelledAt: null });
  const redeemed = ofType('ISSUANCE_REDEEMED', a.issuance.id)[0];
  expect(redeemed.data.issuance).toMatchObject({ id: a.issuance.id, status: 'REDEEMED', orderId: 'order-1' });
  expect(redeemed.occurredAt).toBe(redeemed.data.issuance.redeemedAt);
  expect(ofType('ISSUANCE_CANCELLED', b.issuance.id)[0].data.issuance).toMatchObject({ id: b.issuance.id, status: 'CANCELLED' });
  const soldOut = ofType('COUPON_SOLD_OUT', couponId);
  expect(soldOut).toHaveLength(1);
  expect(soldOut[0].data.coupon).toMatchObject({ id: couponId, totalQuantity: 2, remaining: 0, issuedCount: 2, status: 'SOLD_OUT', name: 'Hooked' });
  const ended = ofType('COUPON_ENDED', couponId);
  expect(ended).toHaveLength(1);
  expect(ended[0].data.coupon).toMatchObject({ id: couponId, status: 'ENDED', issuedCount: 1 });
  expect(byId.size).toBe(6);
  await until('counters at 0', async () => {
    const listed = await counts(hook.id);
    return listed.pendingDeliveries === 0 && listed.failedDeliveries === 0;
  });
});

test('a total lowered onto the live issuances is a sell-out: its COUPON_SOLD_OUT reaches the receiver once', async () => {
  await register(['COUPON_SOLD_OUT']);
  const couponId = await createCoupon(url(), adminToken(), { name: 'Lowered', totalQuantity: 5 });
  for (const user of ['low-a', 'low-b']) expect((await claimIssuance(url(), couponId, userToken(user))).status).toBe('ISSUED');
  await new Promise((resolve) => setTimeout(resolve, 600)); // the relay has published the wins (no sell-out among them)
  // Lowered with a unit still free: no sell-out. Then onto the two live issuances: one.
  expect(dataOf(await gql(url(), UPDATE, { id: couponId, input: { totalQuantity: 3 } }, adminToken())).updateCoupon).toMatchObject({ remaining: 1, status: 'ACTIVE' });
  expect(dataOf(await gql(url(), UPDATE, { id: couponId, input: { totalQuantity: 2 } }, adminToken())).updateCoupon).toMatchObject({ remaining: 0, status: 'SOLD_OUT' });
  const [event] = await until('the sell-out', () => (receiver.acknowledged().length > 0 ? receiver.acknowledged() : undefined));
  expect(event.id).toMatch(new RegExp(`^evt_${couponId}_soldout_lowered_r\\d+$`));
  expect(event).toMatchObject({ type: 'COUPON_SOLD_OUT', data: { coupon: { id: couponId, totalQuantity: 2, remaining: 0, issuedCount: 2, status: 'SOLD_OUT' } } });
  await new Promise((resolve) => setTimeout(resolve, 1500)); // three relay passes
  expect(receiver.requests.map((r) => JSON.parse(r.body).id)).toEqual([event.id]);
});

test('a webhook gets only the event types it asked for, and only events that occur after it was registered', async () => {
  const couponId = await createCoupon(url(), adminToken(), { name: 'Before', totalQuantity: 5 });
  const before = await claimIssuance(url(), couponId, userToken('early-bird'));
  await new Promise((resolve) => setTimeout(resolve, 600)); // the relay has published it (to nobody)
  await register(['ISSUANCE_CANCELLED']);
  const after = await claimIssuance(url(), couponId, userToken('late-bird'));
  dataOf(await gql(url(), CANCEL, { issuanceId: after.issuance.id }, userToken('late-bird')));
  const [event] = await until('the cancel', () => (receiver.acknowledged().length > 0 ? receiver.acknowledged() : undefined));
  expect(event).toMatchObject({ type: 'ISSUANCE_CANCELLED', data: { issuance: { id: after.issuance.id } } });
  await new Promise((resolve) => setTimeout(resolve, 1500)); // three relay passes
  expect(receiver.requests.map((r) => JSON.parse(r.body).data.issuance.id)).toEqual([after.issuance.id]);
  expect(before.status).toBe('ISSUED');
});

test('a failing receiver is retried with the same webhook-id; given up, the event counts as failed until redeliverFailedEvents queues it again', async () => {
  receiver.behave = () => 500;
  const hook = await register(['ISSUANCE_ISSUED']);
  const couponId = await createCoupon(url(), adminToken(), { name: 'Failing', totalQuantity: 3 });
  const won = await claimIssuance(url(), couponId, userToken('unlucky'));
  // Three attempts (the first and two retries of WEBHOOK_RETRY_DELAYS_MS), then given up.
  const failed = await until('given up', async () => ((await counts(hook.id)).failedDeliveries === 1 ? counts(hook.id) : undefined));
  expect(failed.pendingDeliveries).toBe(0);
  expect(receiver.requests.map((r) => r.id)).toEqual(Array(3).fill(`evt_${won.issuance.id}_issued`));
  const stamps = receiver.requests.map((r) => r.receivedAt);
  expect(stamps[1]! - stamps[0]!).toBeGreaterThanOrEqual(150);

  receiver.behave = () => 200;
  expect(dataOf(await gql(url(), REDELIVER, { id: hook.id }, adminToken())).redeliverFailedEvents).toBe(1);
  await until('delivered', () => (receiver.acknowledged().length === 1 ? true : undefined));
  await until('counters at 0', async () => {
    const listed = await counts(hook.id);
    return listed.pendingDeliveries === 0 && listed.failedDeliveries === 0;
  });
  expect(dataOf(await gql(url(), REDELIVER, { id: hook.id }, adminToken())).redeliverFailedEvents).toBe(0);
});

test('deleteWebhook is idempotent and stops deliveries; an unknown webhook is NOT_FOUND to redeliverFailedEvents', async () => {
  const hook = await register(['ISSUANCE_ISSUED']);
  expect(dataOf(await gql(url(), DELETE_WEBHOOK, { id: hook.id }, adminToken())).deleteWebhook).toBe(true);
  expect(dataOf(await gql(url(), DELETE_WEBHOOK, { id: hook.id }, adminToken())).deleteWebhook).toBe(true);
  expect(errorCode(await gql(url(), DELETE_WEBHOOK, { id: 'nope' }, adminToken()))).toBe('BAD_USER_INPUT');
  expect(errorCode(await gql(url(), REDELIVER, { id: hook.id }, adminToken()))).toBe('NOT_FOUND');
  const couponId = await createCoupon(url(), adminToken(), { name: 'Deleted', totalQuantity: 3 });
  await claimIssuance(url(), couponId, userToken('nobody-listens'));
  await new Promise((resolve) => setTimeout(resolve, 1500)); // three relay passes
  expect(receiver.requests).toEqual([]);
});

describe('in production', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => stack?.stop());

  test('a loopback URL is BAD_USER_INPUT unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is true', async () => {
    const refusing = await startTestService(stack, productionEnv(stack));
    const allowing = await startTestService(stack, { ...productionEnv(stack), WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
    try {
      for (const target of [receiver.url, 'http://localhost:9/x', 'http://[::1]:9/x', 'http://10.0.0.1/x', 'http://169.254.169.254/latest/meta-data', 'http://[fd00::1]/x']) {
        const reply = await gql(refusing.url, CREATE_WEBHOOK, { url: target, events: ['ISSUANCE_ISSUED'] }, adminToken());
        expect([target, errorCode(reply)]).toEqual([target, 'BAD_USER_INPUT']);
      }
      const allowed = await gql(allowing.url, CREATE_WEBHOOK, { url: receiver.url, events: ['ISSUANCE_ISSUED'] }, adminToken());
      expect(allowed.data?.createWebhook.url).toBe(receiver.url);
      await gql(allowing.url, DELETE_WEBHOOK, { id: allowed.data!.createWebhook.id }, adminToken());
    } finally {
      await Promise.all([refusing.stop(), allowing.stop()]);
    }
  });
});
