/**
 * `npm run load:compare`: the incident replayed. The same drop (thousands of distinct users
 * within a couple of seconds, a quarter pressing again half a second after their answer) against
 * each claim strategy, each on fresh embedded Redis and MongoDB-compatible servers and a fresh
 * service process; then the issuances checked in MongoDB and the results written side by side to
 * load/reports/compare-latest.{md,svg,json}, with the run second by second. Service logs and every
 * claim's record stay in load/results/.
 *
 * The users come from an open-model generator (support/open-model.ts): each arrives at its time
 * whatever the service's pace, which Artillery cannot do for a drop of thousands in two seconds
 * on a shared 2-core machine (it reached ~100 arrivals/s there); Artillery stays for the single
 * scenarios. The chart needs Vega, in load/'s own package: `npm run load:install` once.
 *
 * Usage: npm run load:compare -- [--users 2000] [--seconds 2] [--stock 300] [--strategies redis,db-lock,db-atomic] [--connections 250]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { auditIssuances } from '../support/mongo-audit';
import { evenArrivals, runOpenModel } from '../support/open-model';
import { createCoupon, readCoupon, startServiceProcess } from '../support/service-process';
import { renderMarkdown, renderSvg } from './report';
import { summarize, type RunSummary } from './summary';

const LOAD_DIR = path.join(__dirname, '..');
const RESULTS_DIR = path.join(LOAD_DIR, 'results');
const REPORTS_DIR = path.join(LOAD_DIR, 'reports');
const STRATEGIES = ['redis', 'db-lock', 'db-atomic'] as const;
/** Users who press again, half a second after their first answer. */
const RETRY_PERCENT = 25;
/** The client gives up after this long: well past the contract's 3 s, so late answers are measured. */
const CLIENT_TIMEOUT_MS = 10_000;
/** Claims on another coupon before the drop, so that the drop meets a warm service with its connections open. */
const WARMUP_CLAIMS = 500;

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '2' },
    stock: { type: 'string', default: '300' },
    strategies: { type: 'string', default: STRATEGIES.join(',') },
    // Pooled keep-alive connections, as a load balancer in front of the service holds them.
    connections: { type: 'string', default: '250' },
  },
});
const CONNECTIONS = Number(args.connections);
const spike = { users: Number(args.users), seconds: Number(args.seconds), arrivalRate: Math.round(Number(args.users) / Number(args.seconds)) };
const stock = Number(args.stock);
const strategies = args.strategies.split(',').map((name) => {
  const strategy = STRATEGIES.find((known) => known === name.trim());
  if (!strategy) throw new Error(`--strategies: unknown strategy ${name} (known: ${STRATEGIES.join(', ')})`);
  return strategy;
});

async function runStrategy(strategy: (typeof STRATEGIES)[number]): Promise<RunSummary> {
  process.stdout.write(`\n${strategy}: starting fresh redis-server, MongoDB-compatible server and service\n`);
  const service = await startServiceProcess({ env: { CLAIM_STRATEGY: strategy }, logFile: path.join(RESULTS_DIR, `service-${strategy}.log`) });
  try {
    const couponId = await createCoupon(service, { name: `Drop (${strategy})`, totalQuantity: stock });
    const warmupCouponId = await createCoupon(service, { name: `Warm-up (${strategy})`, totalQuantity: 100 });
    process.stdout.write(`${strategy}: ${spike.users} users in ${spike.seconds} s (${spike.arrivalRate}/s) on a stock of ${stock} (coupon ${couponId})\n`);
    const records = await runOpenModel({
      url: service.url,
      couponId,
      auth: service.auth,
      arrivals: evenArrivals(spike.users, spike.seconds),
      retryPercent: RETRY_PERCENT,
      againAfterMs: 500,
      connections: CONNECTIONS,
      timeoutMs: CLIENT_TIMEOUT_MS,
      warmup: { couponId: warmupCouponId, claims: WARMUP_CLAIMS },
    });
    fs.writeFileSync(path.join(RESULTS_DIR, `drop-${strategy}.json`), JSON.stringify(records));
    // Claims the service had not answered (client timeouts) may still be finishing: let them land before the audit.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const audit = await auditIssuances(service.mongoUri, couponId, stock);
    const summary = summarize(strategy, stock, records, audit, await readCoupon(service, couponId));
    process.stdout.write(
      `${strategy}: p50 ${summary.latencyMs.p50.toFixed(0)} ms, p99 ${summary.latencyMs.p99.toFixed(0)} ms, answered after 3 s ${summary.answeredAfter3s}, ` +
        `timeouts ${summary.timeouts}, outcomes ${JSON.stringify(summary.outcomes)}, issued ${audit.issued}/${stock}\n`,
    );
    return summary;
  } finally {
    await service.stop();
  }
}

async function main(): Promise<void> {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.mkdirSync(REPORTS_DIR, { recursive: true });
  const runs: RunSummary[] = [];
  for (const strategy of strategies) runs.push(await runStrategy(strategy));

  const argv = process.argv.slice(2).join(' ');
  const meta = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    command: `npm run load:compare${argv ? ` -- ${argv}` : ''}`,
    spike: { ...spike, retryPercent: RETRY_PERCENT, connections: CONNECTIONS, clientTimeoutMs: CLIENT_TIMEOUT_MS },
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at the end`,
  };
  fs.writeFileSync(path.join(REPORTS_DIR, 'compare-latest.md'), renderMarkdown(runs, meta, 'compare-latest.svg'));
  fs.writeFileSync(path.join(REPORTS_DIR, 'compare-latest.svg'), await renderSvg(runs));
  fs.writeFileSync(path.join(REPORTS_DIR, 'compare-latest.json'), JSON.stringify({ meta, runs }, null, 2) + '\n');
  process.stdout.write(`\nreport: ${path.relative(process.cwd(), path.join(REPORTS_DIR, 'compare-latest.md'))} (+ .svg, .json)\n`);
  if (runs.some((r) => !r.audit.guaranteesHold)) {
    process.stderr.write('a strategy broke a guarantee (see the report)\n');
    process.exitCode = 1;
  }
}

main().catch((error: Error) => {
  process.stderr.write(`load:compare failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
