/**
 * `npm run load:compare`: the same Artillery spike (scenarios/spike.yml) against each claim
 * strategy, each on fresh embedded Redis and MongoDB-compatible servers and a fresh service
 * process, then the issuances checked in MongoDB and the results written side by side to
 * load/reports/compare-latest.{md,svg,json}. Raw Artillery output stays in load/results/.
 *
 * Usage: npm run load:compare -- [--rate 150] [--seconds 20] [--stock 300] [--strategies redis,db-lock]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LOAD_DIR, runArtillery } from '../support/artillery';
import { auditIssuances } from '../support/mongo-audit';
import { createCoupon, readCoupon, startServiceProcess } from '../support/service-process';
import { renderMarkdown, renderSvg } from './report';
import { summarize, type RunSummary } from './summary';

const RESULTS_DIR = path.join(LOAD_DIR, 'results');
const REPORTS_DIR = path.join(LOAD_DIR, 'reports');
const STRATEGIES = ['redis', 'db-lock'] as const;
/** The spike scenario's second press (`probability` of its second request). */
const RETRY_PERCENT = 25;

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '150' },
    seconds: { type: 'string', default: '20' },
    stock: { type: 'string', default: '300' },
    strategies: { type: 'string', default: STRATEGIES.join(',') },
  },
});
const spike = { arrivalRate: Number(args.rate), seconds: Number(args.seconds) };
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
    const couponId = await createCoupon(service, { name: `Spike (${strategy})`, totalQuantity: stock });
    process.stdout.write(`${strategy}: ${spike.arrivalRate}/s for ${spike.seconds} s on a stock of ${stock} (coupon ${couponId})\n`);
    const reportFile = await runArtillery({
      scenario: 'spike.yml',
      service,
      couponId,
      output: path.join(RESULTS_DIR, `spike-${strategy}.json`),
      overrides: { config: { phases: [{ name: 'drop', duration: spike.seconds, arrivalRate: spike.arrivalRate }] } },
      // The spike, then second presses and 10 s client timeouts: far inside this bound.
      limitSeconds: spike.seconds + 120,
    });
    const audit = await auditIssuances(service.mongoUri, couponId, stock);
    const summary = summarize(strategy, stock, JSON.parse(fs.readFileSync(reportFile, 'utf8')), audit, await readCoupon(service, couponId));
    process.stdout.write(
      `${strategy}: ${summary.throughput.toFixed(0)} answers/s, p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms, issued ${audit.issued}/${stock}\n`,
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
    spike: { ...spike, retryPercent: RETRY_PERCENT },
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
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
