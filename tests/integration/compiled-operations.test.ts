/**
 * Documents Apollo has accepted are answered from their compiled form (src/http/compiled-operations.ts).
 * Clients must not be able to tell: every request here is sent three times; Apollo answers the first
 * two (and compiles the document), the compiled path the third, and the last two answers must have
 * the same status, content type and body.
 */
import { CLAIM, createCoupon } from '../support/graphql';
import { postJson } from '../support/http';
import { adminToken, useTestService, userToken } from '../support/stack';


interface RawAnswer {
  status: number;
  contentType: string | undefined;
  requestId: string | undefined;
  body: string;
}

async function post(payload: object, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const reply = await postJson(suite.service.url, payload, { headers });
  return {
    status: reply.status,
    contentType: reply.headers['content-type'],
    requestId: reply.headers['x-request-id'] as string | undefined,
    body: reply.body.toString('utf8'),
  };
}

async function answeredBy(): Promise<Record<string, number>> {
  const { values } = await suite.service.metrics.graphqlRequests.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.path), v.value]));
}

let sent = 0;

/**
 * Sends the same request three times; says which path answered each time. Apollo answers the
 * first two (a document is compiled once it has been accepted twice), the compiled form the third.
 * A comment makes each document new to the service (documents are told apart by their exact text).
 */
async function thrice(request: { query: string } & Record<string, unknown>, headers: Record<string, string> = {}) {
  const payload = { ...request, query: `${request.query}\n# request ${++sent}` };
  const answers: RawAnswer[] = [];
  const paths: string[] = [];
  for (let i = 0; i < 3; i++) {
    const before = (await answeredBy()).compiled ?? 0;
    answers.push(await post(payload, headers));
    paths.push(((await answeredBy()).compiled ?? 0) > before ? 'compiled' : 'apollo');
  }
  return { first: answers[0]!, apollo: answers[1]!, compiled: answers[2]!, paths };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const UNKNOWN = '650000000000000000000000';

const suite = useTestService();

describe('a document Apollo accepted is answered compiled, exactly as Apollo answered it', () => {
  let soldOutId: string;
  let openId: string;
  let laterId: string;
  beforeAll(async () => {
    const admin = adminToken();
    [soldOutId, openId, laterId] = await Promise.all([
      createCoupon(suite.service.url, admin, { name: 'Gone', totalQuantity: 1 }),
      createCoupon(suite.service.url, admin, { name: 'Open', totalQuantity: 50 }),
      createCoupon(suite.service.url, admin, { name: 'Later', totalQuantity: 5, startsAt: new Date(Date.now() + 3_600_000).toISOString() }),
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
    const { apollo, compiled, paths } = await thrice(payload, headers);
    expect(paths).toEqual(['apollo', 'apollo', 'compiled']);
    expect({ ...compiled, requestId: undefined }).toEqual({ ...apollo, requestId: undefined });
    expect(compiled.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  // What urql and graphql-request send: Apollo answers application/graphql-response+json.
  const GRAPHQL_RESPONSE_ACCEPT = 'application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed';
  test.each(cases)('%s, for a client that prefers application/graphql-response+json', async (_label, make) => {
    const { payload, headers } = make();
    const { apollo, compiled, paths } = await thrice(payload, { ...headers, accept: GRAPHQL_RESPONSE_ACCEPT });
    expect(paths).toEqual(['apollo', 'apollo', 'compiled']);
    expect(compiled.contentType).toBe('application/graphql-response+json; charset=utf-8');
    expect({ ...compiled, requestId: undefined }).toEqual({ ...apollo, requestId: undefined });
  });

  test('null given to a nullable variable with a default, where the argument is required: BAD_USER_INPUT from both paths', async () => {
    const { first, apollo, compiled, paths } = await thrice({ query: `query($id: ID = "${UNKNOWN}") { coupon(id: $id) { id } }`, variables: { id: null } });
    expect(paths).toEqual(['apollo', 'apollo', 'compiled']);
    for (const answer of [first, apollo, compiled]) {
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({
        errors: [{ message: 'Argument "id" of non-null type "ID!" must not be null.', path: ['coupon'], extensions: { code: 'BAD_USER_INPUT' } }],
        data: { coupon: null },
      });
    }
    expect(compiled.body).toBe(apollo.body);
  });

  test('a win, then the same user again: ISSUED, then ALREADY_ISSUED with the same issuance from both paths', async () => {
    const { first, apollo, compiled, paths } = await thrice({ query: CLAIM, variables: { couponId: openId } }, bearer(userToken('winner')));
    expect(paths).toEqual(['apollo', 'apollo', 'compiled']);
    const won = JSON.parse(first.body).data.claimCoupon;
    expect(won.status).toBe('ISSUED');
    expect(JSON.parse(apollo.body).data.claimCoupon).toEqual({ ...won, status: 'ALREADY_ISSUED' });
    expect(compiled.body).toBe(apollo.body);
  });
});

describe('requests the compiled path leaves to Apollo', () => {
  test('invalid variables: Apollo answers every time (400, BAD_USER_INPUT)', async () => {
    const { first, compiled, paths } = await thrice({ query: 'query($id: ID!) { coupon(id: $id) { id name } }', variables: {} });
    expect(paths).toEqual(['apollo', 'apollo', 'apollo']);
    expect(first.status).toBe(400);
    expect(compiled).toEqual({ ...first, requestId: compiled.requestId });
  });

  test('a document that failed validation is never compiled', async () => {
    const twoClaims = `mutation { a: claimCoupon(couponId: "${UNKNOWN}") { status } b: claimCoupon(couponId: "${UNKNOWN}") { status } }`;
    const { first, paths } = await thrice({ query: twoClaims }, bearer(userToken('greedy')));
    expect(paths).toEqual(['apollo', 'apollo', 'apollo']);
    expect(first.status).toBe(400);
  });

  test('an accept Apollo refuses (406), and persisted-query extensions', async () => {
    const query = 'query { myIssuances { id } }';
    const html = await thrice({ query }, { accept: 'text/html' });
    expect(html.paths).toEqual(['apollo', 'apollo', 'apollo']);
    expect(html.compiled.status).toBe(406);
    const persisted = await thrice({ query, extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } });
    expect(persisted.paths).toEqual(['apollo', 'apollo', 'apollo']);
    expect(persisted.compiled.body).toBe(persisted.first.body);
  });


  test('a nested alias __proto__ is answered by Apollo every time, with the aliased field in the answer', async () => {
    const admin = adminToken();
    const id = await createCoupon(suite.service.url, admin, { name: 'Prototype', totalQuantity: 3 });
    const { first, compiled, paths } = await thrice({ query: 'query($id: ID!) { coupon(id: $id) { __proto__: name id } }', variables: { id } });
    expect(paths).toEqual(['apollo', 'apollo', 'apollo']);
    expect(JSON.parse(first.body).data.coupon).toEqual({ ['__proto__']: 'Prototype', id });
    expect({ ...compiled, requestId: undefined }).toEqual({ ...first, requestId: undefined });
  });

  test('introspection stays with Apollo', async () => {
    const { paths } = await thrice({ query: '{ __schema { queryType { name } } }' });
    expect(paths).toEqual(['apollo', 'apollo', 'apollo']);
  });
});
