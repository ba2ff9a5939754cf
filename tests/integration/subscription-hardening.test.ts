/**
 * The WebSocket side under abuse: the same parse limits, error codes, masking and deadline as
 * POST /graphql, bounded resources per client address and per connection, slots given back on
 * every path, and client mistakes logged once through pino instead of stack traces on stderr.
 */
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { REQUEST_LIMITS } from '../../src/http/request-limits';
import { startService, type RunningService } from '../../src/service';
import { createCoupon } from '../support/graphql';
import { adminToken, startStack, startTestService, TEST_SECRET, type Stack } from '../support/stack';
import { errorsOf, rawSocket, STOCK_CHANGED, wsClient, watchStock, type RawSocket } from '../support/subscriptions';

let stack: Stack;
let admin: string;
const started: RunningService[] = [];
const sockets: RawSocket[] = [];

beforeAll(async () => {
  stack = await startStack();
  admin = await adminToken();
});

afterEach(() => {
  sockets.splice(0).forEach((socket) => socket.socket.terminate());
});

afterAll(async () => {
  await Promise.all(started.map((service) => service.stop()));
  await stack?.stop();
});

type LogLine = Record<string, unknown> & { msg: string; level: number };

/** A service through the real composition root, its pino lines kept for the test to read. */
async function serviceWithLogs(env: Record<string, string> = {}): Promise<{ service: RunningService; logs: LogLine[] }> {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    CLAIM_RATE_PER_USER: '0',
    CLAIM_RATE_PER_IP: '0',
    MAX_CONCURRENT_REQUESTS: '0',
    MAX_EVENT_LOOP_LAG_MS: '0',
    ...env,
  });
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const service = await startService({ ...config, redis: { kind: 'single', url: stack.redis.url }, mongoUri: stack.mongo.url, jwtSecret: TEST_SECRET }, logger);
  return { service, logs };
}

async function service(env: Record<string, string> = {}): Promise<RunningService> {
  const running = await startTestService(stack, env);
  started.push(running);
  return running;
}

async function connected(url: string, headers?: Record<string, string>): Promise<RawSocket> {
  const socket = await rawSocket(url, { headers });
  sockets.push(socket);
  await socket.init();
  return socket;
}

const firstError = async (socket: RawSocket, id: string) => errorsOf((await socket.outcome(id)).message)[0];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A valid subscription with a fragment nobody uses, `fields` selections long: ~9 bytes a field. */
const heavyDocument = (fields: number, salt: string) =>
  `${STOCK_CHANGED}\nfragment Unused${salt} on StockUpdate { ${'remaining '.repeat(fields)} }`;

