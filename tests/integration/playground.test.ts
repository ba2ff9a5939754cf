/**
 * The offline GraphiQL playground over real HTTP: a plain node:http server with only the
 * playground handler in it, and a 404 fallback that marks the requests the handler declined.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createPlaygroundHandler, prefersHtml, type PlaygroundOptions } from '../../src/playground';
import { request as rawRequest, type RawReply, type RawRequest } from '../support/http';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const DECLINED = 'declined by the playground handler';

type Reply = RawReply;

async function startServer(opts: PlaygroundOptions): Promise<{ base: string; close: () => Promise<void> }> {
  const playground = createPlaygroundHandler(opts);
  const server = http.createServer((req, res) => {
    if (playground(req, res)) return;
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end(DECLINED);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}

/** The raw client, because fetch would normalise "../" away before sending. */
const request = (base: string, rawPath: string, init: RawRequest = {}): Promise<Reply> => rawRequest(`${base}${rawPath}`, init);

/** Every src/href in the page except data: URLs. */
function referencedUrls(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((url) => !url.startsWith('data:'));
}

const CONTENT_TYPES: Record<string, RegExp> = {
  '.js': /^text\/javascript; charset=utf-8$/,
  '.css': /^text\/css; charset=utf-8$/,
};

describe('playground at /graphql', () => {
  let base: string;
  let close: () => Promise<void>;
  let page: Reply;

  beforeAll(async () => {
    ({ base, close } = await startServer({ endpointPath: '/graphql' }));
    page = await request(base, '/graphql', { headers: { accept: BROWSER_ACCEPT, host: 'localhost:4000' } });
  });
  afterAll(() => close());

  test('a browser gets the GraphiQL page with a strict CSP', () => {
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['vary']).toBe('Accept');
    expect(page.headers['cache-control']).toBe('no-store');
    const csp = page.headers['content-security-policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("connect-src 'self' ws://localhost:4000 wss://localhost:4000");
    expect(csp).toContain("frame-ancestors 'none'");
    const html = page.body.toString('utf8');
    expect(html).toContain('<div id="graphiql">');
    expect(html).not.toMatch(/<script>/); // no inline script: the CSP would block it
  });

  test('the page pre-fills an Authorization header placeholder and the coupon operations', () => {
    const html = page.body.toString('utf8');
    const block = /<script type="application\/json" id="playground-config">([^<]*)<\/script>/.exec(html);
    expect(block).not.toBeNull();
    const settings = JSON.parse(block![1]!) as { defaultHeaders: string; defaultQuery: string };
    expect(JSON.parse(settings.defaultHeaders)).toEqual({ Authorization: 'Bearer <token>' });
    expect(settings.defaultQuery).toContain('createCoupon(');
    expect(settings.defaultQuery).toContain('claimCoupon(');
    expect(settings.defaultQuery).toContain('subscription StockChanged');
  });

  test('every referenced asset is a same-origin relative URL served with its content type and long caching', async () => {
    const urls = referencedUrls(page.body.toString('utf8'));
    expect(urls.length).toBeGreaterThanOrEqual(6);
    for (const url of urls) {
      expect(url).toMatch(/^playground\/[\w.-]+\?v=[0-9a-f]+$/);
      const pathname = new URL(url, `${base}/graphql`).pathname;
      const reply = await request(base, `${pathname}${url.slice(url.indexOf('?'))}`);
      expect({ url, status: reply.status }).toEqual({ url, status: 200 });
      expect(reply.headers['content-type']).toMatch(CONTENT_TYPES[path.extname(pathname)]!);
      expect(reply.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(reply.headers['x-content-type-options']).toBe('nosniff');
      expect(Number(reply.headers['content-length'])).toBe(reply.body.length);
      expect(reply.body.length).toBeGreaterThan(0);
    }
  });

  test('the bundles are the ones installed in node_modules, including the graphql-ws browser client', async () => {
    const graphiql = await request(base, '/playground/graphiql.min.js');
    expect(graphiql.body.equals(readFileSync(path.join(path.dirname(require.resolve('graphiql/package.json')), 'graphiql.min.js')))).toBe(true);
    const ws = await request(base, '/playground/graphql-ws.min.js');
    expect(ws.body.toString('utf8')).toContain('graphqlWs');
    const boot = (await request(base, '/playground/playground.js')).body.toString('utf8');
    expect(boot).toContain('graphqlWs.createClient');
    expect(boot).toContain('connectionParams: authorization ? { authorization } : {}');
  });

  test('HEAD of an asset answers headers without a body', async () => {
    const reply = await request(base, '/playground/react.production.min.js', { method: 'HEAD' });
    expect(reply.status).toBe(200);
    expect(Number(reply.headers['content-length'])).toBeGreaterThan(0);
    expect(reply.body.length).toBe(0);
  });

  test.each([
    ['no Accept header', undefined],
    ['*/*', '*/*'],
    ['application/json', 'application/json'],
    ['application/graphql-response+json', 'application/graphql-response+json, application/json;q=0.9'],
  ])('GET /graphql with %s is left to the GraphQL server', async (_name, accept) => {
    const reply = await request(base, '/graphql?query=%7B__typename%7D', { headers: accept ? { accept } : {} });
    expect(reply.status).toBe(404);
    expect(reply.body.toString()).toBe(DECLINED);
  });

  test('POST /graphql is left to the GraphQL server, even from a browser', async () => {
    const reply = await request(base, '/graphql', { method: 'POST', headers: { accept: BROWSER_ACCEPT } });
    expect(reply.body.toString()).toBe(DECLINED);
  });

  test.each([
    '/playground/unknown.js',
    '/playground/',
    '/playground/graphiql.min.js.map',
    '/playground/index.umd.js.map',
    '/playground/react.development.js',
    '/playground/constructor',
    '/playground/GRAPHIQL.MIN.JS',
    '/playground.js',
    '/graphql/playground/graphiql.min.js',
  ])('an unknown asset %s is declined', async (rawPath) => {
    const reply = await request(base, rawPath);
    expect(reply.status).toBe(404);
    expect(reply.body.toString()).toBe(DECLINED);
  });

  test.each([
    '/playground/../package.json',
    '/playground/../../package.json',
    '/playground/..%2f..%2fpackage.json',
    '/playground/%2e%2e/%2e%2e/package.json',
    '/playground/..%5c..%5cpackage.json',
    '/playground/graphiql.min.js/../../../package.json',
    '/playground/../node_modules/react/umd/react.development.js',
    '/playground//etc/passwd',
    '/playground/%2fetc%2fpasswd',
  ])('path traversal %s is refused', async (rawPath) => {
    const reply = await request(base, rawPath);
    expect(reply.status).toBe(404);
    expect(reply.body.toString()).toBe(DECLINED);
  });
});

describe('playground options', () => {
  test('assets sit beside a nested endpoint, and a hostile Host header stays out of the CSP', async () => {
    const { base, close } = await startServer({ endpointPath: '/api/graphql' });
    try {
      const page = await request(base, '/api/graphql', { headers: { accept: BROWSER_ACCEPT, host: 'evil.example;script-src *' } });
      expect(page.status).toBe(200);
      expect(page.headers['content-security-policy']).toContain("connect-src 'self';");
      const [first] = referencedUrls(page.body.toString('utf8'));
      expect((await request(base, `/api/playground/${first!.slice('playground/'.length)}`)).status).toBe(200);
      expect((await request(base, '/playground/graphiql.min.js')).body.toString()).toBe(DECLINED);
    } finally {
      await close();
    }
  });

  test('custom defaults are embedded without letting "</script>" end the data block', async () => {
    const defaultQuery = '# </script><script>alert(1)</script>\n{ __typename }';
    const { base, close } = await startServer({ endpointPath: '/graphql', defaultQuery, defaultHeaders: '{"X-Test": "1"}' });
    try {
      const html = (await request(base, '/graphql', { headers: { accept: BROWSER_ACCEPT } })).body.toString('utf8');
      expect(html).not.toContain('<script>alert(1)');
      const json = /id="playground-config">([^<]*)<\/script>/.exec(html)![1]!;
      expect(JSON.parse(json)).toEqual({ defaultQuery, defaultHeaders: '{"X-Test": "1"}' });
    } finally {
      await close();
    }
  });

  test('an endpoint path must be absolute', () => {
    expect(() => createPlaygroundHandler({ endpointPath: 'graphql' })).toThrow(/must start with/);
  });
});

describe('prefersHtml', () => {
  test.each([
    [BROWSER_ACCEPT, true],
    ['text/html', true],
    ['text/html;q=0.9, application/json;q=0.8', true],
    ['application/json, text/html', false], // a tie goes to JSON
    ['*/*', false],
    ['text/*', true],
    ['text/html;q=0', false],
    ['application/json;q=0.5, */*', false], // */* also covers application/graphql-response+json
    ['', false],
    [undefined, false],
  ])('%s -> %s', (accept, expected) => {
    expect(prefersHtml(accept)).toBe(expected);
  });
});
