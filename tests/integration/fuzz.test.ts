/**
 * Bounded, seeded fuzzing of POST /graphql: malformed JSON, wrong variable types, huge strings,
 * deep nesting, junk and truncated tokens, random bytes and wrong content types, mixed with
 * real claims. Every answer must be a clear 4xx or a coded GraphQL error (never a 5xx, never a
 * stack trace), the service must stay healthy, and MongoDB must hold exactly what the
 * successful claims reported.
 */
import http from 'node:http';
import { request } from '../support/http';
import { adminToken, productionEnv, userToken, useTestService } from '../support/stack';
import { CLAIM, COUPON, createCoupon, gql } from '../support/graphql';

const SEED = 0x5eed_c0de;
const CASES = 600;
const IN_FLIGHT = 8;
const USERS = 16;

const suite = useTestService((stack) => ({ ...productionEnv(stack), CLAIM_RATE_PER_USER: '10', CLAIM_RATE_PER_IP: '300' }));

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  return { next, int, pick, bytes };
}
type Random = ReturnType<typeof prng>;

interface FuzzCase {
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
  /** The user whose valid token the request carries, if any: only such a request may win. */
  claimant?: string;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

async function send(baseUrl: string, fuzz: FuzzCase): Promise<Answer> {
  const reply = await request(`${baseUrl}/graphql`, { method: 'POST', headers: fuzz.headers, body: fuzz.body });
  return { status: reply.status, contentType: String(reply.headers['content-type'] ?? ''), text: reply.body.toString('utf8') };
}

const JUNK_TOKENS = ['{', '}', '(', ')', '[', ']', '$', '$id', '...', '@', '@skip', '!', ':', '=', '|', '&', '"', '"""', '#', '\\', '\u0000', '\uffff', 'query', 'mutation', 'subscription', 'fragment', 'on', 'null', 'true', '-1e999', '0x1', '__schema', '__typename', 'claimCoupon', 'ID!', '😀'];
const CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=fuzz', 'application/graphql', 'application/xml', 'application/octet-stream', 'application/json; charset=utf-16', 'application/json', 'application/jsonx', '*/*', ''];
const VARIABLE_VALUES: unknown[] = [123, -1, 1.5, true, false, null, {}, [], ['a'], { $ne: null }, '', 'x', '0'.repeat(24), 'g'.repeat(24), 'f'.repeat(23), '\u0000'.repeat(24), '😀'.repeat(12), '<script>'];

function generators(random: Random, couponIds: string[], tokens: Map<string, string>) {
  const user = () => `fuzz-user-${random.int(1, USERS)}`;
  const json = (payload: unknown, extra: http.OutgoingHttpHeaders = {}): Pick<FuzzCase, 'headers' | 'body'> => ({
    headers: { 'content-type': 'application/json', ...extra },
    body: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)),
  });
  const claimBody = (couponId: unknown) => ({ query: CLAIM, variables: { couponId } });
  const auth = (userId: string) => ({ authorization: `Bearer ${tokens.get(userId)}` });
  const hugeString = () => 'A'.repeat(random.int(1_000, 80_000));
  const junkDocument = () => {
    const words = CLAIM.split(/(\s+|[{}():$!])/).filter((word) => word.trim() !== '');
    for (let edits = random.int(1, 6); edits > 0; edits--) {
      const at = random.int(0, words.length);
      const edit = random.int(0, 2);
      if (edit === 0) words.splice(at, 0, random.pick(JUNK_TOKENS));
      else if (edit === 1) words.splice(at, 1);
      else words[at] = random.pick(JUNK_TOKENS);
    }
    return words.join(' ').slice(0, random.int(1, 400));
  };

  return {
    'a well-formed claim': (): FuzzCase => {
      const claimant = user();
      return { claimant, ...json(claimBody(random.pick(couponIds)), auth(claimant)) };
    },
    'malformed JSON': (): FuzzCase => {
      const claimant = user();
      const text = JSON.stringify(claimBody(random.pick(couponIds)));
      const broken = random.next() < 0.5 ? text.slice(0, random.int(0, text.length - 1)) : text.replace(random.pick([':', ',', '"', '}']), random.pick(['', "'", '::', '\\']));
      return { claimant, ...json(broken, auth(claimant)) };
    },
    'a JSON body of the wrong shape': (): FuzzCase => {
      const shape = random.pick<unknown>([null, 5, 'query', [], [claimBody('x')], { query: 5 }, { query: ['{ __typename }'] }, { query: CLAIM, variables: '{"couponId":"x"}' }, { query: CLAIM, variables: [1] }, { query: CLAIM, operationName: {} }, { query: '{ __typename }', extensions: 'x' }, { query: '' }, {}]);
      return { ...json(JSON.stringify(shape), auth(user())) };
    },
    'a variable of the wrong type': (): FuzzCase => ({ ...json(claimBody(random.pick(VARIABLE_VALUES)), auth(user())) }),
    'a huge string': (): FuzzCase =>
      random.next() < 0.5
        ? { ...json(claimBody(hugeString()), auth(user())) }
        : { ...json({ query: `{ coupon(id: "${hugeString()}") { id } }` }) },
    'a deeply nested query': (): FuzzCase => {
      const depth = random.int(1, 20_000);
      const balanced = random.next() < 0.5;
      const query = `{ coupon(id: "x") ${'{ a '.repeat(depth)}${balanced ? '}'.repeat(depth) : ''} }`;
      return { ...json({ query }) };
    },
    'junk and truncated tokens': (): FuzzCase => {
      const claimant = user();
      return { claimant, ...json({ query: junkDocument(), variables: { couponId: random.pick(couponIds) } }, auth(claimant)) };
    },
    'random bytes': (): FuzzCase => ({
      headers: { 'content-type': random.pick(CONTENT_TYPES) },
      body: random.bytes(random.int(0, 3_000)),
    }),
    'a wrong content type': (): FuzzCase => {
      const claimant = user();
      const contentType = random.pick(CONTENT_TYPES);
      const headers: http.OutgoingHttpHeaders = { ...auth(claimant), ...(contentType ? { 'content-type': contentType } : {}) };
      return { claimant, headers, body: Buffer.from(JSON.stringify(claimBody(random.pick(couponIds)))) };
    },
    'a junk token': (): FuzzCase => {
      const authorization = random.pick([`Bearer ${random.bytes(random.int(1, 200)).toString('base64')}`, `Bearer ${'e'.repeat(random.int(1, 12_000))}`, 'Bearer', 'Basic dXNlcjpwYXNz', `Bearer ${tokens.get(user())!.slice(0, -random.int(1, 20))}`]);
      return { ...json(claimBody(random.pick(couponIds)), { authorization }) };
    },
  };
}

/** A problem with one answer, or undefined when the answer is clear and coded. */
function problemWith(answer: Answer): string | undefined {
  if (answer.status >= 500) return `status ${answer.status}`;
  if (/stacktrace|\n\s+at |node_modules|\/src\//.test(answer.text)) return 'internal detail in the body';
  // Node's own HTTP layer answers a few requests (431 header too large) before any route runs.
  if (!answer.contentType.includes('json')) return answer.status >= 400 ? undefined : `a non-JSON ${answer.status} answer`;
  let body: { data?: unknown; errors?: Array<{ extensions?: { code?: unknown } }> };
  try {
    body = JSON.parse(answer.text);
  } catch {
    return 'unparseable JSON body';
  }
  if (answer.status === 200 && !body.errors && !body.data) return 'neither data nor errors';
  for (const error of body.errors ?? []) if (typeof error.extensions?.code !== 'string') return 'an error without a code';
  return undefined;
}

test('seeded malformed and hostile requests all get a clear coded answer, and MongoDB holds exactly what was reported', async () => {
  const admin = await adminToken();
  const totals = [5, 1_000];
  const couponIds = await Promise.all(totals.map((totalQuantity) => createCoupon(suite.service.url, admin, { name: 'Fuzz', totalQuantity })));
  const tokens = new Map<string, string>();
  for (let i = 1; i <= USERS; i++) tokens.set(`fuzz-user-${i}`, await userToken(`fuzz-user-${i}`));

  const random = prng(SEED);
  const kinds = Object.entries(generators(random, couponIds, tokens));
  const cases = Array.from({ length: CASES }, () => {
    const [kind, make] = random.pick(kinds);
    return { kind, ...make() };
  });

  const problems: string[] = [];
  const issued: Array<{ couponId: string; userId: string; id: string; sequence: number }> = [];
  const seenKinds = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const fuzz = cases[next++]!;
      seenKinds.set(fuzz.kind, (seenKinds.get(fuzz.kind) ?? 0) + 1);
      const answer = await send(suite.service.url, fuzz);
      const problem = problemWith(answer);
      if (problem) problems.push(`${fuzz.kind}: ${problem}: ${answer.status} ${answer.text.slice(0, 300)}`);
      const claim = answer.status === 200 ? JSON.parse(answer.text).data?.claimCoupon : undefined;
      if (claim?.status === 'ISSUED') {
        expect(claim.issuance.userId).toBe(fuzz.claimant);
        issued.push({ couponId: claim.issuance.couponId, userId: claim.issuance.userId, id: claim.issuance.id, sequence: claim.issuance.sequence });
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));

  expect(problems).toEqual([]);
  expect(seenKinds.size).toBe(kinds.length);
  expect(issued.length).toBeGreaterThan(0);

  const health = await fetch(`${suite.service.url}/healthz`);
  expect(health.status).toBe(200);

  for (const [index, couponId] of couponIds.entries()) {
    const reported = issued.filter((issuance) => issuance.couponId === couponId);
    const stored = await suite.service.models.Issuance.find({ couponId }).lean();
    expect(stored).toHaveLength(reported.length);
    expect(new Set(stored.map((issuance) => issuance.userId)).size).toBe(stored.length);
    expect(new Set(stored.map((issuance) => issuance.sequence)).size).toBe(stored.length);
    expect(stored.map((issuance) => String(issuance._id)).sort()).toEqual(reported.map((issuance) => issuance.id).sort());
    expect(stored.length).toBeLessThanOrEqual(totals[index]!);
    const coupon = await gql(suite.service.url, COUPON, { id: couponId });
    expect(coupon.data!.coupon.remaining).toBe(totals[index]! - stored.length);
  }

  // After all of it, an ordinary user can still claim.
  const after = await gql(suite.service.url, CLAIM, { couponId: couponIds[1] }, await userToken('after-the-storm'));
  expect(after.data!.claimCoupon.status).toBe('ISSUED');
});
