/**
 * What every fault test starts from and checks at the end: a service run as a child process on
 * servers of the test's own, and the contract's guarantees, read from MongoDB itself and from the
 * live service. Since version 2 the guarantees count issuances that are not CANCELLED ("live"),
 * and add "redeemed once". Shared by the tests in this folder; not a test file.
 */
import http from 'node:http';
import { Types } from 'mongoose';
import { connectMongo } from '../../../src/mongo/connection';
import { registerModels, type Models } from '../../../src/mongo/models';
import { createLogger } from '../../../src/logger';
import { startChildService, type ChildService } from '../../support/child-service';
import { CLAIM, COUPON, errorCode, gql, type GraphQLReply } from '../../support/graphql';
import { startStack, type Stack } from '../../support/stack';

export interface ClaimAnswer {
  user: string;
  /** Time from sending to the answer (or to the failure). */
  ms: number;
  status?: string;
  remaining?: number;
  issuance?: { id: string; userId: string; sequence: number; issuedAt: string };
  /** extensions.code of a GraphQL error. */
  code?: string;
  /** The request got no answer at all (connection refused or cut). */
  failure?: string;
}

/**
 * Keep-alive, but an idle connection is dropped after 2 s, well before the server's 5 s
 * keepAliveTimeout: reusing one the server is closing at that moment ends in ECONNRESET, a race
 * of the test client's own that would pass for a fault of the service.
 */
export const clientAgent = new http.Agent({ keepAlive: true, timeout: 2000, maxFreeSockets: 10_000 });

export const postGraphQL = (url: string, query: string, variables: Record<string, unknown>, token?: string, agent = clientAgent): Promise<GraphQLReply> =>
  gql(url, query, variables, token, agent);

export async function claimAs(url: string, couponId: string, user: string, token: string, agent = clientAgent): Promise<ClaimAnswer> {
  const sent = performance.now();
  try {
    const reply = await postGraphQL(url, CLAIM, { couponId }, token, agent);
    const ms = performance.now() - sent;
    if (reply.errors) return { user, ms, code: errorCode(reply) ?? `HTTP ${reply.status}` };
    const result = reply.data!.claimCoupon;
    return { user, ms, status: result.status, remaining: result.remaining, issuance: result.issuance ?? undefined };
  } catch (error) {
    return { user, ms: performance.now() - sent, failure: (error as Error).message };
  }
}

/**
 * One user's claim as a real client makes it during a drop: refused with SERVICE_UNAVAILABLE
 * (shed by admission, or a dependency down), it tries again after a short random pause, until it
 * gets a result or `giveUpAfterMs` passes. A request with no answer at all (the service is gone)
 * ends the tries. Returns every attempt, in order; `onAnswer` sees each as it arrives.
 */
export async function claimLikeAClient(
  url: string,
  couponId: string,
  user: string,
  token: string,
  options: { giveUpAfterMs?: number; onAnswer?: (answer: ClaimAnswer) => void } = {},
): Promise<ClaimAnswer[]> {
  const giveUpAt = performance.now() + (options.giveUpAfterMs ?? 30_000);
  const attempts: ClaimAnswer[] = [];
  for (;;) {
    const answer = await claimAs(url, couponId, user, token);
    attempts.push(answer);
    options.onAnswer?.(answer);
    if (answer.code !== 'SERVICE_UNAVAILABLE' || performance.now() > giveUpAt) return attempts;
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 300));
  }
}

/** The last attempt of each user: what the user was finally told. */
export const finalAnswers = (attempts: ClaimAnswer[][]) => attempts.map((tries) => tries.at(-1)!);

/** A mongoose connection of the test's own, with the service's models. */
/** The test's own connection to the service's MongoDB, to read what is really stored. */
export interface MongoView {
  models: Models;
  close: () => Promise<void>;
}

export async function openModels(mongoUri: string): Promise<MongoView> {
  const connection = await connectMongo(mongoUri, createLogger('silent'));
  return { models: registerModels(connection), close: () => connection.close() };
}

export interface FaultEnvironment {
  stack: Stack;
  service: ChildService;
  mongo: MongoView;
}

/** A redis-server and MongoDB-compatible server of the test's own, the service on them as a child process, and a view of MongoDB. */
export async function startFaultEnvironment(env: Record<string, string> = { RECONCILE_INTERVAL_MS: '200' }): Promise<FaultEnvironment> {
  const stack = await startStack();
  try {
    const [service, mongo] = await Promise.all([startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env }), openModels(stack.mongo.url)]);
    return { stack, service, mongo };
  } catch (error) {
    await stack.stop();
    throw error;
  }
}

/** Stops what startFaultEnvironment started; `service` is the one running now (a test may have started it again). */
export async function stopFaultEnvironment(environment: Partial<FaultEnvironment>): Promise<void> {
  await environment.service?.stop();
  await environment.mongo?.close();
  await environment.stack?.stop();
}

/** Every stored issuance of the coupon, CANCELLED ones included. */
export async function storedIssuances(models: Models, couponId: string) {
  return models.Issuance.find({ couponId: new Types.ObjectId(couponId) }).lean();
}

/** The issuances that are not CANCELLED: what the guarantees count. */
export async function liveIssuances(models: Models, couponId: string) {
  return models.Issuance.find({ couponId: new Types.ObjectId(couponId), status: { $ne: 'CANCELLED' } }).lean();
}

