/**
 * One strategy's run reduced to the figures the comparison reports, from every claim's record
 * (client side) and the MongoDB audit (what was really issued).
 */
import type { IssuanceAudit } from '../support/mongo-audit';
import { countBy, latencyOf, percentiles, type ClaimRecord, type Percentiles } from '../support/open-model';
import { perSecond, type SecondRow } from './timeline';

export type { Percentiles };

/** The contract's answer time. */
export const BUDGET_MS = 3000;

export interface RunSummary {
  strategy: string;
  stock: number;
  /** Distinct users who arrived, over how many seconds. */
  users: number;
  arrivalSeconds: number;
  requests: number;
  responses: number;
  /** Answers per second between the first arrival and the last answer. */
  throughput: number;
  /** Of answered claims, from the user's press. */
  latencyMs: Percentiles;
  /** Latency by outcome (ISSUED waits for MongoDB, SOLD_OUT does not). */
  latencyByOutcomeMs: Record<string, Percentiles>;
  /** Claim outcomes and coded errors as the clients saw them, e.g. { ISSUED: 300, 'error.SERVICE_UNAVAILABLE': 2 }. */
  outcomes: Record<string, number>;
  /** Transport failures and claims unanswered within the client timeout. */
  transportErrors: Record<string, number>;
  /** Claims with no answer within the client timeout (10 s). */
  timeouts: number;
  /** Claims answered, but after the contract's 3 s. */
  answeredAfter3s: number;
  non200: number;
  audit: IssuanceAudit;
  /** What the API reports for the coupon after the run. */
  couponAfter: { remaining: number; issuedCount: number; status: string };
  /** Second by second since the spike's first claim: sent, answered, latency of those sent. */
  series: SecondRow[];
}

export function summarize(
  strategy: string,
  stock: number,
  records: ClaimRecord[],
  audit: IssuanceAudit,
  couponAfter: RunSummary['couponAfter'],
): RunSummary {
  const firsts = records.filter((r) => !r.again);
  const answered = records.filter((r) => r.answered !== null && !r.outcome.startsWith('transport.'));
  const first = Math.min(...firsts.map((r) => r.sent));
  const lastArrival = Math.max(...firsts.map((r) => r.sent));
  const lastAnswer = Math.max(...answered.map((r) => r.answered!));
  const latencies = (of: ClaimRecord[]) => of.map(latencyOf).filter((ms): ms is number => ms !== null);
  const outcomes = countBy(answered, (r) => r.outcome);
  const unanswered = records.filter((r) => !answered.includes(r));
  return {
    strategy,
    stock,
    users: firsts.length,
    arrivalSeconds: (lastArrival - first) / 1000,
    requests: records.length,
    responses: answered.length,
    throughput: answered.length / Math.max((lastAnswer - first) / 1000, 0.001),
    latencyMs: percentiles(latencies(answered)),
    latencyByOutcomeMs: Object.fromEntries(Object.keys(outcomes).map((outcome) => [outcome, percentiles(latencies(answered.filter((r) => r.outcome === outcome)))])),
    outcomes,
    transportErrors: countBy(unanswered, (r) => r.outcome),
    timeouts: records.filter((r) => r.outcome === 'timeout').length,
    answeredAfter3s: answered.filter((r) => latencyOf(r)! > BUDGET_MS).length,
    non200: answered.filter((r) => r.httpStatus !== 200).length,
    audit,
    couponAfter,
    series: perSecond(records, BUDGET_MS),
  };
}
