/**
 * Starts OpenTelemetry tracing in this process: a NodeTracerProvider with the W3C trace-context
 * propagator, a batch exporter of OTLP over HTTP (JSON), the configured sampler, and the
 * maintained instrumentations of node:http (server and client spans, traceparent in and out),
 * ioredis and the MongoDB driver. Called by main.ts before the service's modules load, because
 * the instrumentations patch ioredis and mongodb as they are required; never called when
 * tracing is off, so none of the SDK is loaded then.
 *
 * The SDK packages are required here, not imported at the top, for that reason.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type { IncomingMessage } from 'node:http';
import type { TracingSettings } from '../config';
import { markTracingStarted, scriptName } from './tracer';

export interface RunningTracing {
  /** Exports what is still buffered and stops. */
  shutdown(): Promise<void>;
}

/** Requests not worth a trace: scrapes and health checks. */
const UNTRACED_PATHS = new Set(['/metrics', '/healthz']);

export function startTracing(settings: TracingSettings): RunningTracing {
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
  const base = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { ATTR_SERVICE_NAME } = require('@opentelemetry/semantic-conventions') as typeof import('@opentelemetry/semantic-conventions');
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof import('@opentelemetry/instrumentation');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');
  const { MongoDBInstrumentation } = require('@opentelemetry/instrumentation-mongodb') as typeof import('@opentelemetry/instrumentation-mongodb');

  const ratio = new base.TraceIdRatioBasedSampler(settings.samplerRatio);
  const samplers = {
    always_on: new base.AlwaysOnSampler(),
    always_off: new base.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() }),
    parentbased_always_off: new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() }),
    parentbased_traceidratio: new base.ParentBasedSampler({ root: ratio }),
  };
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    sampler: samplers[settings.sampler],
    spanProcessors: [new base.BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl }))],
  });
  // Global tracer provider, AsyncLocalStorage context, W3C traceparent and baggage propagation.
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED_PATHS.has((req.url ?? '').split('?')[0]!),
      }),
      new IORedisInstrumentation({
        requireParentSpan: true,
        // Command and script name only: arguments carry user ids.
        dbStatementSerializer: (command: string, args: unknown[]) => {
          const script = /^evalsha$/i.test(command) ? scriptName(args[0]) : undefined;
          return script ? `${command} ${script}` : command;
        },
        requestHook: (span, { cmdName, cmdArgs }) => {
          const script = /^evalsha$/i.test(cmdName) ? scriptName(cmdArgs[0]) : undefined;
          if (script) {
            span.setAttribute('coupon.redis.script', script);
            span.updateName(`${cmdName} ${script}`);
          }
        },
      }),
      new MongoDBInstrumentation({ requireParentSpan: true }),
    ],
  });
  markTracingStarted();
  return { shutdown: () => provider.shutdown() };
}
