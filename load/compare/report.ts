/**
 * The comparison written for people: a Markdown table side by side, and an SVG chart (latency
 * percentiles and throughput per strategy) rendered with Vega-Lite, no browser needed.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { RunSummary } from './summary';

export interface ComparisonMeta {
  date: string;
  command: string;
  spike: { arrivalRate: number; seconds: number; retryPercent: number };
  machine: string;
}

const ms = (value: number) => (Number.isFinite(value) ? `${Math.round(value)} ms` : 'n/a');
const list = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name} ${n}`)
    .join(', ') || 'none';

const byOutcome = (run: RunSummary, outcome: string) => {
  const p = run.latencyByOutcomeMs[outcome];
  return p ? `${ms(p.p50)} / ${ms(p.p99)}` : 'n/a';
};

/** Throughput is only comparable when the generator kept the same pace in every run. */
function paceWarning(runs: RunSummary[]): string[] {
  const paces = runs.map((r) => r.users / r.arrivalSeconds).filter(Number.isFinite);
  if (paces.length < 2 || Math.max(...paces) / Math.min(...paces) <= 1.1) return [];
  return [
    `**The load generator reached different paces (${paces.map((p) => `${p.toFixed(0)}/s`).join(' vs ')}), so throughput is not`,
    'comparable across columns; rerun with a lower `--rate`.**',
    '',
  ];
}

export function renderMarkdown(runs: RunSummary[], meta: ComparisonMeta, chartFile: string): string {
  const row = (label: string, cell: (run: RunSummary) => string) => `| ${label} | ${runs.map(cell).join(' | ')} |`;
  const users = Math.round(meta.spike.arrivalRate * meta.spike.seconds);
  return [
    '# Claim strategies under the same spike',
    '',
    `${meta.date}. Spike: ${users} distinct users sent within ${meta.spike.seconds} s (${meta.spike.arrivalRate}/s), each claims once and`,
    `${meta.spike.retryPercent}% claim again 0.5 s later, against a fresh coupon of ${runs[0]?.stock ?? '?'} on fresh embedded Redis`,
    'and MongoDB-compatible servers, the service started with `CLAIM_RATE_PER_USER=0 CLAIM_RATE_PER_IP=0`.',
    `Load generator, service and both servers share one machine (${meta.machine}); compare the columns, not`,
    'the absolute numbers with production hardware.',
    '',
    `Command: \`${meta.command}\``,
    '',
    ...paceWarning(runs),
    `| | ${runs.map((r) => `\`CLAIM_STRATEGY=${r.strategy}\``).join(' | ')} |`,
    `|---|${runs.map(() => '---:').join('|')}|`,
    row('users arrived, over', (r) => `${r.users} in ${r.arrivalSeconds.toFixed(1)} s (${(r.users / r.arrivalSeconds).toFixed(0)}/s)`),
    row('claims sent / answered', (r) => `${r.requests} / ${r.responses}`),
    row('throughput (answers/s)', (r) => r.throughput.toFixed(0)),
    row('latency p50', (r) => ms(r.latencyMs.p50)),
    row('latency p95', (r) => ms(r.latencyMs.p95)),
    row('latency p99', (r) => ms(r.latencyMs.p99)),
    row('latency max', (r) => ms(r.latencyMs.max)),
    row('ISSUED: p50 / p99', (r) => byOutcome(r, 'ISSUED')),
    row('SOLD_OUT: p50 / p99', (r) => byOutcome(r, 'SOLD_OUT')),
    row('answered after 3 s (contract)', (r) => String(r.answeredAfter3s)),
    row('timeouts (10 s client limit)', (r) => String(r.timeouts)),
    row('transport errors', (r) => list(r.transportErrors)),
    row('HTTP status other than 200', (r) => String(r.non200)),
    row('outcomes seen by clients', (r) => list(r.outcomes)),
    row('issued in MongoDB / stock', (r) => `${r.audit.issued} / ${r.stock}`),
    row('one per user, sequences unique in 1..stock', (r) => (r.audit.guaranteesHold ? 'yes' : '**NO**')),
    row('coupon after: remaining, status', (r) => `${r.couponAfter.remaining}, ${r.couponAfter.status}`),
    '',
    `![latency and throughput per strategy](${chartFile})`,
    '',
    'Latency is measured by the load generator from the moment a user sends the claim to its answer,',
    'including any wait for one of the 100 pooled keep-alive connections (where an overloaded service\'s',
    'backlog shows, as it would in a load balancer\'s queue). "Users arrived"',
    'is the pace the generator really reached (it shares the two cores). Throughput is answers per',
    'second from the first arrival to the last answer; in an open-model spike it cannot',
    'exceed the rate at which claims are sent (arrivals plus second presses), so a strategy that keeps',
    'up shows that rate and one that falls behind shows less, with the backlog in its latency.',
    '',
  ].join('\n');
}

export async function renderSvg(runs: RunSummary[]): Promise<string> {
  const latency = runs.flatMap((r) =>
    (['p50', 'p95', 'p99'] as const).map((percentile) => ({ strategy: r.strategy, percentile, ms: Math.round(r.latencyMs[percentile]) })),
  );
  const throughput = runs.map((r) => ({ strategy: r.strategy, perSecond: Math.round(r.throughput) }));
  const color = { field: 'strategy', type: 'nominal', title: 'CLAIM_STRATEGY', scale: { domain: runs.map((r) => r.strategy) } } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Claim strategies under the same spike', anchor: 'start' },
    config: { font: 'sans-serif', view: { stroke: null } },
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
    hconcat: [
      {
        title: 'Claim latency (ms, lower is better)',
        data: { values: latency },
        width: 360,
        height: 220,
        encoding: {
          x: { field: 'percentile', type: 'nominal', title: null, axis: { labelAngle: 0 } },
          xOffset: { field: 'strategy', sort: runs.map((r) => r.strategy) },
          y: { field: 'ms', type: 'quantitative', title: 'ms' },
        },
        layer: [
          { mark: { type: 'bar' }, encoding: { color } },
          { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { text: { field: 'ms', type: 'quantitative' } } },
        ],
      },
      {
        title: 'Throughput (answers/s, higher is better)',
        data: { values: throughput },
        width: 200,
        height: 220,
        encoding: {
          x: { field: 'strategy', type: 'nominal', title: null, sort: runs.map((r) => r.strategy), axis: { labelAngle: 0 } },
          y: { field: 'perSecond', type: 'quantitative', title: 'answers/s' },
        },
        layer: [
          { mark: { type: 'bar' }, encoding: { color } },
          { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { text: { field: 'perSecond', type: 'quantitative' } } },
        ],
      },
    ],
  };
  // Vega ships as ES modules with top-level await: loaded as such, not through require.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
