/**
 * Abuse resistance over real HTTP: claim rate limits kept in Redis (per user, per address,
 * across instances), and the limits on one request's shape, size, origin and batching.
 */
import http from 'node:http';
import type { RunningService } from '../../src/service';
import { REQUEST_LIMITS } from '../../src/http/request-limits';
import { RATE_LIMIT_KEY_PREFIX } from '../../src/access/rate-limiter';
import { request } from '../support/http';
import { adminToken, productionEnv, startStack, startTestService, TEST_SECRET, userToken, type Stack } from '../support/stack';
import { CLAIM, createCoupon, errorCode, gql, type GraphQLReply } from '../support/graphql';

let stack: Stack;
/** Production settings, 3 claims per user per second, no address limit. */
let production: RunningService;
/** A second instance with the same settings and the same Redis. */
let twin: RunningService;
/** 5 claims per address per second, no user limit. */
let perAddress: RunningService;
/** Development settings, both limits off. */
let open: RunningService;
/** 5 claims per address per second, behind a reverse proxy on loopback (TRUSTED_PROXIES). */
let behindProxy: RunningService;
let admin: string;

const PER_USER = 3;
const PER_ADDRESS = 5;

beforeAll(async () => {
  stack = await startStack();
  const production3PerUser = { ...productionEnv(stack), CLAIM_RATE_PER_USER: String(PER_USER), CLAIM_RATE_PER_IP: '0' };
  [production, twin, perAddress, open, behindProxy] = await Promise.all([
    startTestService(stack, production3PerUser),
    startTestService(stack, production3PerUser),
    startTestService(stack, { CLAIM_RATE_PER_USER: '0', CLAIM_RATE_PER_IP: String(PER_ADDRESS) }),
    startTestService(stack),
    startTestService(stack, { CLAIM_RATE_PER_USER: '0', CLAIM_RATE_PER_IP: String(PER_ADDRESS), TRUSTED_PROXIES: 'loopback' }),
  ]);
  admin = await adminToken();
});

afterAll(async () => {
  await Promise.all([production, twin, perAddress, open, behindProxy].map((service) => service?.stop()));
  await stack?.stop();
});

const newCoupon = (totalQuantity = 100) => createCoupon(open.url, admin, { name: 'Abuse', totalQuantity });
const codes = (replies: GraphQLReply[]) => replies.map((reply) => errorCode(reply) ?? reply.data?.claimCoupon?.status);
const count = (values: unknown[], value: unknown) => values.filter((v) => v === value).length;
const redisFallbacks = async (service: RunningService) =>
  (await service.metrics.dependencyErrors.get()).values.find((value) => value.labels.dependency === 'redis')?.value ?? 0;

/** POST /graphql with any body and headers, written chunk by chunk. */
const rawPost = (baseUrl: string, headers: http.OutgoingHttpHeaders, chunks: Buffer[]) =>
  request(`${baseUrl}/graphql`, { method: 'POST', headers, body: chunks }).then((reply) => ({ status: reply.status, body: reply.body.toString('utf8') }));

const post = (baseUrl: string, payload: unknown, headers: Record<string, string> = {}) =>
  rawPost(baseUrl, { 'content-type': 'application/json', ...headers }, [Buffer.from(JSON.stringify(payload))]).then(({ status, body }) => ({
    status,
    ...(JSON.parse(body) as Omit<GraphQLReply, 'status'>),
  }));

