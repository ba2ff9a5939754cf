/**
 * Fault: MongoDB stalls (its process stopped with SIGSTOP: connections stay open, nothing
 * answers), in the middle of a drop, then resumes (SIGCONT). The issuance write fails or hangs
 * mid-claim: nobody may hear ISSUED without the write, and no stock may be lost.
 */
import { healthStatus, type ChildService } from '../../support/child-service';
import { COUPON, createCoupon } from '../../support/graphql';
import { adminToken, userToken, type Stack } from '../../support/stack';
import { claimAs, expectConverges, expectNoOversellNoDoubleNothingLost, postGraphQL, startFaultEnvironment, stopFaultEnvironment, storedIssuances, summarize, within, type ClaimAnswer, type MongoView } from './contract';

let stack: Stack;
let service: ChildService;
let mongo: MongoView;

beforeAll(async () => {
  ({ stack, service, mongo } = await startFaultEnvironment());
});

afterAll(async () => {
  stack?.mongo.signal('SIGCONT');
  await stopFaultEnvironment({ stack, service, mongo });
});

test('while MongoDB stalls claims answer within 3 s and never a false ISSUED; after it resumes every reservation is persisted and stock converges', async () => {
  const total = 300;
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'Stall', totalQuantity: total });
  const users = Array.from({ length: 400 }, (_, i) => `stall-${i}`);
  const tokens = new Map(await Promise.all(users.map(async (u) => [u, await userToken(u)] as const)));
  const claim = (user: string) => claimAs(service.url, couponId, user, tokens.get(user)!);

  // The clients' connections are open before the drop, as they would be for people on the page:
  // the answer times below are the service's, not this one process's connection set-up.
  await Promise.all(users.slice(0, 300).map(() => postGraphQL(service.url, COUPON, { id: couponId })));

  // A drop in flight; MongoDB stops the moment the 20th ISSUED arrives.
  const during: ClaimAnswer[] = [];
  let issued = 0;
  let stalledAt = 0;
  await Promise.all(
    users.slice(0, 250).map(async (user) => {
      const answer = await claim(user);
      during.push(answer);
      if (answer.status === 'ISSUED' && ++issued === 20) {
        stack.mongo.signal('SIGSTOP');
        stalledAt = performance.now();
      }
    }),
  );
  expect(stalledAt).toBeGreaterThan(0);
  // Claims arriving while it is still stopped, and the health check.
  const late = await Promise.all(users.slice(250, 300).map(claim));
  const healthStarted = performance.now();
  const health = await healthStatus(service.url);
  const healthMs = performance.now() - healthStarted;
  const stalledForMs = performance.now() - stalledAt;
  stack.mongo.signal('SIGCONT');

  const faulted = [...during, ...late];
  expect(faulted.filter((a) => !a.status && !a.code)).toEqual([]);
  expect(faulted.filter((a) => a.ms >= 3000)).toEqual([]);
  expect(late.map((a) => a.code)).toEqual(Array(late.length).fill('SERVICE_UNAVAILABLE'));
  expect(health).toBe(503);
  expect(healthMs).toBeLessThan(3000);

  // After the stall: no operator, yet every reservation made during it ends up in MongoDB.
  const convergedMs = await expectConverges(service.url, mongo.models, couponId, total);
  await within(15_000, '/healthz answers 200 again', async () => (await healthStatus(service.url)) === 200);
  const unavailable = faulted.filter((a) => a.code === 'SERVICE_UNAVAILABLE');
  const storedUsers = new Set((await storedIssuances(mongo.models, couponId)).map((doc) => doc.userId));
  // Those who heard SERVICE_UNAVAILABLE and whose claim was reserved in Redis hold it now; a retry tells them so.
  const retried = await Promise.all(unavailable.map((a) => claim(a.user)));
  const unexpected = retried.filter((a) => a.status !== (storedUsers.has(a.user) ? 'ALREADY_ISSUED' : 'ISSUED'));
  expect(unexpected).toEqual([]);
  const rest = await Promise.all(users.slice(300).map(claim));
  const stored = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, [...faulted, ...retried, ...rest]);
  expect(stored).toHaveLength(total);
  await expectConverges(service.url, mongo.models, couponId, total);

  const unavailableMs = unavailable.map((a) => a.ms);
  console.log(
    `mongo stall: stalled ${stalledForMs.toFixed(0)} ms; answers ${JSON.stringify(summarize(faulted))}; ` +
      `SERVICE_UNAVAILABLE in ${Math.min(...unavailableMs).toFixed(0)}-${Math.max(...unavailableMs).toFixed(0)} ms; /healthz 503 in ${healthMs.toFixed(0)} ms; ` +
      `remaining consistent ${convergedMs.toFixed(0)} ms after SIGCONT; ${storedUsers.size - faulted.filter((a) => a.status === 'ISSUED').length} reservations persisted for clients told SERVICE_UNAVAILABLE`,
  );
});
