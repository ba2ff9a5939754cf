/**
 * One strategy's run reduced to the figures the comparison reports, from Artillery's JSON report
 * (client side) and the MongoDB audit (what was really issued).
 */
import type { IssuanceAudit } from '../support/mongo-audit';

export interface RunSummary {
  strategy: string;
  stock: number;
  /** Distinct users who arrived, over how many seconds (the generator's real pace). */
  users: number;
  arrivalSeconds: number;
  requests: number;
  responses: number;
  /** Answers per second between the first arrival and the last answer. */
  throughput: number;
  latencyMs: Percentiles;
  /** Latency by outcome (ISSUED waits for MongoDB, SOLD_OUT does not). */
  latencyByOutcomeMs: Record<string, Percentiles>;
  /** Claim outcomes and coded errors as the clients saw them, e.g. { ISSUED: 300, 'error.SERVICE_UNAVAILABLE': 2 }. */
  outcomes: Record<string, number>;
  /** Transport failures (Artillery's errors.*: timeouts, resets, refused). */
  transportErrors: Record<string, number>;
  timeouts: number;
  answeredAfter3s: number;
  non200: number;
  audit: IssuanceAudit;
  /** What the API reports for the coupon after the run. */
  couponAfter: { remaining: number; issuedCount: number; status: string };
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

interface ArtilleryAggregate {
  counters: Record<string, number>;
  summaries: Record<string, Percentiles & { min: number }>;
}

export function summarize(
  strategy: string,
  stock: number,
  report: { aggregate: ArtilleryAggregate },
  audit: IssuanceAudit,
  couponAfter: RunSummary['couponAfter'],
): RunSummary {
  const { counters, summaries } = report.aggregate;
  const pick = (prefix: string) =>
    Object.fromEntries(Object.entries(counters).filter(([name]) => name.startsWith(prefix)).map(([name, count]) => [name.slice(prefix.length), count]));
  const responses = counters['http.responses'] ?? 0;
  const percentiles = (name: string): Percentiles => {
    const s = summaries[name];
    return s ? { p50: s.p50, p95: s.p95, p99: s.p99, max: s.max } : { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  };
  const transportErrors = pick('errors.');
  // Processor timelines (ms since a common zero): exact min and max, unlike Artillery's periods.
  const arrivals = summaries['timeline.arrival_ms'];
  const answers = summaries['timeline.answer_ms'];
  const latencyPrefix = 'claim.latency_ms.';
  return {
    strategy,
    stock,
    users: counters['vusers.created'] ?? 0,
    arrivalSeconds: arrivals ? (arrivals.max - arrivals.min) / 1000 : NaN,
    requests: counters['http.requests'] ?? 0,
    responses,
    throughput: arrivals && answers ? responses / Math.max((answers.max - arrivals.min) / 1000, 0.001) : NaN,
    latencyMs: percentiles('claim.latency_ms'),
    latencyByOutcomeMs: Object.fromEntries(
      Object.keys(summaries)
        .filter((name) => name.startsWith(latencyPrefix))
        .map((name) => [name.slice(latencyPrefix.length), percentiles(name)]),
    ),
    outcomes: Object.fromEntries(Object.entries(pick('claim.')).filter(([name]) => name !== 'answered_after_3s')),
    transportErrors,
    timeouts: Object.entries(transportErrors).filter(([name]) => /TIMEDOUT|timeout/i.test(name)).reduce((sum, [, n]) => sum + n, 0),
    answeredAfter3s: counters['claim.answered_after_3s'] ?? 0,
    non200: Object.entries(pick('http.codes.')).filter(([code]) => code !== '200').reduce((sum, [, n]) => sum + n, 0),
    audit,
    couponAfter,
  };
}
