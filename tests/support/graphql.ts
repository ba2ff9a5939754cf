/**
 * A minimal GraphQL-over-HTTP client for tests: what a frontend sends, nothing more.
 */
import http from 'node:http';
export interface GraphQLReply<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } & Record<string, unknown> }>;
}

// node:http with keep-alive: several times cheaper per request than fetch, which matters
// when one test process plays thousands of users.
const agent = new http.Agent({ keepAlive: true });

export function gql<T = Record<string, any>>(
  baseUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<GraphQLReply<T>> {
  const payload = JSON.stringify({ query, variables });
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
  if (token) headers.authorization = token.startsWith('Bearer ') ? token : `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const request = http.request(`${baseUrl}/graphql`, { method: 'POST', headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode!, ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<GraphQLReply<T>, 'status'>) });
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(payload);
  });
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
