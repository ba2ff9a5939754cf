/**
 * The opening draw under faults, on two service instances run as child processes (contract v3,
 * "Fair opening"): an instance killed with SIGKILL during the window, Redis stalled (SIGSTOP) at
 * the draw's moment, MongoDB stalled while the winners are written. Held claims may answer
 * SERVICE_UNAVAILABLE, always within 3 s; the draw is still done once over the recorded entries,
 * a later claim learns the outcome, and the guarantees are checked against MongoDB itself.
 * The first test also proves the seed secret until the draw is done (answers, metrics, logs,
 * errors) and audits the draw through draw.csv.
 */
import { Types } from 'mongoose';
import { request } from '../../support/http';
import { startChildService, type ChildService } from '../../support/child-service';
import { COUPON, gql } from '../../support/graphql';
import { adminToken, startStack, userToken, type Stack } from '../../support/stack';
import { at, commitmentOf, createDrawCoupon, DRAW_COUPON, expectedWinners, storedSecret } from '../../support/draw';
import { parseDrawCsv, verifyDraw } from '../../../src/draw/verify-draw';
import { AUDIT, COUPONS } from '../../support/admin';
import { claimAs, claimLikeAClient, expectConverges, expectNoOversellNoDoubleNothingLost, openModels, within, type ClaimAnswer, type MongoView } from './contract';

let stack: Stack;
let services: ChildService[] = [];
let mongo: MongoView;
const env = { RECONCILE_INTERVAL_MS: '200', LOG_LEVEL: 'info' };

beforeAll(async () => {
  stack = await startStack();
  // One after the other: each picks a free port of its own.
  services[0] = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env });
  services[1] = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env });
  mongo = await openModels(stack.mongo.url);
}, 120_000);

afterAll(async () => {
  stack?.redis.signal('SIGCONT');
  stack?.mongo.signal('SIGCONT');
  await Promise.all(services.map((s) => s?.stop()));
  await mongo?.close();
  await stack?.stop();
});

async function tokensFor(users: string[]) {
  return new Map(await Promise.all(users.map(async (u) => [u, await userToken(u)] as const)));
}

/** The coupon once its draw is done, read through the API. */
async function revealed(url: string, id: string): Promise<Record<string, any>> {
  let coupon: Record<string, any> = {};
  await within(15_000, 'the draw is done and its seed public', async () => {
    coupon = (await gql(url, DRAW_COUPON, { id })).data!.coupon;
    return coupon.drawSeed !== null;
  });
  return coupon;
}

