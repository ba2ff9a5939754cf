/**
 * GraphQL documents and helpers for the administration and issuance lifecycle suites.
 */
import { gql, type GraphQLReply } from './graphql';

export const ISSUANCE_FIELDS = 'id couponId userId sequence issuedAt status redeemedAt orderId cancelledAt';

export const UPDATE = `mutation Update($id: ID!, $input: UpdateCouponInput!) {
  updateCoupon(id: $id, input: $input) { id name totalQuantity remaining issuedCount status startsAt endsAt redeemBy }
}`;
export const END = `mutation End($id: ID!) { endCoupon(id: $id) { id status endsAt remaining } }`;
export const REDEEM = `mutation Redeem($issuanceId: ID!, $orderId: String!) { redeemIssuance(issuanceId: $issuanceId, orderId: $orderId) { ${ISSUANCE_FIELDS} } }`;
export const CANCEL = `mutation Cancel($issuanceId: ID!) { cancelIssuance(issuanceId: $issuanceId) { ${ISSUANCE_FIELDS} } }`;
export const COUPONS = `query Coupons($status: CouponStatus, $first: Int, $after: String) {
  coupons(status: $status, first: $first, after: $after) {
    edges { cursor node { id name totalQuantity remaining issuedCount status startsAt endsAt redeemBy } }
    pageInfo { hasNextPage endCursor }
  }
}`;
export const COUPON_ISSUANCES = `query Issuances($couponId: ID!, $first: Int, $after: String) {
  couponIssuances(couponId: $couponId, first: $first, after: $after) {
    edges { cursor node { ${ISSUANCE_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;
export const AUDIT = `query Audit($couponId: ID, $first: Int, $after: String) {
  auditLog(couponId: $couponId, first: $first, after: $after) {
    edges { cursor node { id at action actorId actorIsAdmin couponId issuanceId before after } }
    pageInfo { hasNextPage endCursor }
  }
}`;
export const CLAIM_FULL = `mutation Claim($couponId: ID!) {
  claimCoupon(couponId: $couponId) { status remaining issuance { ${ISSUANCE_FIELDS} } }
}`;

/** The data of a reply, or a thrown error naming the codes it carried. */
export function dataOf<T = Record<string, any>>(reply: GraphQLReply<T>): T {
  if (reply.errors || !reply.data) throw new Error(`GraphQL errors: ${JSON.stringify(reply.errors)} (HTTP ${reply.status})`);
  return reply.data;
}

export async function claimIssuance(url: string, couponId: string, token: string): Promise<Record<string, any>> {
  return dataOf(await gql(url, CLAIM_FULL, { couponId }, token)).claimCoupon;
}
