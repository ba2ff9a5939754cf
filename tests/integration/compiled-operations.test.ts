/**
 * Documents Apollo has accepted are answered from their compiled form (src/http/compiled-operations.ts).
 * Clients must not be able to tell: every request here is sent twice, the first answer comes from
 * Apollo (which learns the document), the second from the compiled path, and status, content type
 * and body must be identical.
 */
import http from 'node:http';
import type { RunningService } from '../../src/service';
import { CLAIM, createCoupon } from '../support/graphql';
import { adminToken, startStack, startTestService, userToken, type Stack } from '../support/stack';

let stack: Stack;
let service: RunningService;

interface RawAnswer {
  status: number;
  contentType: string | undefined;
  requestId: string | undefined;
  body: string;
}

function post(payload: object, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const body = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${service.url}/graphql`,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode!,
            contentType: response.headers['content-type'],
            requestId: response.headers['x-request-id'] as string | undefined,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function answeredBy(): Promise<Record<string, number>> {
  const { values } = await service.metrics.graphqlRequests.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.path), v.value]));
}

let sent = 0;

/**
 * Sends the same request twice; says which path answered each time. A comment makes each
 * document new to the service (documents are told apart by their exact text).
 */
async function twice(request: { query: string } & Record<string, unknown>, headers: Record<string, string> = {}) {
  const payload = { ...request, query: `${request.query}\n# request ${++sent}` };
  const before = await answeredBy();
  const first = await post(payload, headers);
  const middle = await answeredBy();
  const second = await post(payload, headers);
  const after = await answeredBy();
  const path = (from: Record<string, number>, to: Record<string, number>) => ((to.compiled ?? 0) > (from.compiled ?? 0) ? 'compiled' : 'apollo');
  return { first, second, paths: [path(before, middle), path(middle, after)] };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const UNKNOWN = '650000000000000000000000';

beforeAll(async () => {
  stack = await startStack();
  service = await startTestService(stack);
});

afterAll(async () => {
  await service?.stop();
  await stack?.stop();
});

describe('a document Apollo accepted is answered compiled, exactly as Apollo answered it', () => {
  let soldOutId: string;
  let openId: string;
  let laterId: string;
  beforeAll(async () => {
    const admin = adminToken();
    [soldOutId, openId, laterId] = await Promise.all([
      createCoupon(service.url, admin, { name: 'Gone', totalQuantity: 1 }),
      createCoupon(service.url, admin, { name: 'Open', totalQuantity: 50 }),
      createCoupon(service.url, admin, { name: 'Later', totalQuantity: 5, startsAt: new Date(Date.now() + 3_600_000).toISOString() }),
    ]);
    await post({ query: CLAIM, variables: { couponId: soldOutId } }, bearer(userToken('first-and-only')));
  });

  const cases: Array<[string, () => { payload: { query: string } & Record<string, unknown>; headers?: Record<string, string> }]> = [
    ['SOLD_OUT', () => ({ payload: { query: CLAIM, variables: { couponId: soldOutId } }, headers: bearer(userToken('late')) })],
    ['NOT_STARTED', () => ({ payload: { query: CLAIM, variables: { couponId: laterId } }, headers: bearer(userToken('early')) })],
    ['NOT_FOUND', () => ({ payload: { query: CLAIM, variables: { couponId: UNKNOWN } }, headers: bearer(userToken('lost')) })],
    ['UNAUTHENTICATED without a token', () => ({ payload: { query: CLAIM, variables: { couponId: openId } } })],
    ['UNAUTHENTICATED with a bad token', () => ({ payload: { query: CLAIM, variables: { couponId: openId } }, headers: bearer('not.a.token') })],
    ['BAD_USER_INPUT for a malformed id', () => ({ payload: { query: CLAIM, variables: { couponId: 'nope' } }, headers: bearer(userToken('typo')) })],
    ['FORBIDDEN for a user creating a coupon', () => ({ payload: { query: 'mutation { createCoupon(input: { name: "x", totalQuantity: 1 }) { id } }' }, headers: bearer(userToken('mallory')) })],
    [
      'aliases, fragments, __typename and an operation name',
      () => ({
        payload: {
          query: 'query Other { coupon(id: "650000000000000000000000") { id } } mutation Mine($c: ID!) { mine: claimCoupon(couponId: $c) { ...Outcome __typename } } fragment Outcome on ClaimResult { status remaining issuance { id } }',
          operationName: 'Mine',
          variables: { c: soldOutId },
        },
        headers: bearer(userToken('fragmented')),
      }),
    ],
    [
      'a coupon with every field, its enum and DateTime scalars',
      () => ({ payload: { query: 'query($id: ID!) { coupon(id: $id) { id name totalQuantity remaining issuedCount status startsAt endsAt } }', variables: { id: soldOutId } } }),
    ],
    ['an unknown coupon (null)', () => ({ payload: { query: 'query($id: ID!) { coupon(id: $id) { id } }', variables: { id: UNKNOWN } } })],
    [
      '@include and @skip driven by variables',
      () => ({ payload: { query: 'query($id: ID!, $full: Boolean!) { coupon(id: $id) { id name @include(if: $full) remaining @skip(if: $full) } }', variables: { id: openId, full: true } } }),
    ],
    [
      'extensions a client library adds (Apollo ignores them)',
      () => ({ payload: { query: CLAIM, variables: { couponId: soldOutId }, extensions: { clientLibrary: { name: '@apollo/client', version: '4.0.0' } } }, headers: bearer(userToken('library')) }),
    ],
    ['myIssuances with nested coupons', () => ({ payload: { query: 'query { myIssuances { id sequence coupon { name status } } }' }, headers: bearer(userToken('first-and-only')) })],
  ];

  test.each(cases)('%s', async (_label, make) => {
    const { payload, headers } = make();
    const { first, second, paths } = await twice(payload, headers);
    expect(paths).toEqual(['apollo', 'compiled']);
    expect({ ...second, requestId: undefined }).toEqual({ ...first, requestId: undefined });
    expect(second.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a win, then the same user again: ISSUED from Apollo, ALREADY_ISSUED with the same issuance compiled', async () => {
    const { first, second, paths } = await twice({ query: CLAIM, variables: { couponId: openId } }, bearer(userToken('winner')));
    expect(paths).toEqual(['apollo', 'compiled']);
    const won = JSON.parse(first.body).data.claimCoupon;
    const again = JSON.parse(second.body).data.claimCoupon;
    expect(won.status).toBe('ISSUED');
    expect(again).toEqual({ ...won, status: 'ALREADY_ISSUED' });
  });
});

describe('requests the compiled path leaves to Apollo', () => {
  test('invalid variables: Apollo answers both times (400, BAD_USER_INPUT)', async () => {
    const { first, second, paths } = await twice({ query: 'query($id: ID!) { coupon(id: $id) { id name } }', variables: {} });
    expect(paths).toEqual(['apollo', 'apollo']);
    expect(first.status).toBe(400);
    expect(second).toEqual({ ...first, requestId: second.requestId });
  });

  test('a document that failed validation is never compiled', async () => {
    const twoClaims = `mutation { a: claimCoupon(couponId: "${UNKNOWN}") { status } b: claimCoupon(couponId: "${UNKNOWN}") { status } }`;
    const { first, paths } = await twice({ query: twoClaims }, bearer(userToken('greedy')));
    expect(paths).toEqual(['apollo', 'apollo']);
    expect(first.status).toBe(400);
  });

  test('another media type asked for in accept, and persisted-query extensions', async () => {
    const query = 'query { myIssuances { id } }';
    const graphqlResponse = await twice({ query }, { accept: 'application/graphql-response+json' });
    expect(graphqlResponse.paths).toEqual(['apollo', 'apollo']);
    expect(graphqlResponse.second.contentType).toMatch(/^application\/graphql-response\+json/);
    const persisted = await twice({ query, extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } });
    expect(persisted.paths).toEqual(['apollo', 'apollo']);
    expect(persisted.second.body).toBe(persisted.first.body);
  });


  test('introspection stays with Apollo', async () => {
    const { paths } = await twice({ query: '{ __schema { queryType { name } } }' });
    expect(paths).toEqual(['apollo', 'apollo']);
  });
});
