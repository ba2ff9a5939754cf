/**
 * `npm run load:capacity`: how many claims per second one instance, and WORKERS=auto, answer
 * within the SLOs of load/slo.json. For each configuration a fresh service on fresh embedded
 * servers; a drop's coupon (sold out in the first step, so later steps are mostly what a drop
 * mostly is: SOLD_OUT answers); then the arrival rate is raised step by step, each step new
 * distinct users at a steady pace for a few seconds, until a step breaks an SLO (p99 latency,
 * error share, any answer after 3 s or timeout). The knee is the highest rate held.
 * Writes load/reports/capacity-latest.{md,svg,json}. Needs `npm run load:install` (Vega, for the chart).
 *
 * Usage: npm run load:capacity -- [--rates 500,1000,2000,3000,4000,5000,6000,8000] [--step-seconds 8] [--configs 1,auto]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { TopLevelSpec } from 'vega-lite';
import type { SloFile } from '../smoke/run';
import { evenArrivals, latencyOf, percentiles, runOpenModel } from '../support/open-model';
import { createCoupon, startServiceProcess } from '../support/service-process';

const LOAD_DIR = path.join(__dirname, '..');
const REPORTS_DIR = path.join(LOAD_DIR, 'reports');

const { values: args } = parseArgs({
  options: {
    rates: { type: 'string', default: '500,1000,2000,3000,4000,5000,6000,8000' },
    'step-seconds': { type: 'string', default: '8' },
    configs: { type: 'string', default: '1,auto' },
    connections: { type: 'string', default: '250' },
  },
});
const rates = args.rates.split(',').map(Number);
const stepSeconds = Number(args['step-seconds']);
const connections = Number(args.connections);
const { slo } = JSON.parse(fs.readFileSync(path.join(LOAD_DIR, 'slo.json'), 'utf8')) as SloFile;

interface Step {
  workers: string;
  rate: number;
  answeredPerSecond: number;
  p50: number;
  p99: number;
  errorShare: number;
  late: number;
  held: boolean;
  breaches: string[];
}

async function measure(workers: string): Promise<Step[]> {
  process.stdout.write(`\nWORKERS=${workers}: fresh servers and service\n`);
  const service = await startServiceProcess({ env: { WORKERS: workers }, logFile: path.join(LOAD_DIR, 'results', `service-capacity-${workers}.log`) });
  const steps: Step[] = [];
  try {
    const couponId = await createCoupon(service, { name: `Capacity (WORKERS=${workers})`, totalQuantity: 100 });
    for (const [i, rate] of rates.entries()) {
      const users = Math.round(rate * stepSeconds);
      const records = await runOpenModel({
        url: service.url,
        couponId,
        auth: service.auth,
        arrivals: evenArrivals(users, stepSeconds),
        connections,
        timeoutMs: 10_000,
        userPrefix: `capacity-${workers}-${i}`,
        warmup: i === 0 ? { couponId, claims: 200 } : undefined,
      });
      const answered = records.filter((r) => r.answered !== null && !r.outcome.startsWith('transport.'));
      const latency = percentiles(answered.map((r) => latencyOf(r)!));
      const errors = records.filter((r) => !['ISSUED', 'ALREADY_ISSUED', 'SOLD_OUT'].includes(r.outcome)).length;
      const late = records.filter((r) => r.answered === null || latencyOf(r)! > 3000).length;
      const span = (Math.max(...answered.map((r) => r.answered!)) - Math.min(...records.map((r) => r.sent))) / 1000;
      const step: Step = {
        workers,
        rate,
        answeredPerSecond: Math.round(answered.length / Math.max(span, stepSeconds)),
        p50: Math.round(latency.p50),
        p99: Math.round(latency.p99),
        errorShare: errors / records.length,
        late,
        held: false,
        breaches: [],
      };
      if (step.p99 > slo.latencyP99Ms) step.breaches.push(`p99 ${step.p99} ms > ${slo.latencyP99Ms} ms`);
      if (step.errorShare > slo.maxErrorShare) step.breaches.push(`errors ${(step.errorShare * 100).toFixed(1)}% > ${slo.maxErrorShare * 100}%`);
      if (late > slo.maxAnsweredAfter3s + slo.maxTimeouts) step.breaches.push(`${late} answered after 3 s or never`);
      step.held = step.breaches.length === 0;
      steps.push(step);
      process.stdout.write(
        `WORKERS=${workers} ${rate}/s: ${step.answeredPerSecond} answers/s, p50 ${step.p50} ms, p99 ${step.p99} ms, errors ${(step.errorShare * 100).toFixed(1)}%` +
          `${step.held ? '' : ` -- breaks: ${step.breaches.join('; ')}`}\n`,
      );
      if (!step.held) break;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  } finally {
    await service.stop();
  }
  return steps;
}

const kneeOf = (steps: Step[]) => steps.filter((s) => s.held).reduce((best, s) => Math.max(best, s.rate), 0);
/** The knee as text: "at least" when no step broke an SLO (the knee lies above the rates tried). */
const kneeText = (steps: Step[]) => `${steps.every((s) => s.held) ? 'at least ' : ''}${kneeOf(steps)}`;

