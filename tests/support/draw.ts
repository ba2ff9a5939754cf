/**
 * Helpers of the opening-draw suites: coupons with a draw, claims fired at an instant, the
 * ranking recomputed from the published seed, and the draw's record read from MongoDB.
 */
import { createHash, createHmac } from 'node:crypto';
import { Types } from 'mongoose';
import type { Models } from '../../src/mongo/models';
import { gql } from './graphql';

export const DRAW_FIELDS = 'id totalQuantity remaining status startsAt openingDrawMs drawCommitment drawSeed drawEntrants';
export const DRAW_COUPON = `query Coupon($id: ID!) { coupon(id: $id) { ${DRAW_FIELDS} } }`;
export const CREATE_DRAW = `mutation Create($input: CreateCouponInput!) { createCoupon(input: $input) { ${DRAW_FIELDS} } }`;

export const rankKey = (seedHex: string, userId: string) => createHmac('sha256', Buffer.from(seedHex, 'hex')).update(userId, 'utf8').digest('hex');
export const commitmentOf = (seedHex: string) => createHash('sha256').update(Buffer.from(seedHex, 'hex')).digest('hex');

/** The users who should win: the `units` lowest rank keys among the entrants. */
export function expectedWinners(seedHex: string, entrants: string[], units: number): string[] {
  return [...new Set(entrants)]
    .map((user) => ({ user, key: rankKey(seedHex, user) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, units)
    .map((e) => e.user);
}

export async function createDrawCoupon(url: string, admin: string, input: Record<string, unknown>): Promise<Record<string, any>> {
  const reply = await gql(url, CREATE_DRAW, { input }, admin);
  if (!reply.data?.createCoupon) throw new Error(`createCoupon failed: ${JSON.stringify(reply.errors)}`);
  return reply.data.createCoupon;
}

/** Resolves at `atMs` (epoch ms), by a timer then a short spin, so a group fires at the instant. */
export async function at(atMs: number): Promise<void> {
  const wait = atMs - Date.now() - 15;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  while (Date.now() < atMs) await new Promise((resolve) => setImmediate(resolve));
}

/** The secret seed as MongoDB holds it (the test reads it to prove it was never shown before the draw). */
export async function storedSecret(models: Models, couponId: string): Promise<string> {
  const doc = await models.Coupon.findById(new Types.ObjectId(couponId)).select('+drawSecret').lean();
  return doc!.drawSecret!;
}
