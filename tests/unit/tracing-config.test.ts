/**
 * Tracing's configuration (the standard OTEL_* variables, read in src/config.ts) and the helpers'
 * behaviour with tracing off: no endpoint, no tracing; with it off, a helper is a direct call.
 */
import { trace } from '@opentelemetry/api';
import { loadConfig } from '../../src/config';
import { activeSpanContext, operationOf, tracingEnabled, withGraphQLSpan, withGroupCommitSpan, withSpan } from '../../src/tracing/tracer';
import { configErrorOf } from '../support/config';

describe('tracing configuration', () => {
  test('with no OTLP endpoint tracing is off', () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }).tracing).toBeUndefined();
  });

  test('OTEL_EXPORTER_OTLP_ENDPOINT turns it on, sending to its /v1/traces, every trace sampled unless the parent says no', () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).tracing).toEqual({
      serviceName: 'coupon-service',
      tracesUrl: 'http://collector:4318/v1/traces',
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
    });
  });

  test('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as it is, and wins over the general endpoint', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/otlp/traces' };
    expect(loadConfig(env).tracing?.tracesUrl).toBe('https://b/otlp/traces');
  });

  test('the sampler, its ratio and the service name come from OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG and OTEL_SERVICE_NAME', () => {
    const tracing = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.01',
      OTEL_SERVICE_NAME: 'coupons-eu',
    }).tracing;
    expect(tracing).toMatchObject({ sampler: 'parentbased_traceidratio', samplerRatio: 0.01, serviceName: 'coupons-eu' });
  });

  test('OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off even with an endpoint', () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined();
  });

  test('a mistake is one line naming the variable', () => {
    expect(configErrorOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toMatch(/^configuration error: OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(configErrorOf({ OTEL_TRACES_SAMPLER: 'sometimes' })).toMatch(/^configuration error: OTEL_TRACES_SAMPLER/);
    expect(configErrorOf({ OTEL_TRACES_SAMPLER_ARG: '5' })).toMatch(/^configuration error: OTEL_TRACES_SAMPLER_ARG/);
  });
});

describe('the tracing helpers with tracing off', () => {
  test('no SDK is started: the API is its no-op and the helpers call straight through', async () => {
    expect(tracingEnabled()).toBe(false);
    expect(trace.getTracerProvider().getTracer('x').startSpan('y').isRecording()).toBe(false);
    const result = Promise.resolve(42);
    expect(withSpan('a', () => result)).toBe(result);
    expect(withGroupCommitSpan([undefined], () => result)).toBe(result);
    expect(withGraphQLSpan('{}', () => result)).toBe(result);
    expect(activeSpanContext()).toBeUndefined();
  });
});

describe("the GraphQL operation's span name", () => {
  test('comes from the query text, or from operationName when given', () => {
    expect(operationOf(JSON.stringify({ query: 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status } }' }))).toEqual({ type: 'mutation', name: 'Claim' });
    expect(operationOf(JSON.stringify({ query: 'query A { a } query B { b }', operationName: 'B' }))).toEqual({ type: 'query', name: 'B' });
    expect(operationOf(JSON.stringify({ query: '{ coupons { id } }' }))).toEqual({ type: 'query', name: undefined });
    expect(operationOf('not json')).toEqual({ type: undefined, name: undefined });
  });
});
