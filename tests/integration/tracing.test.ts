/**
 * OpenTelemetry traces of one claim, exported by the real service (a child process, as an
 * operator runs it, with OTEL_EXPORTER_OTLP_ENDPOINT set) to an OTLP/HTTP receiver in this test
 * that decodes the JSON export. One claim's trace runs HTTP server span → GraphQL operation span
 * → claim script (EVALSHA claim-4.lua) and → group commit span (linked to the claim) → MongoDB
 * write span (insert issuances); an incoming W3C traceparent becomes the HTTP span's parent.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startChildService, type ChildService } from '../support/child-service';
import { CLAIM, createCoupon } from '../support/graphql';
import { adminToken, startStack, userToken, type Stack } from '../support/stack';

jest.setTimeout(240_000);

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
  links?: Array<{ traceId: string; spanId: string }>;
  service: string;
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

/** An OTLP/HTTP traces receiver: POST /v1/traces with the JSON encoding. */
async function startReceiver(): Promise<{ url: string; spans: ExportedSpan[]; contentTypes: Set<string>; close(): Promise<void> }> {
  const spans: ExportedSpan[] = [];
  const contentTypes = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: Array<{ resource: { attributes: ExportedSpan['attributes'] }; scopeSpans: Array<{ spans: Omit<ExportedSpan, 'service'>[] }> }>;
      };
      for (const resourceSpans of body.resourceSpans) {
        const service = resourceSpans.resource.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const scope of resourceSpans.scopeSpans) for (const span of scope.spans) spans.push({ ...span, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const attribute = (span: ExportedSpan, key: string) => {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
};

async function claim(url: string, couponId: string, user: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await userToken(user)}`, ...headers },
    body: JSON.stringify({ query: CLAIM, variables: { couponId } }),
  });
  return (await response.json()) as { data?: { claimCoupon: { status: string; issuance: { id: string } } } };
}

let stack: Stack;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let service: ChildService | undefined;
let spans: ExportedSpan[];
const incomingTraceId = randomBytes(16).toString('hex');
const incomingParentId = randomBytes(8).toString('hex');

beforeAll(async () => {
  [stack, receiver] = await Promise.all([startStack(), startReceiver()]);
  service = await startChildService({
    redisUrl: stack.redis.url,
    mongoUri: stack.mongo.url,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'coupon-trace-test' },
    // Loading the SDK and its instrumentations adds to the start, which a shared machine stretches.
    readyTimeoutMs: 120_000,
  });
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'Traced drop', totalQuantity: 5 });
  const withParent = await claim(service.url, couponId, 'traced-with-parent', { traceparent: `00-${incomingTraceId}-${incomingParentId}-01` });
  const alone = await claim(service.url, couponId, 'traced-alone');
  expect([withParent.data?.claimCoupon.status, alone.data?.claimCoupon.status]).toEqual(['ISSUED', 'ISSUED']);
  // The graceful stop exports what the batch processor still holds.
  expect(await service.stop()).toEqual({ code: 0, signal: null });
  service = undefined;
  spans = receiver.spans;
});

afterAll(async () => {
  await service?.stop();
  await Promise.all([stack?.stop(), receiver?.close()]);
});

/** The claim trace's spans by role, checked parent by parent. */
function claimTrace(traceId: string) {
  const inTrace = spans.filter((s) => s.traceId === traceId);
  const byId = new Map(inTrace.map((s) => [s.spanId, s]));
  const childrenOf = (parent: ExportedSpan) => inTrace.filter((s) => s.parentSpanId === parent.spanId);
  const server = inTrace.find((s) => s.kind === SPAN_KIND_SERVER && (!s.parentSpanId || !byId.has(s.parentSpanId)));
  return { inTrace, childrenOf, server };
}

describe('a claim traced from the HTTP server to the MongoDB write', () => {
  test('the service exports OTLP JSON under its OTEL_SERVICE_NAME', () => {
    expect([...receiver.contentTypes]).toEqual([expect.stringMatching(/^application\/json/)]);
    expect(spans.length).toBeGreaterThan(0);
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['coupon-trace-test']));
  });

  test('an incoming traceparent becomes the parent of the HTTP server span', () => {
    const { server } = claimTrace(incomingTraceId);
    expect(server).toBeDefined();
    expect(server!.parentSpanId).toBe(incomingParentId);
    expect(attribute(server!, 'http.method') ?? attribute(server!, 'http.request.method')).toBe('POST');
  });

  test.each([
    ['with an incoming traceparent', () => incomingTraceId],
    [
      'without one (a trace of its own)',
      () => spans.find((s) => s.kind === SPAN_KIND_SERVER && !s.parentSpanId && spans.some((c) => c.traceId === s.traceId && c.name === 'mutation Claim'))!.traceId,
    ],
  ])('%s: HTTP → GraphQL operation → claim script, and group commit (linked to the claim) → MongoDB write', (_, traceIdOf) => {
    const traceId = traceIdOf();
    const { server, childrenOf } = claimTrace(traceId);
    expect(server).toBeDefined();

    const operation = childrenOf(server!).find((s) => s.name === 'mutation Claim');
    expect(operation).toBeDefined();
    expect(attribute(operation!, 'graphql.operation.name')).toBe('Claim');

    const script = childrenOf(operation!).find((s) => s.name === 'evalsha claim-4.lua');
    expect(script).toMatchObject({ kind: SPAN_KIND_CLIENT });
    expect(attribute(script!, 'coupon.redis.script')).toBe('claim-4.lua');
    // Arguments (user ids) stay out of the statement.
    expect(JSON.stringify(script!.attributes)).not.toMatch(/traced-/);

    const commit = childrenOf(operation!).find((s) => s.name === 'issuance group commit');
    expect(commit).toBeDefined();
    expect(commit!.links).toEqual(expect.arrayContaining([expect.objectContaining({ traceId, spanId: operation!.spanId })]));
    expect(attribute(commit!, 'coupon.batch.size')).toBe(1);

    const write = childrenOf(commit!).find((s) => s.name === 'insert issuances');
    expect(write).toMatchObject({ kind: SPAN_KIND_CLIENT });
    expect(attribute(write!, 'db.system') ?? attribute(write!, 'db.system.name')).toBe('mongodb');
  });

  test('health checks make no traces: the only server spans are the three GraphQL requests', () => {
    // startChildService polled GET /healthz until the service answered.
    const servers = spans.filter((s) => s.kind === SPAN_KIND_SERVER);
    expect(servers.map((s) => attribute(s, 'http.method') ?? attribute(s, 'http.request.method'))).toEqual(['POST', 'POST', 'POST']);
  });
});