async function renderSvg(steps: Step[]): Promise<string> {
  const color = { field: 'workers', type: 'nominal', title: 'WORKERS' } as const;
  const x = { field: 'rate', type: 'quantitative', title: 'offered claims per second' } as const;
  const knees = [...new Set(steps.map((s) => s.workers))].map((workers) => ({ workers, rate: kneeOf(steps.filter((s) => s.workers === workers)) }));
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Capacity: claims per second held within the SLOs', anchor: 'start' },
    config: { font: 'sans-serif', view: { stroke: null } },
    resolve: { scale: { color: 'shared' } },
    vconcat: [
      {
        title: `p99 latency (ms); the SLO (${slo.latencyP99Ms} ms) in red, each knee dashed`,
        width: 560,
        height: 220,
        layer: [
          { data: { values: steps }, mark: { type: 'line', point: true }, encoding: { x, y: { field: 'p99', type: 'quantitative', title: 'p99 ms', scale: { type: 'log' } }, color } },
          { data: { values: [{ ms: slo.latencyP99Ms }] }, mark: { type: 'rule', color: '#c00' }, encoding: { y: { field: 'ms', type: 'quantitative' } } },
          { data: { values: knees }, mark: { type: 'rule', strokeDash: [4, 3] }, encoding: { x: { field: 'rate', type: 'quantitative' }, color } },
        ],
      },
      {
        title: 'answers per second',
        width: 560,
        height: 180,
        layer: [{ data: { values: steps }, mark: { type: 'line', point: true }, encoding: { x, y: { field: 'answeredPerSecond', type: 'quantitative', title: 'answers/s' }, color } }],
      },
    ],
  };
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  return new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' }).toSVG();
}

async function main(): Promise<void> {
  fs.mkdirSync(REPORTS_DIR, { recursive: true });
  const steps: Step[] = [];
  for (const workers of args.configs.split(',')) steps.push(...(await measure(workers.trim())));
  const argv = process.argv.slice(2).join(' ');
  const machine = `${os.cpus().length} cores, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)} at the end`;
  const configs = [...new Set(steps.map((s) => s.workers))];
  const md = [
    '# Capacity',
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${machine}. Command: \`npm run load:capacity${argv ? ` -- ${argv}` : ''}\``,
    '',
    `Each step: distinct users arriving evenly for ${stepSeconds} s over ${connections} pooled connections, on a coupon sold out in the first`,
    `step (so most answers are SOLD_OUT, as in a drop). SLOs from load/slo.json: p99 at most ${slo.latencyP99Ms} ms, errors at most`,
    `${slo.maxErrorShare * 100}%, no answer after 3 s, no timeout. The knee is the highest rate whose step held them all.`,
    'The load generator, the service and both embedded servers share the machine.',
    '',
    '| WORKERS | knee (claims/s held) |',
    '|---|---:|',
    ...configs.map((w) => `| ${w === 'auto' ? `auto (${os.availableParallelism()})` : w} | ${kneeText(steps.filter((s) => s.workers === w))} |`),
    '',
    '![p99 and answers per second against the offered rate](capacity-latest.svg)',
    '',
    '| WORKERS | offered/s | answers/s | p50 | p99 | errors | after 3 s or never | held |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...steps.map((s) => `| ${s.workers} | ${s.rate} | ${s.answeredPerSecond} | ${s.p50} ms | ${s.p99} ms | ${(s.errorShare * 100).toFixed(1)}% | ${s.late} | ${s.held ? 'yes' : `no: ${s.breaches.join('; ')}`} |`),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(REPORTS_DIR, 'capacity-latest.md'), md);
  fs.writeFileSync(path.join(REPORTS_DIR, 'capacity-latest.svg'), await renderSvg(steps));
  fs.writeFileSync(path.join(REPORTS_DIR, 'capacity-latest.json'), JSON.stringify({ machine, steps }, null, 2) + '\n');
  process.stdout.write(`\nknees: ${configs.map((w) => `WORKERS=${w} ${kneeText(steps.filter((s) => s.workers === w))}/s`).join(', ')}\nreport: load/reports/capacity-latest.md\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`load:capacity failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
