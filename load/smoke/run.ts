/**
 * `npm run load:smoke`: a short load test (under a minute) that every change gets (.ci/run runs
 * it after npm test). A fresh service with fresh embedded servers, a coupon, a warm-up, then the
 * run in load/slo.json (distinct users arriving at a steady pace, a share pressing again); then
 * the SLOs in that same file are checked: latency, errors, requests shed (from the service's
 * /metrics), answers after the contract's 3 s, client timeouts, and the guarantees audited in
 * MongoDB. Any breach prints one line per SLO and exits 1. Needs only the root install.
 */
import fs from 'node:fs';
import path from 'node:path';
import { auditIssuances } from '../support/mongo-audit';
import { evenArrivals, latencyOf, percentiles, runOpenModel } from '../support/open-model';
import { createCoupon, readCoupon, startServiceProcess } from '../support/service-process';

const LOAD_DIR = path.join(__dirname, '..');

export interface SloFile {
  run: { users: number; seconds: number; stock: number; retryPercent: number; connections: number; clientTimeoutMs: number };
  slo: {
    latencyP99Ms: number;
    latencyP50Ms: number;
    maxErrorShare: number;
    maxShedShare: number;
    maxAnsweredAfter3s: number;
    maxTimeouts: number;
    guaranteesHold: boolean;
    allStockIssued: boolean;
  };
}

/** Sum of a counter's samples in Prometheus text. */
export function counterSum(metrics: string, name: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function main(): Promise<void> {
  const { run, slo } = JSON.parse(fs.readFileSync(path.join(LOAD_DIR, 'slo.json'), 'utf8')) as SloFile;
  const started = Date.now();
  const service = await startServiceProcess({ logFile: path.join(LOAD_DIR, 'results', 'service-smoke.log') });
  try {
    const couponId = await createCoupon(service, { name: 'Smoke', totalQuantity: run.stock });
    const warmupCouponId = await createCoupon(service, { name: 'Smoke warm-up', totalQuantity: 50 });
    process.stdout.write(`load:smoke: ${run.users} users in ${run.seconds} s, stock ${run.stock}, ${run.connections} connections\n`);
    const records = await runOpenModel({
      url: service.url,
      couponId,
      auth: service.auth,
      arrivals: evenArrivals(run.users, run.seconds),
      retryPercent: run.retryPercent,
      connections: run.connections,
      timeoutMs: run.clientTimeoutMs,
      warmup: { couponId: warmupCouponId, claims: 200 },
    });
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const audit = await auditIssuances(service.mongoUri, couponId, run.stock);
    const coupon = await readCoupon(service, couponId);

    const answered = records.filter((r) => r.answered !== null && !r.outcome.startsWith('transport.'));
    const latency = percentiles(answered.map((r) => latencyOf(r)!));
    const errors = records.filter((r) => !['ISSUED', 'ALREADY_ISSUED', 'SOLD_OUT'].includes(r.outcome)).length;
    const shed = counterSum(metrics, 'coupon_requests_shed_total');
    const graphqlAnswered = counterSum(metrics, 'coupon_graphql_requests_total');
    const measured = {
      latencyP99Ms: Math.round(latency.p99),
      latencyP50Ms: Math.round(latency.p50),
      errorShare: errors / records.length,
      shedShare: shed / Math.max(1, shed + graphqlAnswered),
      answeredAfter3s: answered.filter((r) => latencyOf(r)! > 3000).length,
      timeouts: records.filter((r) => r.outcome === 'timeout').length,
      guaranteesHold: audit.guaranteesHold,
      issued: audit.issued,
    };
    const checks: Array<[string, boolean, string]> = [
      ['latency p99', measured.latencyP99Ms <= slo.latencyP99Ms, `${measured.latencyP99Ms} ms (budget ${slo.latencyP99Ms} ms)`],
      ['latency p50', measured.latencyP50Ms <= slo.latencyP50Ms, `${measured.latencyP50Ms} ms (budget ${slo.latencyP50Ms} ms)`],
      ['errors', measured.errorShare <= slo.maxErrorShare, `${(measured.errorShare * 100).toFixed(2)}% of ${records.length} claims (budget ${slo.maxErrorShare * 100}%)`],
      ['shed', measured.shedShare <= slo.maxShedShare, `${(measured.shedShare * 100).toFixed(2)}% of requests (budget ${slo.maxShedShare * 100}%)`],
      ['answered after 3 s', measured.answeredAfter3s <= slo.maxAnsweredAfter3s, `${measured.answeredAfter3s} (budget ${slo.maxAnsweredAfter3s})`],
      ['client timeouts', measured.timeouts <= slo.maxTimeouts, `${measured.timeouts} (budget ${slo.maxTimeouts})`],
      ['guarantees in MongoDB', !slo.guaranteesHold || measured.guaranteesHold, `no oversell, one per user, sequences unique: ${measured.guaranteesHold ? 'yes' : 'NO'}`],
      [
        'all stock issued',
        !slo.allStockIssued || (audit.issued === run.stock && coupon.remaining === 0),
        `${audit.issued}/${run.stock} in MongoDB, remaining ${coupon.remaining}`,
      ],
    ];
    const outcomes: Record<string, number> = {};
    for (const r of records) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    process.stdout.write(`load:smoke: outcomes ${JSON.stringify(outcomes)}\n`);
    for (const [name, ok, detail] of checks) process.stdout.write(`${ok ? 'ok    ' : 'BREACH'} ${name}: ${detail}\n`);
    process.stdout.write(`load:smoke: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    if (checks.some(([, ok]) => !ok)) {
      process.stderr.write('load:smoke: SLO breached (budgets in load/slo.json)\n');
      process.exitCode = 1;
    }
  } finally {
    await service.stop();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`load:smoke failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
