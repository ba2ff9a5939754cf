import { Types } from 'mongoose';
import { CLAIM, createCoupon, gql, type GraphQLReply } from '../support/graphql';
import { adminToken, useTestService, userToken } from '../support/stack';


const suite = useTestService();

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

test('a drop of 3,000 concurrent claims on 300 coupons issues exactly 300, once per user, all durable', async () => {
  const stock = 300;
  const distinctUsers = 2500;
  const repeats = 500;
  const couponId = await createCoupon(suite.service.url, await adminToken(), { name: 'Drop', totalQuantity: stock });
  const users = Array.from({ length: distinctUsers }, (_, i) => `drop-user-${i}`);
  // Repeats: the first 500 users press the button twice, at the same moment.
  const claimants = [...users, ...users.slice(0, repeats)];
  const tokens = new Map(await Promise.all(users.map(async (u) => [u, await userToken(u)] as const)));

  const latencies: number[] = [];
  const started = performance.now();
  const replies = await Promise.all(
    claimants.map(async (user) => {
      const sent = performance.now();
      const reply: GraphQLReply = await gql(suite.service.url, CLAIM, { couponId }, tokens.get(user));
      latencies.push(performance.now() - sent);
      return { user, reply };
    }),
  );
  const wallMs = performance.now() - started;

  const failures = replies.filter(({ reply }) => reply.errors);
  expect(failures).toEqual([]);
  const issued = replies.filter(({ reply }) => reply.data!.claimCoupon.status === 'ISSUED');
  expect(issued).toHaveLength(stock);
  expect(new Set(issued.map(({ user }) => user)).size).toBe(stock);
  const statuses = new Set(replies.map(({ reply }) => reply.data!.claimCoupon.status));
  expect([...statuses].every((s) => ['ISSUED', 'ALREADY_ISSUED', 'SOLD_OUT'].includes(s))).toBe(true);

  const stored = await suite.service.models.Issuance.find({ couponId: new Types.ObjectId(couponId) }).lean();
  expect(stored).toHaveLength(stock);
  expect(new Set(stored.map((doc) => doc.userId)).size).toBe(stock);
  expect(stored.map((doc) => doc.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: stock }, (_, i) => i + 1));
  const storedIds = new Set(stored.map((doc) => doc._id.toHexString()));
  for (const { reply } of issued) expect(storedIds.has(reply.data!.claimCoupon.issuance.id)).toBe(true);

  // Everyone who won and pressed again saw the same issuance.
  const wonBy = new Map(issued.map(({ user, reply }) => [user, reply.data!.claimCoupon.issuance.id]));
  for (const { user, reply } of replies) {
    if (reply.data!.claimCoupon.status === 'ALREADY_ISSUED') expect(reply.data!.claimCoupon.issuance.id).toBe(wonBy.get(user));
  }

  latencies.sort((a, b) => a - b);
  console.log(
    `drop: ${claimants.length} claims (${distinctUsers} users, ${repeats} repeats) on stock ${stock}: ` +
      `wall ${wallMs.toFixed(0)} ms, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, ` +
      `max ${latencies.at(-1)!.toFixed(1)} ms`,
  );
});
