/**
 * The comparison written for people: a Markdown table side by side, and an SVG chart (latency
 * percentiles and throughput per strategy) rendered with Vega-Lite, no browser needed.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { RunSummary } from './summary';

export interface ComparisonMeta {
  date: string;
  command: string;
  spike: { users: number; arrivalRate: number; seconds: number; retryPercent: number; connections: number; clientTimeoutMs: number };
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
  const users = meta.spike.users;
  return [
    '# Claim strategies under the same drop',
    '',
    `${meta.date}. A drop: ${users} distinct users arrive within ${meta.spike.seconds} s (${meta.spike.arrivalRate}/s), each claims once and`,
    `${meta.spike.retryPercent}% claim again 0.5 s after their answer, against a fresh coupon of ${runs[0]?.stock ?? '?'} on fresh embedded Redis`,
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
    row(`timeouts (${meta.spike.clientTimeoutMs / 1000} s client limit)`, (r) => String(r.timeouts)),
    row('transport errors', (r) => list(r.transportErrors)),
    row('HTTP status other than 200', (r) => String(r.non200)),
    row('outcomes seen by clients', (r) => list(r.outcomes)),
    row('issued in MongoDB / stock', (r) => `${r.audit.issued} / ${r.stock}`),
    row('one per user, sequences unique in 1..stock', (r) => (r.audit.guaranteesHold ? 'yes' : '**NO**')),
    row('coupon after: remaining, status', (r) => `${r.couponAfter.remaining}, ${r.couponAfter.status}`),
    '',
    `![latency and answers per second, second by second, per strategy](${chartFile})`,
    '',
    'Latency is measured by the load generator from the moment a user presses (their arrival time,',
    `whatever the service's pace: an open model) to the answer, including any wait for one of the ${meta.spike.connections}`,
    'pooled keep-alive connections (where an overloaded service\'s backlog shows, as it would in a load',
    'balancer\'s queue). Throughput is answers per second from the first arrival to the last answer.',
    '',
    '## Second by second',
    '',
    'Claims sent in each second since the drop began, the p99 latency of those answered, how many of them',
    'were answered late (after 3 s) or never (client timeout), and the answers given in that second.',
    '',
    ...runs.flatMap((r) => [
      `**\`${r.strategy}\`**: ` +
        r.series
          .filter((row) => row.sent > 0 || row.answered > 0)
          .map((row) => `${row.second} s: ${row.sent} sent, p99 ${row.p99 ?? '-'} ms, ${row.late} late, ${row.answered} answered`)
          .join('; '),
      '',
    ]),
  ].join('\n');
}

/** The contract's answer time, drawn on the latency chart. */
const BUDGET_MS = 3000;

/**
 * The run over time, as Artillery's own report shows it: per strategy, the latency of the claims
 * sent in each second (p50 and p99, log scale, with the 3 s budget drawn) and answers per second,
 * against seconds since the spike began.
 */
export async function renderSvg(runs: RunSummary[]): Promise<string> {
  const strategies = runs.map((r) => r.strategy);
  const latency = runs.flatMap((r) =>
    r.series.flatMap((row) =>
      (['p50', 'p99'] as const)
        .filter((p) => row[p] !== null)
        .map((p) => ({ strategy: r.strategy, percentile: p, second: row.second, ms: Math.max(1, row[p]!) })),
    ),
  );
  const answers = runs.flatMap((r) => r.series.map((row) => ({ strategy: r.strategy, second: row.second, answered: row.answered, sent: row.sent })));
  const color = { field: 'strategy', type: 'nominal', title: 'CLAIM_STRATEGY', scale: { domain: strategies } } as const;
  const x = { field: 'second', type: 'quantitative', title: 'seconds since the spike began' } as const;
  const width = 640;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'The same drop against each claim strategy, second by second', anchor: 'start' },
    config: { font: 'sans-serif', view: { stroke: null } },
    resolve: { scale: { color: 'shared' }, legend: { color: 'shared' } },
    vconcat: [
      {
        title: 'Latency of the claims sent in each second (ms, log scale): p50 dashed, p99 solid',
        width,
        height: 240,
        layer: [
          {
            data: { values: latency },
            mark: { type: 'line', point: true, strokeWidth: 2 },
            encoding: {
              x,
              y: { field: 'ms', type: 'quantitative', title: 'ms', scale: { type: 'log' } },
              color,
              strokeDash: { field: 'percentile', type: 'nominal', title: 'percentile', scale: { domain: ['p99', 'p50'], range: [[1, 0], [4, 3]] } },
              detail: { field: 'percentile' },
            },
          },
          {
            data: { values: [{ ms: BUDGET_MS, label: 'contract: answered within 3 s' }] },
            layer: [
              { mark: { type: 'rule', color: '#c00', strokeWidth: 1.5 }, encoding: { y: { field: 'ms', type: 'quantitative' } } },
              {
                mark: { type: 'text', color: '#c00', align: 'left', dx: 4, dy: -6, x: 0 },
                encoding: { y: { field: 'ms', type: 'quantitative' }, text: { field: 'label' } },
              },
            ],
          },
        ],
      },
      {
        title: 'Answers per second (and users sending their claims, grey)',
        width,
        height: 180,
        layer: [
          {
            data: { values: answers.filter((a) => a.strategy === strategies[0]) },
            mark: { type: 'area', color: '#ddd', interpolate: 'step-after' },
            encoding: { x, y: { field: 'sent', type: 'quantitative', title: 'per second' } },
          },
          {
            data: { values: answers },
            mark: { type: 'line', point: true, strokeWidth: 2, interpolate: 'step-after' },
            encoding: { x, y: { field: 'answered', type: 'quantitative' }, color },
          },
        ],
      },
    ],
  };
  // Vega ships as ES modules with top-level await: loaded as such, not through require.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
