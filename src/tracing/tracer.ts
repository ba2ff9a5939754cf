/**
 * The service's tracer and the few helpers the claim path uses, on @opentelemetry/api alone.
 * Until ./sdk.ts starts tracing (OTEL_EXPORTER_OTLP_ENDPOINT set), the API is its own no-op and
 * every helper here returns after one boolean check: tracing off costs nothing.
 */
import { createHash } from 'node:crypto';
import { context, trace, SpanStatusCode, type Attributes, type Link, type SpanContext } from '@opentelemetry/api';

export type { SpanContext };

let enabled = false;

/** The tracer for the service's own spans (a no-op until tracing starts). */
export const tracer = trace.getTracer('coupon-service');

/** Whether an SDK was started in this process (./sdk.ts sets it). */
export function tracingEnabled(): boolean {
  return enabled;
}

/** Called by ./sdk.ts once the provider is registered. */
export function markTracingStarted(): void {
  enabled = true;
}

export interface SpanOptions {
  attributes?: Attributes;
  /** Spans this one is about (a group commit links every claim it carries). */
  links?: Link[];
  /** The parent, instead of the active span. */
  parent?: SpanContext;
}

/**
 * Runs `fn` inside a span named `name` (active for everything `fn` awaits), ended when `fn`
 * settles; an error is recorded on it and rethrown. With tracing off, just `fn()`.
 */
export function withSpan<T>(name: string, fn: () => Promise<T>, options: SpanOptions = {}): Promise<T> {
  if (!enabled) return fn();
  const parent = options.parent ? trace.setSpanContext(context.active(), options.parent) : context.active();
  return tracer.startActiveSpan(name, { attributes: options.attributes, links: options.links }, parent, async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The active span's context, to link to later (undefined with tracing off or no span). */
export function activeSpanContext(): SpanContext | undefined {
  return enabled ? trace.getActiveSpan()?.spanContext() : undefined;
}

/**
 * The group commit's span: a child of the first claim it carries (so a lone claim's trace runs
 * down to its MongoDB write) with a link to every claim, `callers` being their span contexts as
 * activeSpanContext() took them.
 */
export function withGroupCommitSpan<T>(callers: Array<SpanContext | undefined>, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const contexts = callers.filter((c): c is SpanContext => c !== undefined);
  return withSpan('issuance group commit', fn, {
    parent: contexts[0],
    links: contexts.map((c) => ({ context: c })),
    attributes: { 'coupon.batch.size': callers.length },
  });
}

/**
 * The GraphQL operation's span around `fn`, named `mutation ClaimCoupon` (type and name read
 * from the raw body without parsing it; `graphql` when they cannot be read).
 */
export function withGraphQLSpan<T>(rawBody: string, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const { type, name } = operationOf(rawBody);
  const attributes: Attributes = {};
  if (name) attributes['graphql.operation.name'] = name;
  if (type) attributes['graphql.operation.type'] = type;
  return withSpan(type || name ? [type, name].filter(Boolean).join(' ') : 'graphql', fn, { attributes });
}

/** The operation's type and name as a JSON body carries them (operationName wins), without parsing it. */
export function operationOf(rawBody: string): { type?: string; name?: string } {
  const declared = /"query"\s*:\s*"\s*(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/.exec(rawBody);
  const type = declared?.[1] ?? (/"query"\s*:\s*"\s*\{/.test(rawBody) ? 'query' : undefined);
  const name = /"operationName"\s*:\s*"([_A-Za-z][_0-9A-Za-z]*)"/.exec(rawBody)?.[1] ?? declared?.[2];
  return { type, name };
}

const scriptNames = new Map<string, string>();

/** Remembers a Lua script's file name by its SHA-1, so that its EVALSHA span is named after it. */
export function nameScript(lua: string, file: string): void {
  scriptNames.set(createHash('sha1').update(lua).digest('hex'), file);
}

/** The file name of the script EVALSHA runs, if known. */
export function scriptName(sha: unknown): string | undefined {
  return typeof sha === 'string' ? scriptNames.get(sha) : undefined;
}