describe('the parse limits of POST /graphql', () => {
  test('a 55 KB subscribe document is refused while parsing, fast, with GRAPHQL_PARSE_FAILED', async () => {
    const running = await service();
    const couponId = await createCoupon(running.url, admin, { name: 'Heavy', totalQuantity: 5 });
    const socket = await connected(running.url);
    const documents = Array.from({ length: 10 }, (_, i) => heavyDocument(5500, `n${i}`));
    expect(documents[0]!.length).toBeGreaterThan(50_000);
    const begin = performance.now();
    const errors = [];
    for (const [i, document] of documents.entries()) {
      socket.subscribe(`heavy-${i}`, document, { couponId });
      errors.push(await firstError(socket, `heavy-${i}`));
    }
    const elapsed = performance.now() - begin;
    for (const error of errors) {
      expect(error!.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
      expect(error!.message).toMatch(/token/i);
    }
    // Unbounded, each cost 127-165 ms of validation; refused at the token limit, well under 10 ms.
    expect(elapsed).toBeLessThan(600);
    // The socket still serves a normal subscription.
    socket.subscribe('fine', STOCK_CHANGED, { couponId });
    await sleep(300);
    expect(socket.messages.find((m) => m.id === 'fine')).toMatchObject({ type: 'next', payload: { data: { stockChanged: { remaining: 5 } } } });
  });

  test(`a document of exactly ${REQUEST_LIMITS.maxTokens} tokens still parses; one more is refused`, async () => {
    const running = await service();
    const socket = await connected(running.url);
    // `subscription { stockChanged(couponId: "x") { ... } }` is 11 tokens, each `remaining` one more.
    const withTokens = (tokens: number) => `subscription { stockChanged(couponId: "x") { ${'remaining '.repeat(tokens - 11)} } }`;
    socket.subscribe('at-limit', withTokens(REQUEST_LIMITS.maxTokens));
    socket.subscribe('over-limit', withTokens(REQUEST_LIMITS.maxTokens + 1));
    expect((await firstError(socket, 'at-limit'))!.extensions?.code).not.toBe('GRAPHQL_PARSE_FAILED');
    expect((await firstError(socket, 'over-limit'))!.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
  });
});

describe('resources per client', () => {
  test('one address may hold WS_MAX_CONNECTIONS_PER_IP connections; the next upgrade gets 429 until one closes', async () => {
    const running = await service({ WS_MAX_CONNECTIONS_PER_IP: '3' });
    const open = await Promise.all([0, 1, 2].map(() => connected(running.url)));
    await expect(rawSocket(running.url)).rejects.toMatchObject({ status: 429 });
    open[0]!.close();
    await open[0]!.closed;
    await sleep(50);
    await expect(connected(running.url)).resolves.toBeDefined();
  });

  test('behind a trusted proxy the cap counts the forwarded client address, not the proxy', async () => {
    const running = await service({ WS_MAX_CONNECTIONS_PER_IP: '2', TRUSTED_PROXIES: 'loopback' });
    const from = (address: string) => ({ 'x-forwarded-for': address });
    await Promise.all([connected(running.url, from('203.0.113.1')), connected(running.url, from('203.0.113.1'))]);
    await expect(rawSocket(running.url, { headers: from('203.0.113.1') })).rejects.toMatchObject({ status: 429 });
    await expect(connected(running.url, from('203.0.113.2'))).resolves.toBeDefined();
  });

  test('subscribe messages beyond WS_SUBSCRIBE_RATE_PER_CONNECTION are refused with RATE_LIMITED', async () => {
    const running = await service({ WS_SUBSCRIBE_RATE_PER_CONNECTION: '2', WS_SUBSCRIBE_RATE_PER_IP: '0' });
    const couponId = await createCoupon(running.url, admin, { name: 'Churn', totalQuantity: 5 });
    const socket = await connected(running.url);
    // 60 subscribes to a coupon that does not exist: each ends at once, so the slots stay free
    // and only the rate can refuse.
    for (let i = 0; i < 60; i++) socket.subscribe(`churn-${i}`, STOCK_CHANGED, { couponId: '0123456789abcdef01234567' });
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => socket.outcome(`churn-${i}`)));
    const codes = outcomes.map(({ message }) => errorsOf(message)[0]?.extensions?.code);
    // A burst of 20 + 2 (every slot filled at once) plus 2 a second may pass.
    expect(codes.filter((code) => code === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(60 - 22 - 4);
    // 20 at most are open at once (each waits for MongoDB): the rest of the burst meets the slot limit.
    expect(codes.filter((code) => code === 'NOT_FOUND').length).toBeGreaterThanOrEqual(20);
    const limited = outcomes.find(({ message }) => errorsOf(message)[0]?.extensions?.code === 'RATE_LIMITED')!;
    expect(errorsOf(limited.message)[0]!.extensions!.retryAfterMs).toBeGreaterThan(0);
    // A subscribe completed by the client before it was refused costs the same token, silently.
    await sleep(1000);
    for (let i = 0; i < 60; i++) {
      socket.subscribe(`quiet-${i}`, STOCK_CHANGED, { couponId });
      socket.complete(`quiet-${i}`);
    }
    socket.subscribe('after-churn', STOCK_CHANGED, { couponId });
    expect(errorsOf((await socket.outcome('after-churn')).message)[0]!.extensions?.code).toBe('RATE_LIMITED');
  });

  test('subscribe messages beyond WS_SUBSCRIBE_RATE_PER_IP are refused across the address\'s connections', async () => {
    const running = await service({ WS_SUBSCRIBE_RATE_PER_IP: '10' });
    const couponId = await createCoupon(running.url, admin, { name: 'ChurnIp', totalQuantity: 5 });
    const connections = await Promise.all(Array.from({ length: 5 }, () => connected(running.url)));
    connections.forEach((socket, c) => Array.from({ length: 8 }, (_, i) => socket.subscribe(`s${c}-${i}`, STOCK_CHANGED, { couponId })));
    const outcomes = await Promise.all(connections.flatMap((socket, c) => Array.from({ length: 8 }, (_, i) => socket.outcome(`s${c}-${i}`, 3000).catch(() => undefined))));
    const limited = outcomes.filter((o) => o && errorsOf(o.message)[0]?.extensions?.code === 'RATE_LIMITED');
    expect(limited.length).toBeGreaterThanOrEqual(40 - 10 - 2);
  });

  test('a connection without a subscription for WS_IDLE_TIMEOUT_MS is closed (1000); one watching stays open', async () => {
    const running = await service({ WS_IDLE_TIMEOUT_MS: '1000' });
    const couponId = await createCoupon(running.url, admin, { name: 'Idle', totalQuantity: 5 });
    const idle = await connected(running.url);
    const watching = await connected(running.url);
    watching.subscribe('w', STOCK_CHANGED, { couponId });
    const begin = performance.now();
    const { code, reason } = await idle.closed;
    expect(code).toBe(1000);
    expect(reason).toMatch(/idle/);
    expect(performance.now() - begin).toBeGreaterThan(800);
    await sleep(1200);
    expect(watching.socket.readyState).toBe(watching.socket.OPEN);
    // Once its last subscription completes, the idle clock starts.
    watching.complete('w');
    const after = performance.now();
    expect((await watching.closed).code).toBe(1000);
    expect(performance.now() - after).toBeLessThan(2500);
  });

  test('a connection is closed normally (1000) after WS_MAX_CONNECTION_AGE_MS, even while it watches', async () => {
    const running = await service({ WS_MAX_CONNECTION_AGE_MS: '1500' });
    const couponId = await createCoupon(running.url, admin, { name: 'Aged', totalQuantity: 5 });
    const begin = performance.now();
    const socket = await connected(running.url);
    socket.subscribe('w', STOCK_CHANGED, { couponId });
    const { code, reason } = await socket.closed;
    const lived = performance.now() - begin;
    expect(code).toBe(1000);
    expect(reason).toMatch(/age/);
    // Spread over the last 10% of the age, so a drop's connections do not all reconnect at once.
    expect(lived).toBeGreaterThan(1300);
    expect(lived).toBeLessThan(3500);
  });
});

describe('subscription slots', () => {
  test('subscribes refused by validation take no slot: after 20 of them a valid one is served', async () => {
    const running = await service({ WS_SUBSCRIBE_RATE_PER_CONNECTION: '0' });
    const couponId = await createCoupon(running.url, admin, { name: 'Slots', totalQuantity: 5 });
    const socket = await connected(running.url);
    for (let i = 0; i < 20; i++) socket.subscribe(`bad-${i}`, 'subscription { stockChanged(couponId: "x") { nope } }');
    for (let i = 0; i < 20; i++) await socket.outcome(`bad-${i}`);
    for (let i = 0; i < 5; i++) socket.subscribe(`missing-${i}`, STOCK_CHANGED, { couponId: '0123456789abcdef01234567' });
    for (let i = 0; i < 5; i++) expect((await firstError(socket, `missing-${i}`))!.extensions?.code).toBe('NOT_FOUND');
    socket.subscribe('good', STOCK_CHANGED, { couponId });
    await sleep(300);
    expect(socket.messages.filter((m) => m.id === 'good')).toEqual([{ id: 'good', type: 'next', payload: { data: { stockChanged: { couponId, remaining: 5, totalQuantity: 5, status: 'ACTIVE' } } } }]);
  });

  test('refused and failed subscribes leave no open slot behind: a graceful stop does not wait for them', async () => {
    const { service: running, logs } = await serviceWithLogs();
    try {
      const socket = await connected(running.url);
      for (let i = 0; i < 10; i++) socket.subscribe(`bad-${i}`, 'subscription { stockChanged(couponId: "x") { nope } }');
      for (let i = 0; i < 5; i++) socket.subscribe(`missing-${i}`, STOCK_CHANGED, { couponId: '0123456789abcdef01234567' });
      for (let i = 0; i < 10; i++) await socket.outcome(`bad-${i}`);
      for (let i = 0; i < 5; i++) await socket.outcome(`missing-${i}`);
    } finally {
      await running.stop();
    }
    expect(logs.filter((line) => line.step === 'subscriptions')).toEqual([]);
  });
});

describe('errors: the same codes, masking and logging as HTTP', () => {
  test('in production, validation errors over the socket suggest no field, argument or type names', async () => {
    const running = await service({ NODE_ENV: 'production', REDIS_URL: stack.redis.url, MONGODB_URI: stack.mongo.url, JWT_SECRET: TEST_SECRET });
    const socket = await connected(running.url);
    socket.subscribe('field', 'subscription { stockChanged(couponId: "x") { remainin } }');
    socket.subscribe('root', 'subscription { stockChange(couponId: "x") { remaining } }');
    socket.subscribe('argument', 'subscription { stockChanged(couponI: "x") { remaining } }');
    socket.subscribe('type', 'subscription ($c: IDD!) { stockChanged(couponId: $c) { remaining } }');
    for (const id of ['field', 'root', 'argument', 'type']) {
      const errors = errorsOf((await socket.outcome(id)).message);
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error.message).not.toMatch(/Did you mean/);
        expect(error.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      }
    }
  });

  test('in development the socket still suggests names, as HTTP does', async () => {
    const running = await service();
    const socket = await connected(running.url);
    socket.subscribe('field', 'subscription { stockChanged(couponId: "x") { remainin } }');
    expect((await firstError(socket, 'field'))!.message).toMatch(/Did you mean "remaining"/);
  });

  test('syntax errors, @skip on the root field and oversized frames write nothing to stderr: one pino line, rate-limited', async () => {
    const { service: running, logs } = await serviceWithLogs({ WS_SUBSCRIBE_RATE_PER_CONNECTION: '0' });
    const written: string[] = [];
    const stderrWrite = process.stderr.write.bind(process.stderr);
    const consoleError = console.error;
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(String(chunk));
      return (stderrWrite as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    console.error = (...args: unknown[]) => void written.push(args.map(String).join(' '));
    try {
      const socket = await connected(running.url);
      for (let i = 0; i < 20; i++) socket.subscribe(`syntax-${i}`, 'subscription { stockChanged(couponId: "x") {');
      for (let i = 0; i < 20; i++) socket.subscribe(`skip-${i}`, 'subscription { stockChanged(couponId: "x") @skip(if: true) { remaining } }');
      for (let i = 0; i < 20; i++) expect((await firstError(socket, `syntax-${i}`))!.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
      for (let i = 0; i < 20; i++) expect((await firstError(socket, `skip-${i}`))!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(socket.socket.readyState).toBe(socket.socket.OPEN);
      const oversized = await Promise.all(Array.from({ length: 10 }, () => connected(running.url)));
      for (const big of oversized) big.socket.send(JSON.stringify({ id: 'big', type: 'subscribe', payload: { query: ' '.repeat(70 * 1024) } }));
      const codes = await Promise.all(oversized.map(async (big) => (await big.closed).code));
      expect(codes.every((code) => code === 1009 || code === 1006)).toBe(true);
      await sleep(100);
    } finally {
      process.stderr.write = stderrWrite;
      console.error = consoleError;
      await running.stop();
    }
    expect(written).toEqual([]);
    const frameLines = logs.filter((line) => /websocket/i.test(line.msg) && /Max payload/i.test(String(line.err)));
    expect(frameLines.length).toBeGreaterThanOrEqual(1);
    expect(frameLines.length).toBeLessThanOrEqual(2);
    expect(frameLines[0]!.level).toBeLessThanOrEqual(40);
    expect(frameLines[0]).not.toHaveProperty('stack');
  });
});

describe('a stalled dependency', () => {
  const stalled = async (server: Stack['redis'], run: () => Promise<void>) => {
    server.signal('SIGSTOP');
    try {
      await run();
    } finally {
      server.signal('SIGCONT');
    }
  };

  test('a subscribe meeting a stalled Redis answers SERVICE_UNAVAILABLE within 3 s, no driver message', async () => {
    const running = await service();
    const couponId = await createCoupon(running.url, admin, { name: 'RedisStall', totalQuantity: 5 });
    await stalled(stack.redis, async () => {
      const client = wsClient(running.url);
      const begin = performance.now();
      const watcher = watchStock(client, couponId);
      await watcher.completed;
      expect(performance.now() - begin).toBeLessThan(3000);
      expect(watcher.errors).toHaveLength(1);
      expect(watcher.errors[0]).toMatchObject({ extensions: { code: 'SERVICE_UNAVAILABLE' } });
      expect(JSON.stringify(watcher.errors)).not.toMatch(/timed out|127\.0\.0\.1/);
      await client.dispose();
    });
  });

  test('a subscribe meeting a stalled MongoDB answers SERVICE_UNAVAILABLE within 3 s, no server address', async () => {
    const running = await service();
    await stalled(stack.mongo, async () => {
      const client = wsClient(running.url);
      const begin = performance.now();
      const watcher = watchStock(client, '0123456789abcdef01234568');
      await watcher.completed;
      expect(performance.now() - begin).toBeLessThan(3000);
      expect(watcher.errors[0]).toMatchObject({ extensions: { code: 'SERVICE_UNAVAILABLE' } });
      expect(JSON.stringify(watcher.errors)).not.toMatch(/timed out|127\.0\.0\.1/);
      await client.dispose();
    });
  });
});
