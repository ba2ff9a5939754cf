/**
 * A minimal GraphQL-over-HTTP client for tests: what a frontend sends, nothing more.
 */
import http from 'node:http';
import { postJson } from './http';

export interface GraphQLReply<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } & Record<string, unknown> }>;
}

const keepAlive = new http.Agent({ keepAlive: true });

/** A GraphQL request as a frontend sends it; `token` with or without its "Bearer " prefix. */
export async function gql<T = Record<string, any>>(
  baseUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
  agent: http.Agent = keepAlive,
): Promise<GraphQLReply<T>> {
  const headers = token ? { authorization: token.startsWith('Bearer ') ? token : `Bearer ${token}` } : {};
  const reply = await postJson(baseUrl, { query, variables }, { headers, agent });
  return { status: reply.status, ...(JSON.parse(reply.body.toString('utf8')) as Omit<GraphQLReply<T>, 'status'>) };
}

export const errorCode = (reply: GraphQLReply) => reply.errors?.[0]?.extensions?.code;

export const CLAIM = `mutation Claim($couponId: ID!) {
  claimCoupon(couponId: $couponId) { status remaining issuance { id couponId userId sequence issuedAt } }
}`;

export const CREATE = `mutation Create($input: CreateCouponInput!) {
  createCoupon(input: $input) { id name totalQuantity remaining issuedCount status startsAt endsAt }
}`;

export const COUPON = `query Coupon($id: ID!) {
  coupon(id: $id) { id name totalQuantity remaining issuedCount status startsAt endsAt }
}`;

export const MY_ISSUANCES = `query { myIssuances { id couponId userId sequence issuedAt coupon { id name } } }`;

export async function createCoupon(baseUrl: string, adminToken: string, input: Record<string, unknown>): Promise<string> {
  const reply = await gql(baseUrl, CREATE, { input }, adminToken);
  if (!reply.data?.createCoupon) throw new Error(`createCoupon failed: ${JSON.stringify(reply.errors)}`);
  return reply.data.createCoupon.id as string;
}