async function drawCsv(url: string, couponId: string, token?: string) {
  return request(`${url}/admin/coupons/${couponId}/draw.csv`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

/**
 * What every fault test ends with: the recorded entrants (draw.csv) verify against the seed and
 * the commitment; MongoDB holds exactly the lowest rank keys; every answer agrees with MongoDB;
 * a later claim of every user learns the outcome; the stock converges.
 */
async function expectDrawDoneOnce(url: string, coupon: Record<string, any>, units: number, answers: ClaimAnswer[], tokens: Map<string, string>) {
  const done = await revealed(url, coupon.id);
  expect(commitmentOf(done.drawSeed)).toBe(coupon.drawCommitment);
  const csv = await drawCsv(url, coupon.id, await adminToken());
  expect(csv.status).toBe(200);
  const rows = parseDrawCsv(csv.body.toString('utf8'));
  expect(rows).toHaveLength(done.drawEntrants);
  expect(verifyDraw(rows, done.drawSeed, coupon.drawCommitment, units)).toMatchObject({ honest: true });
  const winners = expectedWinners(done.drawSeed, rows.map((r) => r.userId), units);
  const stored = await expectNoOversellNoDoubleNothingLost(mongo.models, coupon.id, units, answers);
  expect(stored.map((d) => d.userId).sort()).toEqual([...winners].sort());
  expect(stored.map((d) => d.sequence).sort((a, b) => a - b)).toEqual(winners.map((_, i) => i + 1));
  // Nobody told ISSUED or ALREADY_ISSUED who does not hold it; nobody who won told SOLD_OUT.
  for (const answer of answers) {
    if (answer.status === 'SOLD_OUT') expect(winners).not.toContain(answer.user);
  }
  // A later claim learns the outcome: the winners their issuance, everyone else SOLD_OUT.
  const later = await Promise.all([...tokens].map(([user, token]) => claimLikeAClient(url, coupon.id, user, token, { giveUpAfterMs: 10_000 })));
  for (const tries of later) {
    const last = tries.at(-1)!;
    if (winners.includes(last.user)) expect(last).toMatchObject({ status: 'ALREADY_ISSUED', issuance: { id: stored.find((d) => d.userId === last.user)!._id.toHexString() } });
    else expect(last.status).toBe('SOLD_OUT');
  }
  await expectNoOversellNoDoubleNothingLost(mongo.models, coupon.id, units, [...answers, ...later.flat()]);
  await expectConverges(url, mongo.models, coupon.id, units);
  // Done once: one drawDone, one issuance per winner, one row per entrant.
  const doc = await mongo.models.Coupon.findById(new Types.ObjectId(coupon.id)).lean();
  expect(doc!.drawDone).toBe(true);
}

test('an instance killed with SIGKILL during the window: the other draws over every recorded entry; the seed stays secret until the draw is done; draw.csv audits it', async () => {
  const admin = await adminToken();
  const units = 5;
  const startsAt = Date.now() + 4000;
  const coupon = await createDrawCoupon(services[0]!.url, admin, { name: 'Killed', totalQuantity: units, startsAt: new Date(startsAt).toISOString(), openingDrawMs: 1000 });
  const seed = await storedSecret(mongo.models, coupon.id);
  expect(commitmentOf(seed)).toBe(coupon.drawCommitment);
  const users = Array.from({ length: 30 }, (_, i) => `killed-${i}`);
  const tokens = await tokensFor(users);

  // Everything anyone can see before the draw is done: answers, errors, metrics.
  const seen: string[] = [JSON.stringify(coupon)];
  for (const service of services) {
    seen.push(JSON.stringify(await gql(service.url, DRAW_COUPON, { id: coupon.id })));
    seen.push(JSON.stringify(await gql(service.url, COUPONS, { first: 10 }, admin)));
    seen.push(JSON.stringify(await gql(service.url, AUDIT, { couponId: coupon.id }, admin)));
    seen.push(JSON.stringify(await claimAs(service.url, coupon.id, users[0]!, tokens.get(users[0]!)!)));
    seen.push(JSON.stringify(await gql(service.url, `mutation { updateCoupon(id: "${coupon.id}", input: { openingDrawMs: 5000 }) { id } }`, {}, admin)));
    seen.push((await drawCsv(service.url, coupon.id, admin)).body.toString('utf8'));
    seen.push((await request(`${service.url}/metrics`)).body.toString('utf8'));
  }
  expect(seen.join('\n')).toContain(coupon.drawCommitment);
  expect(seen.join('\n')).not.toContain(seed);
  expect((await drawCsv(services[0]!.url, coupon.id, admin)).status).toBe(409);

  // Both instances take entries at the opening; the second is killed 300 ms into the window.
  await at(startsAt);
  const claims = users.map((user, i) => claimAs(services[i % 2]!.url, coupon.id, user, tokens.get(user)!));
  await at(startsAt + 300);
  const during = await gql(services[0]!.url, DRAW_COUPON, { id: coupon.id });
  seen.push(JSON.stringify(during));
  await services[1]!.kill9();
  const answers = await Promise.all(claims);
  const survivor = answers.filter((_, i) => i % 2 === 0);
  expect(survivor.filter((a) => !a.status || a.ms >= 3000)).toEqual([]);
  expect(answers.filter((_, i) => i % 2 === 1).filter((a) => a.status)).toEqual([]);

  await expectDrawDoneOnce(services[0]!.url, coupon, units, answers, tokens);
  expect(seen.join('\n')).not.toContain(seed);
  // The logs of both instances never carried the seed, before or after the draw.
  for (const service of services) expect(service.output()).not.toContain(seed);
  expect(services[0]!.logLines(/opening draw done/)).toHaveLength(1);

  // The export's refusals are those of issuances.csv.
  expect((await drawCsv(services[0]!.url, coupon.id)).status).toBe(401);
  expect((await drawCsv(services[0]!.url, coupon.id, await userToken('someone'))).status).toBe(403);
  expect((await drawCsv(services[0]!.url, new Types.ObjectId().toHexString(), admin)).status).toBe(404);

  services[1] = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env });
}, 120_000);

/** A drop on both instances with a fault at `faultAt` ms after startsAt lasting `stallMs`. */
async function faultedDrop(name: string, fault: () => void, recover: () => void, faultAt: number, stallMs: number) {
  const admin = await adminToken();
  const units = 5;
  const startsAt = Date.now() + 4000;
  const coupon = await createDrawCoupon(services[0]!.url, admin, { name, totalQuantity: units, startsAt: new Date(startsAt).toISOString(), openingDrawMs: 1000 });
  const users = Array.from({ length: 24 }, (_, i) => `${name}-${i}`);
  const tokens = await tokensFor(users);
  await Promise.all(users.map((user, i) => gql(services[i % 2]!.url, COUPON, { id: coupon.id }, tokens.get(user))));
  await at(startsAt);
  const claims = users.map((user, i) => claimAs(services[i % 2]!.url, coupon.id, user, tokens.get(user)!));
  await at(startsAt + faultAt);
  fault();
  await new Promise((resolve) => setTimeout(resolve, stallMs));
  recover();
  const answers = await Promise.all(claims);
  // Held claims: a result or SERVICE_UNAVAILABLE, within 3 s, never silence.
  expect(answers.filter((a) => !(a.status || a.code === 'SERVICE_UNAVAILABLE') || a.ms >= 3000)).toEqual([]);
  await expectDrawDoneOnce(services[0]!.url, coupon, units, answers, tokens);
  return answers;
}

test('Redis stalled at the draw\'s moment: held claims answer within 3 s, the draw is done once afterwards, later claims learn the outcome', async () => {
  const answers = await faultedDrop('redis-stall', () => stack.redis.signal('SIGSTOP'), () => stack.redis.signal('SIGCONT'), 900, 2000);
  expect(answers.some((a) => a.code === 'SERVICE_UNAVAILABLE')).toBe(true);
}, 120_000);

test('MongoDB stalled while the winners are written: nobody hears ISSUED without the write, the draw is done once afterwards', async () => {
  await faultedDrop('mongo-stall', () => stack.mongo.signal('SIGSTOP'), () => stack.mongo.signal('SIGCONT'), 980, 2500);
}, 120_000);