describe('claim rate limits', () => {
  test('a bot hammering claimCoupon gets RATE_LIMITED while an honest user claiming once is unaffected', async () => {
    const couponId = await newCoupon();
    const bot = await userToken('bot');
    const honest = await userToken('honest');
    const [hammering, once] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, () => gql(production.url, CLAIM, { couponId }, bot))),
      gql(production.url, CLAIM, { couponId }, honest),
    ]);
    const outcomes = codes(hammering);
    // Fixed one-second windows: a burst across a window edge may pass twice the limit.
    expect(count(outcomes, 'RATE_LIMITED')).toBeGreaterThanOrEqual(20 - 2 * PER_USER);
    expect(count(outcomes, 'ISSUED')).toBe(1);
    expect(once.data!.claimCoupon.status).toBe('ISSUED');
    const limited = hammering.find((reply) => errorCode(reply) === 'RATE_LIMITED')!;
    expect(limited.errors![0]!.message).toBe('too many claims, slow down');
    expect(limited.errors![0]!.extensions!.retryAfterMs).toBeGreaterThan(0);
    expect(await production.models.Issuance.countDocuments({ couponId })).toBe(2);
  });

  test('the per-user limit holds across instances that share Redis', async () => {
    const couponId = await newCoupon();
    const bot = await userToken('roaming-bot');
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => gql(i % 2 ? twin.url : production.url, CLAIM, { couponId }, bot)));
    expect(count(codes(replies), 'RATE_LIMITED')).toBeGreaterThanOrEqual(20 - 2 * PER_USER);
  });

  test('a user limited a moment ago may claim again in the next second', async () => {
    const couponId = await newCoupon();
    const eager = await userToken('eager');
    await Promise.all(Array.from({ length: 10 }, () => gql(production.url, CLAIM, { couponId }, eager)));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await gql(production.url, CLAIM, { couponId }, eager)).data!.claimCoupon.status).toBe('ALREADY_ISSUED');
  });

  test('many users behind one address are limited together by the per-address limit', async () => {
    const couponId = await newCoupon();
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => userToken(`office-${i}`)));
    const outcomes = codes(await Promise.all(tokens.map((token) => gql(perAddress.url, CLAIM, { couponId }, token))));
    expect(count(outcomes, 'RATE_LIMITED')).toBeGreaterThanOrEqual(20 - 2 * PER_ADDRESS);
    expect(count(outcomes, 'ISSUED')).toBe(20 - count(outcomes, 'RATE_LIMITED'));
    expect(await perAddress.models.Issuance.countDocuments({ couponId })).toBe(count(outcomes, 'ISSUED'));
  });

  describe('the client address behind a reverse proxy', () => {
    /** Twenty users claiming at once, each request carrying the X-Forwarded-For `forwardedFor(i)`. */
    const claimForwarded = async (service: RunningService, name: string, forwardedFor: (i: number) => string) => {
      const couponId = await newCoupon();
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => userToken(`${name}-${i}`)));
      return codes(
        await Promise.all(tokens.map((token, i) => post(service.url, { query: CLAIM, variables: { couponId } }, { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor(i) }))),
      );
    };

    test('users a trusted proxy forwards from different addresses are limited apart', async () => {
      const outcomes = await claimForwarded(behindProxy, 'forwarded', (i) => `203.0.113.${i + 1}`);
      expect(count(outcomes, 'ISSUED')).toBe(20);
    });

    test('users a trusted proxy forwards from one address are limited together', async () => {
      const outcomes = await claimForwarded(behindProxy, 'forwarded-office', () => '198.51.100.7');
      expect(count(outcomes, 'RATE_LIMITED')).toBeGreaterThanOrEqual(20 - 2 * PER_ADDRESS);
    });

    test('addresses a client writes into X-Forwarded-For itself count for nothing: the proxy appends the one it saw', async () => {
      const outcomes = await claimForwarded(behindProxy, 'forged-chain', (i) => `192.0.2.${i + 1}, 198.51.100.9`);
      expect(count(outcomes, 'RATE_LIMITED')).toBeGreaterThanOrEqual(20 - 2 * PER_ADDRESS);
    });

    test('without TRUSTED_PROXIES the header is ignored: the connection is the client', async () => {
      const outcomes = await claimForwarded(perAddress, 'unproxied', (i) => `203.0.113.${i + 1}`);
      expect(count(outcomes, 'RATE_LIMITED')).toBeGreaterThanOrEqual(20 - 2 * PER_ADDRESS);
    });
  });

  test('while Redis stalls, the limiter counts in memory after a short wait instead of failing the claims', async () => {
    const couponId = await newCoupon();
    const token = await userToken('during-stall');
    const fallbacksBefore = await redisFallbacks(production);
    // Every script waits while writes are paused: the limiter's counts and the claim's own.
    await production.redis.call('CLIENT', 'PAUSE', '700', 'WRITE');
    const started = performance.now();
    const outcomes = codes(await Promise.all(Array.from({ length: 2 * PER_USER }, () => gql(production.url, CLAIM, { couponId }, token))));
    expect(performance.now() - started).toBeLessThan(2500);
    expect(count(outcomes, 'RATE_LIMITED')).toBe(PER_USER);
    expect(count(outcomes, 'ISSUED')).toBe(1);
    expect(count(outcomes, 'ALREADY_ISSUED')).toBe(PER_USER - 1);
    expect((await redisFallbacks(production)) - fallbacksBefore).toBeGreaterThanOrEqual(2 * PER_USER);
  });

  test('limits set to 0 are off: thirty claims at once by one user are all answered', async () => {
    const couponId = await newCoupon();
    const token = await userToken('unlimited');
    const outcomes = codes(await Promise.all(Array.from({ length: 30 }, () => gql(open.url, CLAIM, { couponId }, token))));
    expect(count(outcomes, 'RATE_LIMITED')).toBe(0);
    expect(count(outcomes, 'ISSUED')).toBe(1);
    expect(count(outcomes, 'ALREADY_ISSUED')).toBe(29);
  });

  test('limiter keys live under their own prefix, apart from coupon keys, and expire', async () => {
    const couponId = await newCoupon();
    await gql(production.url, CLAIM, { couponId }, await userToken('keyed'));
    const keys = await production.redis.keys(`${RATE_LIMIT_KEY_PREFIX}:*`);
    expect(keys.every((key) => !key.startsWith('coupon:'))).toBe(true);
    // The user's count is a field of its window's hash, which goes a window after its own.
    const userHashes = keys.filter((key) => key.startsWith(`${RATE_LIMIT_KEY_PREFIX}:user:`));
    const counts = await Promise.all(userHashes.map((key) => production.redis.hget(key, 'keyed')));
    const hash = userHashes[counts.findIndex((count) => count !== null)];
    expect(hash).toBeDefined();
    const ttl = await production.redis.pttl(hash!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2000);
  });
});

