/**
 * Development helpers of `npm start` with JWT_SECRET unset: POST /dev/token mints a token for any
 * user name, the playground offers the run's user and admin tokens, and the drop page is served.
 * None of it exists once JWT_SECRET is set, nor in production.
 */
import { startChildService, type ChildService } from '../support/child-service';
import { createCoupon, gql, MY_ISSUANCES } from '../support/graphql';
import { request } from '../support/http';
import { productionEnv, startStack, useTestService, type Stack } from '../support/stack';

const BROWSER = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

const mint = (base: string, body: unknown) =>
  request(`${base}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });

const playgroundSettings = async (base: string) => {
  const page = (await request(`${base}/graphql`, { headers: BROWSER })).body.toString('utf8');
  const block = /<script type="application\/json" id="playground-config">([^<]*)<\/script>/.exec(page);
  return JSON.parse(block![1]!) as { defaultHeaders: string; devTokens?: { user: string; admin: string } };
};

describe('with JWT_SECRET unset (development)', () => {
  let stack: Stack;
  let service: ChildService;
  beforeAll(async () => {
    stack = await startStack();
    service = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env: { NODE_ENV: 'development', JWT_SECRET: '' } });
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await stack?.stop();
  });

  test('POST /dev/token mints a working token for a user name, admin only when asked', async () => {
    const reply = await mint(service.url, { sub: 'alice' });
    expect(reply.status).toBe(200);
    const minted = JSON.parse(reply.body.toString('utf8')) as { token: string; sub: string; admin: boolean; expiresAt: string };
    expect(minted).toMatchObject({ sub: 'alice', admin: false });
    expect(Date.parse(minted.expiresAt) - Date.now()).toBeGreaterThan(11 * 3600 * 1000);
    expect((await gql(service.url, MY_ISSUANCES, {}, minted.token)).data).toEqual({ myIssuances: [] });
    // Not an admin: creating a coupon is FORBIDDEN; with admin: true it works.
    await expect(createCoupon(service.url, minted.token, { name: 'x', totalQuantity: 1 })).rejects.toThrow(/FORBIDDEN/);
    const admin = JSON.parse((await mint(service.url, { sub: 'ops', admin: true })).body.toString('utf8')) as { token: string };
    await expect(createCoupon(service.url, admin.token, { name: 'x', totalQuantity: 1 })).resolves.toMatch(/^[0-9a-f]{24}$/);
  });

  test('POST /dev/token refuses a missing or overlong name, a non-JSON body and other methods', async () => {
    expect((await mint(service.url, {})).status).toBe(400);
    expect((await mint(service.url, { sub: 'x'.repeat(129) })).status).toBe(400);
    expect((await mint(service.url, { sub: 'a', admin: 'yes' })).status).toBe(400);
    expect((await request(`${service.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: Buffer.from('{"sub":"a"}') })).status).toBe(415);
    expect((await request(`${service.url}/dev/token`)).status).toBe(405);
  });

  test('the playground offers the run\'s user and admin tokens, and they work', async () => {
    const settings = await playgroundSettings(service.url);
    expect(settings.devTokens).toBeDefined();
    expect(JSON.parse(settings.defaultHeaders)).toEqual({});
    const { user, admin } = settings.devTokens!;
    await expect(createCoupon(service.url, admin, { name: 'x', totalQuantity: 1 })).resolves.toMatch(/^[0-9a-f]{24}$/);
    expect((await gql(service.url, MY_ISSUANCES, {}, user)).data).toEqual({ myIssuances: [] });
  });

  test('the drop page is served at /drop/ and /drop/<couponId>, with its assets, under a strict CSP', async () => {
    for (const path of ['/drop/', '/drop/650000000000000000000001']) {
      const page = await request(`${service.url}${path}`, { headers: BROWSER });
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      const assets = [...page.body.toString('utf8').matchAll(/(?:src|href)="(\/drop\/assets\/[^"]+)"/g)].map((m) => m[1]!);
      expect(assets.length).toBeGreaterThan(0);
      for (const asset of assets) {
        const reply = await request(`${service.url}${asset}`);
        expect(reply.status).toBe(200);
        expect(reply.headers['cache-control']).toContain('immutable');
      }
    }
    expect((await request(`${service.url}/drop/assets/../../package.json`)).status).toBe(404);
  });
});

describe('with JWT_SECRET set', () => {
  const suite = useTestService();

  test('there is no POST /dev/token and the playground offers no token', async () => {
    expect((await mint(suite.service.url, { sub: 'alice' })).status).toBe(404);
    const settings = await playgroundSettings(suite.service.url);
    expect(settings.devTokens).toBeUndefined();
    expect(settings.defaultHeaders).toContain('Bearer <token>');
  });
});

describe('in production', () => {
  const suite = useTestService(productionEnv);

  test('there is no POST /dev/token, no playground and no drop page', async () => {
    expect((await mint(suite.service.url, { sub: 'alice' })).status).toBe(404);
    expect((await request(`${suite.service.url}/drop/`, { headers: BROWSER })).status).toBe(404);
    expect((await request(`${suite.service.url}/graphql`, { headers: BROWSER })).status).not.toBe(200);
  });
});