/**
 * Guarantees 1-3: no oversell, one per user, every ISSUED answer is in MongoDB as answered
 * (counting issuances that are not CANCELLED; an acknowledged one may have been cancelled since,
 * and is then still stored). Returns the live issuances for further checks.
 */
export async function expectNoOversellNoDoubleNothingLost(models: Models, couponId: string, totalQuantity: number, answers: ClaimAnswer[]) {
  const all = await storedIssuances(models, couponId);
  const stored = all.filter((doc) => doc.status !== 'CANCELLED');
  expect(stored.length).toBeLessThanOrEqual(totalQuantity);
  expect(new Set(stored.map((doc) => doc.userId)).size).toBe(stored.length);
  const sequences = stored.map((doc) => doc.sequence);
  expect(new Set(sequences).size).toBe(stored.length);
  for (const sequence of sequences) expect(sequence >= 1 && sequence <= totalQuantity).toBe(true);
  const byId = new Map(all.map((doc) => [doc._id.toHexString(), doc]));
  const acknowledged = answers.filter((a) => a.status === 'ISSUED' || a.status === 'ALREADY_ISSUED');
  const missing = acknowledged.filter((a) => {
    const doc = byId.get(a.issuance!.id);
    return !doc || doc.userId !== a.user || doc.sequence !== a.issuance!.sequence;
  });
  expect(missing).toEqual([]);
  return stored;
}

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. Returns the time it took. */
export async function within(timeoutMs: number, what: string, check: () => Promise<boolean>, everyMs = 100): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Guarantee 4: the coupon's live `remaining` equals totalQuantity minus MongoDB's count of issuances that are not CANCELLED, with
 * nobody's help. Returns how long it took to get there.
 */
export async function expectConverges(url: string, models: Models, couponId: string, totalQuantity: number, timeoutMs = 20_000): Promise<number> {
  let last = '';
  try {
    return await within(timeoutMs, 'remaining == totalQuantity - issuances in MongoDB', async () => {
      const reply = await postGraphQL(url, COUPON, { id: couponId });
      const remaining = reply.data?.coupon?.remaining as number | undefined;
      const count = await models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId), status: { $ne: 'CANCELLED' } });
      last = `remaining ${remaining}, MongoDB holds ${count} live of ${totalQuantity}`;
      return remaining === totalQuantity - count;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message} (last seen: ${last})`);
  }
}

export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

export const summarize = (answers: ClaimAnswer[]) =>
  answers.reduce<Record<string, number>>((counts, a) => {
    const key = a.status ?? a.code ?? 'NO_ANSWER';
    counts[key] = (counts[key] ?? 0) + 1;
    return counts;
  }, {});

/** What a redeem or a cancel was answered. */
export interface LifecycleAnswer {
  issuanceId: string;
  orderId?: string;
  status?: string;
  code?: string;
  failure?: string;
  ms: number;
}

const LIFECYCLE_FIELDS = 'id status orderId redeemedAt cancelledAt';

export async function redeemAs(url: string, issuanceId: string, orderId: string, token: string): Promise<LifecycleAnswer> {
  const sent = performance.now();
  try {
    const reply = await postGraphQL(url, `mutation R($i: ID!, $o: String!) { redeemIssuance(issuanceId: $i, orderId: $o) { ${LIFECYCLE_FIELDS} } }`, { i: issuanceId, o: orderId }, token);
    const ms = performance.now() - sent;
    if (reply.errors) return { issuanceId, orderId, ms, code: errorCode(reply) ?? `HTTP ${reply.status}` };
    return { issuanceId, orderId, ms, status: reply.data!.redeemIssuance.status };
  } catch (error) {
    return { issuanceId, orderId, ms: performance.now() - sent, failure: (error as Error).message };
  }
}

export async function cancelAs(url: string, issuanceId: string, token: string): Promise<LifecycleAnswer> {
  const sent = performance.now();
  try {
    const reply = await postGraphQL(url, `mutation C($i: ID!) { cancelIssuance(issuanceId: $i) { ${LIFECYCLE_FIELDS} } }`, { i: issuanceId }, token);
    const ms = performance.now() - sent;
    if (reply.errors) return { issuanceId, ms, code: errorCode(reply) ?? `HTTP ${reply.status}` };
    return { issuanceId, ms, status: reply.data!.cancelIssuance.status };
  } catch (error) {
    return { issuanceId, ms: performance.now() - sent, failure: (error as Error).message };
  }
}

/**
 * Guarantee 6, and what answers promised: an issuance is redeemed for at most one order and a
 * redeemed one is never cancelled; every REDEEMED answer is stored with its order, every
 * CANCELLED answer is stored cancelled.
 */
export async function expectRedeemedOnce(models: Models, couponId: string, answers: LifecycleAnswer[]) {
  const all = await storedIssuances(models, couponId);
  const byId = new Map(all.map((doc) => [doc._id.toHexString(), doc]));
  for (const doc of all) {
    if (doc.status === 'REDEEMED') expect(doc.orderId && doc.redeemedAt && !doc.cancelledAt).toBeTruthy();
    if (doc.status === 'CANCELLED') expect(doc.cancelledAt && !doc.orderId && !doc.redeemedAt).toBeTruthy();
  }
  const broken = answers.filter((a) => {
    const doc = byId.get(a.issuanceId);
    if (a.status === 'REDEEMED') return doc?.status !== 'REDEEMED' || doc.orderId !== a.orderId;
    if (a.status === 'CANCELLED') return doc?.status !== 'CANCELLED';
    return false;
  });
  expect(broken).toEqual([]);
}
