/**
 * Prometheus metrics served at GET /metrics. One registry per service instance, so tests can
 * run several instances in one process.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type CounterConfiguration } from 'prom-client';

/**
 * A counter bumped on every request of the claim path. `add` counts in a plain Map, flushed into
 * prom-client when the metric is read (its collect hook): prom-client's own `inc` hashes the
 * labels and looks the series up on every call, a few µs of each claim's CPU for a value read
 * every few seconds. `inc` still works as on any counter.
 */
export class HotCounter<L extends string = never> extends Counter<L> {
  private readonly pending = new Map<string, number>();

  constructor(config: CounterConfiguration<L>, private readonly label?: L) {
    super({
      ...config,
      collect: () => {
        for (const [value, count] of this.pending) {
          if (this.label === undefined) this.inc(count);
          else this.inc({ [this.label]: value } as Partial<Record<L, string>>, count);
        }
        this.pending.clear();
      },
    });
  }

  /** One more for the series whose label (the counter's one label) is `value`; no argument for a counter without labels. */
  add(value = ''): void {
    this.pending.set(value, (this.pending.get(value) ?? 0) + 1);
  }
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    claims: new HotCounter(
      {
        name: 'coupon_claims_total',
        help: 'Claims answered, by outcome (ISSUED, ALREADY_ISSUED, SOLD_OUT, NOT_STARTED, ENDED, or an error code)',
        labelNames: ['outcome'] as const,
        registers: [registry],
      },
      'outcome',
    ),
    claimSeconds: new Histogram({
      name: 'coupon_claim_duration_seconds',
      help: 'Time to answer a claim, from resolver start to result',
      // Fine around the contract's 3 s (REQUEST_TIMEOUT_MS defaults to 2 s) so alerts can compare with it.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 3, 5],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'coupon_issuance_batch_size',
      help: 'Issuances written to MongoDB per group-commit batch',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    batchWaitSeconds: new Histogram({
      name: 'coupon_issuance_batch_wait_seconds',
      help: 'Time the first write of a batch waited before the batch went out',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    batchWriteSeconds: new Histogram({
      name: 'coupon_issuance_batch_write_seconds',
      help: 'MongoDB time per group-commit batch',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    dependencyErrors: new Counter({
      name: 'coupon_dependency_errors_total',
      help: 'Failed calls to a dependency, by dependency (redis, mongodb)',
      labelNames: ['dependency'] as const,
      registers: [registry],
    }),
    claimsFromMemory: new HotCounter({
      name: 'coupon_claims_from_memory_total',
      help: 'Claims answered without Redis: sold-out coupons (all but winners whose write is pending), and coupons not started yet',
      registers: [registry],
    }),
    repairs: new Counter({
      name: 'coupon_reconcile_repairs_total',
      help: 'Repairs made by reconciliation, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    shed: new Counter({
      name: 'coupon_requests_shed_total',
      help: 'GraphQL requests refused with SERVICE_UNAVAILABLE by admission control, by reason (queue_full, waited_too_long, event_loop_lag)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    graphqlRequests: new HotCounter(
      {
        name: 'coupon_graphql_requests_total',
        help: 'GraphQL HTTP requests answered, by path: compiled (a document Apollo accepted before, run compiled) or apollo',
        labelNames: ['path'] as const,
        registers: [registry],
      },
      'path',
    ),
    subscriptions: new Gauge({
      name: 'coupon_stock_subscriptions',
      help: 'Open stockChanged subscriptions on this instance',
      registers: [registry],
    }),
    // Aggregated over workers by the minimum: one worker that cannot reach a dependency shows it down.
    dependencyUp: new Gauge({
      name: 'coupon_dependency_up',
      help: 'Whether a dependency (redis, mongodb) answered its last health probe (every second, and on GET /healthz): 1 up, 0 down',
      labelNames: ['dependency'] as const,
      aggregator: 'min',
      registers: [registry],
    }),
    // Aggregated by the maximum: the oldest reservation any worker's reconciler saw.
    oldestPendingSeconds: new Gauge({
      name: 'coupon_reconcile_oldest_pending_seconds',
      help: 'Age of the oldest reservation whose MongoDB write is unconfirmed, over the coupons taking claims, at the last reconciliation pass (0: none)',
      aggregator: 'max',
      registers: [registry],
    }),
    reconcileCouponFailures: new Counter({
      name: 'coupon_reconcile_coupon_failures_total',
      help: 'Coupons a reconciliation pass could not reconcile (the pass went on with the others), by step (load, definition, pending, drift)',
      labelNames: ['step'] as const,
      registers: [registry],
    }),
    reconcilePasses: new Counter({
      name: 'coupon_reconcile_passes_total',
      help: 'Reconciliation passes, by result (ok, failed)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    // Webhooks (v3). The counts are of the whole database (every instance sees the same), so
    // they are aggregated by the maximum over workers and alerted on with max().
    webhookAttempts: new Counter({
      name: 'coupon_webhook_attempts_total',
      help: 'Webhook delivery attempts made by this instance, by outcome (delivered, http_error, timeout, network_error, refused_address)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    webhookLagSeconds: new Histogram({
      name: 'coupon_webhook_delivery_lag_seconds',
      help: 'Time from an event (the issuance, redeem, cancel, sell-out, end) to its acknowledgement by the receiver',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86_400],
      registers: [registry],
    }),
    webhookPending: new Gauge({
      name: 'coupon_webhook_deliveries_pending',
      help: 'Deliveries not yet acknowledged, over every webhook (as of the last count)',
      aggregator: 'max',
      registers: [registry],
    }),
    webhookFailed: new Gauge({
      name: 'coupon_webhook_deliveries_failed',
      help: 'Deliveries given up on after the retry period and not queued again, over every webhook',
      aggregator: 'max',
      registers: [registry],
    }),
    webhookOldestPendingSeconds: new Gauge({
      name: 'coupon_webhook_oldest_pending_seconds',
      help: 'Age of the oldest event not yet acknowledged by its receiver (0: none)',
      aggregator: 'max',
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