describe('one request cannot claim many times', () => {
  test('two aliased claims in one operation are refused before either runs', async () => {
    const couponId = await newCoupon();
    const token = await userToken('alias-bot');
    const reply = await gql(open.url, `mutation { a: claimCoupon(couponId: "${couponId}") { status } b: claimCoupon(couponId: "${couponId}") { status } }`, {}, token);
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(reply.errors![0]!.message).toMatch(/claimCoupon at most 1/);
    expect(await open.models.Issuance.countDocuments({ couponId })).toBe(0);
  });

  test('claims hidden in fragments and inline fragments are counted too', async () => {
    const couponId = await newCoupon();
    const token = await userToken('fragment-bot');
    const query = `mutation { ...One ... on Mutation { b: claimCoupon(couponId: "${couponId}") { status } } }
      fragment One on Mutation { a: claimCoupon(couponId: "${couponId}") { status } }`;
    const reply = await gql(open.url, query, {}, token);
    expect(errorCode(reply)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(await open.models.Issuance.countDocuments({ couponId })).toBe(0);
  });

  test('a thousand aliased claims are refused with a 400 and nothing is issued', async () => {
    const couponId = await newCoupon();
    const fields = Array.from({ length: 1000 }, (_, i) => `c${i}: claimCoupon(couponId: $id) { status }`).join(' ');
    const reply = await gql(open.url, `mutation ($id: ID!) { ${fields} }`, { id: couponId }, await userToken('thousand'));
    expect(reply.status).toBe(400);
    expect(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED']).toContain(errorCode(reply));
    expect(await open.models.Issuance.countDocuments({ couponId })).toBe(0);
  });

  test('the same claim field written twice without an alias runs once', async () => {
    const couponId = await newCoupon();
    const reply = await gql(open.url, `mutation { claimCoupon(couponId: "${couponId}") { status } claimCoupon(couponId: "${couponId}") { remaining } }`, {}, await userToken('twice'));
    expect(reply.data!.claimCoupon).toEqual({ status: 'ISSUED', remaining: 99 });
    expect(await open.models.Issuance.countDocuments({ couponId })).toBe(1);
  });
});

describe('limits on the shape of a request', () => {
  const couponFields = 'id name totalQuantity remaining issuedCount status startsAt endsAt';
  const aliasedCoupons = (n: number, id: string) => `query { ${Array.from({ length: n }, (_, i) => `c${i}: coupon(id: "${id}") { ${couponFields} }`).join(' ')} }`;

  test(`a page asking for ${REQUEST_LIMITS.maxAliases} full coupons through aliases is answered`, async () => {
    const couponId = await newCoupon();
    const reply = await gql(production.url, aliasedCoupons(REQUEST_LIMITS.maxAliases, couponId));
    expect(reply.errors).toBeUndefined();
    expect(Object.keys(reply.data!)).toHaveLength(REQUEST_LIMITS.maxAliases);
  });

  test('one alias more than the limit is refused with GRAPHQL_VALIDATION_FAILED', async () => {
    const couponId = await newCoupon();
    const reply = await gql(production.url, aliasedCoupons(REQUEST_LIMITS.maxAliases + 1, couponId));
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(reply.errors![0]!.message).toMatch(/alias/i);
  });

  test('a query nested deeper than the limit is refused', async () => {
    const nested = 'a { '.repeat(REQUEST_LIMITS.maxDepth + 1) + 'b' + ' }'.repeat(REQUEST_LIMITS.maxDepth + 1);
    const reply = await gql(production.url, `query { coupon(id: "x") { ${nested} } }`);
    expect(reply.status).toBe(400);
    expect(reply.errors!.map((error) => error.message).join('\n')).toMatch(/depth limit/i);
    expect(reply.errors!.every((error) => error.extensions?.code === 'GRAPHQL_VALIDATION_FAILED')).toBe(true);
  });

  test('a cheap-looking field repeated past the cost limit is refused', async () => {
    const reply = await gql(production.url, `query { coupon(id: "x") { ${'name '.repeat(REQUEST_LIMITS.maxCost)} } }`);
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(reply.errors![0]!.message).toMatch(/cost limit/i);
  });

  test('more directives than the limit are refused', async () => {
    const reply = await gql(production.url, `query { __typename ${'@skip(if: false) '.repeat(REQUEST_LIMITS.maxDirectives + 1)} }`);
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  test('a document with more tokens than the limit is refused while parsing', async () => {
    const reply = await gql(production.url, `query { ${'__typename '.repeat(REQUEST_LIMITS.maxTokens)} }`);
    expect(reply.status).toBe(400);
    expect(errorCode(reply)).toBe('GRAPHQL_PARSE_FAILED');
  });

  test('a batch of operations in one array body is refused', async () => {
    const reply = await post(production.url, [{ query: '{ __typename }' }, { query: '{ __typename }' }]);
    expect(reply.status).toBe(400);
    expect(reply.errors![0]!.message).toMatch(/batching/i);
  });

  test('a persisted-query hash is not accepted in place of a query', async () => {
    const reply = await post(production.url, { extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } });
    expect(errorCode(reply as GraphQLReply)).toBe('PERSISTED_QUERY_NOT_SUPPORTED');
  });
});

describe('request body size', () => {
  const padded = (bytes: number) => {
    const payload = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
    return Buffer.from(payload.replace('"pad":""', `"pad":"${'x'.repeat(bytes - payload.length)}"`));
  };

  test('a body of exactly 64 KB is served', async () => {
    const body = padded(64 * 1024);
    const reply = await rawPost(production.url, { 'content-type': 'application/json', 'content-length': body.length }, [body]);
    expect(reply.status).toBe(200);
  });

  test('a body one byte over 64 KB gets 413', async () => {
    const body = padded(64 * 1024 + 1);
    const reply = await rawPost(production.url, { 'content-type': 'application/json', 'content-length': body.length }, [body]);
    expect(reply.status).toBe(413);
    expect(JSON.parse(reply.body).errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  test('an oversized body sent in chunks without a length also gets 413, not a reset', async () => {
    const body = padded(200 * 1024);
    const chunks = Array.from({ length: 10 }, (_, i) => body.subarray((i * body.length) / 10, ((i + 1) * body.length) / 10));
    const reply = await rawPost(production.url, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, chunks);
    expect(reply.status).toBe(413);
  });
});

describe('cross-site requests, introspection and error detail', () => {
  test('a simple-request POST with text/plain is refused as possible CSRF and claims nothing', async () => {
    const couponId = await newCoupon();
    const token = await userToken('csrf-victim');
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const body = Buffer.from(JSON.stringify({ query: CLAIM, variables: { couponId } }));
      const reply = await rawPost(open.url, { 'content-type': contentType, authorization: `Bearer ${token}` }, [body]);
      expect(reply.status).toBe(400);
      expect(reply.body).toMatch(/Cross-Site Request Forgery/);
    }
    expect(await open.models.Issuance.countDocuments({ couponId })).toBe(0);
  });

  test('in production introspection is refused and field suggestions are hidden', async () => {
    const introspection = await gql(production.url, '{ __schema { types { name } } }');
    expect(introspection.status).toBe(400);
    expect(errorCode(introspection)).toBe('GRAPHQL_VALIDATION_FAILED');
    const typo = await gql(production.url, '{ coupn(id: "x") { id } }');
    expect(typo.errors![0]!.message).not.toMatch(/Did you mean/);
  });

  test('in production GET /graphql from a browser gets no playground page', async () => {
    const response = await fetch(`${production.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.headers.get('content-type')).not.toMatch(/text\/html/);
    expect(await response.text()).not.toMatch(/graphiql/i);
  });

  test('in development introspection and suggestions are available', async () => {
    expect((await gql(open.url, '{ __schema { queryType { name } } }')).data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    expect((await gql(open.url, '{ coupn(id: "x") { id } }')).errors![0]!.message).toMatch(/Did you mean "coupon"/);
  });

  test('production with INTROSPECTION_ENABLED=true allows introspection', async () => {
    const service = await startTestService(stack, {
      NODE_ENV: 'production',
      REDIS_URL: stack.redis.url,
      MONGODB_URI: stack.mongo.url,
      JWT_SECRET: TEST_SECRET,
      INTROSPECTION_ENABLED: 'true',
    });
    try {
      expect((await gql(service.url, '{ __schema { queryType { name } } }')).data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    } finally {
      await service.stop();
    }
  });

  test('errors carry a code and never a stack trace', async () => {
    const replies = [
      await gql(production.url, '{ coupon(id: 5) { id } }'),
      await gql(production.url, CLAIM, { couponId: 'nope' }, await userToken('x')),
      await gql(production.url, CLAIM, { couponId: '0'.repeat(24) }),
      await post(production.url, { query: '{ coupon(id: "x") { id } }', variables: '{"a":1}' }),
    ];
    for (const reply of replies) {
      expect(reply.errors!.length).toBeGreaterThan(0);
      for (const error of reply.errors!) {
        expect(typeof error.extensions?.code).toBe('string');
        expect(error.extensions).not.toHaveProperty('stacktrace');
        expect(error.extensions).not.toHaveProperty('exception');
      }
    }
  });
});
