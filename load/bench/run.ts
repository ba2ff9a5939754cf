/**
 * `npm run bench`: claimCoupon throughput and latency, distinct users, 50 connections, against
 * the real service (Redis strategy, its own process, fresh embedded servers, every claim a win),
 * and in the same run against the reference Apollo server (same schema, constant resolver), with
 * the ratio claim/reference. Then the same load against a bench-only instrumented build of the
 * service says where a claim's time goes: wall time per stage, and CPU time per layer.
 * Results on stdout and in load/reports/bench-latest.md.
 *
 * Usage: npm run bench -- [--claims 3000] [--connections 50] [--quick]
 *   --quick  sold out and reference only, no report file: for trying a change in a minute
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Authenticator } from '../../src/services/auth';
import { createCoupon, ROOT, startServiceProcess, type ServiceProcess } from '../support/service-process';
import { cpuByLayer, type CpuProfile } from './profile';

const LOAD_DIR = path.join(__dirname, '..');
const RESULTS_DIR = path.join(LOAD_DIR, 'results');
const REPORTS_DIR = path.join(LOAD_DIR, 'reports');
const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id sequence } } }';
/** Large enough that every claim in the run is a win: the full path, Redis script and MongoDB write. */
const STOCK = 10_000_000;
const WARMUP_CLAIMS = 500;

const { values: args } = parseArgs({
  options: {
    claims: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '50' },
    quick: { type: 'boolean', default: false },
  },
});
const claims = Number(args.claims);
const connections = Number(args.connections);

interface Measured {
  requestsPerSecond: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Answers carrying a GraphQL error (they arrive with HTTP 200), e.g. SERVICE_UNAVAILABLE. */
  graphqlErrors: number;
  /** Answers with another outcome than the one every request should get. */
  unexpected: number;
  seconds: number;
}

/** Signs one token per distinct user up front, so the load generator does no crypto while measuring. */
function tokensFor(secret: string, count: number, prefix: string): string[] {
  const auth = new Authenticator(secret);
  return Array.from({ length: count }, (_, i) => auth.issue(`${prefix}-${i}`, { expiresIn: '1h' }));
}

async function hammer(url: string, couponId: string, tokens: string[], expected: 'ISSUED' | 'SOLD_OUT'): Promise<Measured> {
  let next = 0;
  let graphqlErrors = 0;
  let unexpected = 0;
  const result = await autocannon({
    url: `${url}/graphql`,
    method: 'POST',
    connections: Math.min(connections, tokens.length),
    amount: tokens.length,
    timeout: 10,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CLAIM, variables: { couponId } }),
    requests: [
      {
        // Each request is a different person: the next token.
        setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } }),
        onResponse: (_status, body) => {
          if (body.includes('"errors"')) graphqlErrors += 1;
          else if (!body.includes(`"status":"${expected}"`)) unexpected += 1;
        },
      },
    ],
  });
  return {
    requestsPerSecond: result.requests.total / result.duration,
    latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    graphqlErrors,
    unexpected,
    seconds: result.duration,
  };
}

/** Wins (every claim ISSUED: Redis script and MongoDB write), then a sold-out coupon (Redis only). */
async function benchService(withWins: boolean): Promise<{ wins?: Measured; soldOut: Measured }> {
  const service = await startServiceProcess({ logFile: path.join(RESULTS_DIR, 'bench-service.log') });
  try {
    const couponId = await createCoupon(service, { name: 'Bench', totalQuantity: STOCK });
    const [warm, measured] = [tokensFor(service.jwtSecret, WARMUP_CLAIMS, 'warm'), tokensFor(service.jwtSecret, claims, 'bench')];
    await hammer(service.url, couponId, warm, 'ISSUED');
    const wins = withWins ? await hammer(service.url, couponId, measured, 'ISSUED') : undefined;
    const goneId = await createCoupon(service, { name: 'Bench (gone)', totalQuantity: 1 });
    await hammer(service.url, goneId, warm.slice(0, 1), 'ISSUED');
    const soldOut = await hammer(service.url, goneId, measured, 'SOLD_OUT');
    return { wins, soldOut };
  } finally {
    await service.stop();
  }
}

async function benchReference(): Promise<Measured> {
  const log = fs.openSync(path.join(RESULTS_DIR, 'bench-reference.log'), 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', 'load/bench/reference-server.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let seen = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /REFERENCE_PORT=(\d+)/.exec(seen);
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`reference server exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    // Same headers and body as the service gets; the reference ignores the token.
    const tokens = tokensFor('reference-secret-not-checked-0123456789', claims, 'ref');
    await hammer(url, '650000000000000000000000', tokens.slice(0, WARMUP_CLAIMS), 'ISSUED');
    return await hammer(url, '650000000000000000000000', tokens, 'ISSUED');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

type Stage = 'http' | 'jwt' | 'resolver' | 'redis' | 'durable';
interface Breakdown {
  stages: Record<Stage, number[]>;
  batches: Array<{ size: number; ms: number }>;
  profile: CpuProfile;
  load: Measured;
}

function ask(service: ServiceProcess, message: object): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    service.child.once('message', (reply) => resolve(reply as Record<string, unknown>));
    service.child.send(message);
  });
}

async function benchBreakdown(): Promise<Breakdown> {
  const service = await startServiceProcess({ entry: 'load/bench/instrumented-service.ts', ipc: true, logFile: path.join(RESULTS_DIR, 'bench-instrumented.log') });
  try {
    const couponId = await createCoupon(service, { name: 'Bench (instrumented)', totalQuantity: STOCK });
    const [warm, measured] = [tokensFor(service.jwtSecret, WARMUP_CLAIMS, 'warm'), tokensFor(service.jwtSecret, claims, 'bench')];
    await hammer(service.url, couponId, warm, 'ISSUED');
    await ask(service, { cmd: 'start' });
    const load = await hammer(service.url, couponId, measured, 'ISSUED');
    const profileFile = path.join(RESULTS_DIR, 'bench-claims.cpuprofile');
    const reply = await ask(service, { cmd: 'stop', profileFile });
    return {
      stages: reply.stages as Breakdown['stages'],
      batches: reply.batches as Breakdown['batches'],
      profile: JSON.parse(fs.readFileSync(profileFile, 'utf8')) as CpuProfile,
      load,
    };
  } finally {
    await service.stop();
  }
}

const quantile = (values: number[], q: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

function render(service: { wins: Measured; soldOut: Measured }, reference: Measured, breakdown: Breakdown, command: string): string {
  const row = (label: string, m: Measured) =>
    `| ${label} | ${m.requestsPerSecond.toFixed(0)} | ${m.latency.p50} | ${m.latency.p90} | ${m.latency.p99} | ${m.latency.max} | ${m.errors} | ${m.timeouts} | ${m.non2xx} | ${m.graphqlErrors} | ${m.unexpected} |`;
  const { stages, batches } = breakdown;
  const stageRow = (label: string, values: number[], note: string) =>
    `| ${label} | ${values.length} | ${f2(mean(values))} | ${f2(quantile(values, 0.5))} | ${f2(quantile(values, 0.99))} | ${note} |`;
  const http = mean(stages.http);
  const outside = http - mean(stages.jwt) - mean(stages.resolver);
  const cpu = cpuByLayer(breakdown.profile);
  const batchSizes = batches.map((b) => b.size);
  return [
    '# Claim benchmark',
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length} cores, Node ${process.version}. Command: \`${command}\``,
    '',
    `${claims} claims by ${claims} distinct users over ${connections} keep-alive connections (autocannon), after ${WARMUP_CLAIMS} warm-up`,
    'claims. "wins": a coupon large enough that every claim is ISSUED (Redis script and MongoDB group commit',
    'every time); "sold out": the same users on a coupon already gone (Redis script only, what most claims',
    'of a drop are). The service runs as its own process with fresh embedded Redis and MongoDB-compatible',
    'servers; the load generator, the service and both servers share the machine. The reference is Apollo',
    'Server with the same schema and handler answering the same mutation with a constant (load/bench/reference-server.ts).',
    '',
    '| server | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | timeouts | non-2xx | GraphQL errors | other outcome |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    row('coupon service, claimCoupon, wins', service.wins),
    row('coupon service, claimCoupon, sold out', service.soldOut),
    row('reference Apollo Server, constant resolver', reference),
    '',
    `**Ratio claim/reference (throughput): wins ${(service.wins.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}, sold out ${(service.soldOut.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}.**`,
    '',
    '## Where a claim\'s time goes (instrumented run)',
    '',
    `Same load against a bench-only build (load/bench/instrumented-service.ts) that times each stage; ${breakdown.load.requestsPerSecond.toFixed(0)} req/s,`,
    `p99 ${breakdown.load.latency.p99} ms under instrumentation and profiling. Wall time in ms per claim; stages nest (http contains jwt and`,
    'resolver; resolver contains redis and durable), and include waiting for the event loop under 50 concurrent claims.',
    '',
    '| stage | count | mean | p50 | p99 | what |',
    '|---|---:|---:|---:|---:|---|',
    stageRow('http', stages.http, 'request received to response finished, in the service'),
    stageRow('jwt', stages.jwt, 'HS256 verify (fast-jwt)'),
    stageRow('resolver', stages.resolver, 'ClaimService.claim'),
    stageRow('redis', stages.redis, 'claim script round trip'),
    stageRow('durable', stages.durable, 'waiting for the group commit to acknowledge the issuance'),
    '',
    `Derived mean outside jwt and resolver (body read, Apollo pipeline: cached parse/validate, execution, serialisation, queueing): **${f2(outside)} ms**.`,
    '`durable` also counts writes still waiting after their claim answered SERVICE_UNAVAILABLE at the deadline.',
    `Group commit: ${batches.length} batches, size mean ${f1(mean(batchSizes))} / p50 ${quantile(batchSizes, 0.5)} / max ${Math.max(0, ...batchSizes)}, bulkWrite mean ${f1(mean(batches.map((b) => b.ms)))} ms / p99 ${f1(quantile(batches.map((b) => b.ms), 0.99))} ms.`,
    '',
    `CPU profile of the service process over the same window (${(cpu.totalMs / 1000).toFixed(1)} s sampled, ${(cpu.busyMs / 1000).toFixed(1)} s busy; self time by layer; raw profile in load/results/bench-claims.cpuprofile):`,
    '',
    '| layer | CPU ms | share of busy |',
    '|---|---:|---:|',
    ...cpu.layers.map((l) => `| ${l.layer} | ${l.ms.toFixed(0)} | ${Number.isFinite(l.busyShare) ? `${(l.busyShare * 100).toFixed(1)}%` : '-'} |`),
    '',
    'Hottest functions by self time:',
    '',
    '| function | source | CPU ms |',
    '|---|---|---:|',
    ...cpu.hottest.map((h) => `| \`${h.functionName || '(anonymous)'}\` | ${h.source} | ${h.ms.toFixed(0)} |`),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.mkdirSync(REPORTS_DIR, { recursive: true });
  process.stdout.write(`bench: ${claims} claims, ${connections} connections${args.quick ? ' (quick)' : ''}\n`);
  const service = await benchService(!args.quick);
  for (const [label, m] of [['wins', service.wins], ['sold out', service.soldOut]] as const) {
    if (m) process.stdout.write(`  service (${label}): ${m.requestsPerSecond.toFixed(0)} req/s, p99 ${m.latency.p99} ms, errors ${m.errors + m.graphqlErrors}\n`);
  }
  const reference = await benchReference();
  process.stdout.write(`  reference: ${reference.requestsPerSecond.toFixed(0)} req/s, p99 ${reference.latency.p99} ms, errors ${reference.errors}\n`);
  const ratio = (m: Measured | undefined) => (m ? (m.requestsPerSecond / reference.requestsPerSecond).toFixed(2) : 'not run');
  process.stdout.write(`  ratio claim/reference: wins ${ratio(service.wins)}, sold out ${ratio(service.soldOut)}\n`);
  if (args.quick || !service.wins) return;
  const breakdown = await benchBreakdown();
  const argv = process.argv.slice(2).join(' ');
  const report = render({ wins: service.wins, soldOut: service.soldOut }, reference, breakdown, `npm run bench${argv ? ` -- ${argv}` : ''}`);
  fs.writeFileSync(path.join(REPORTS_DIR, 'bench-latest.md'), report);
  process.stdout.write(`\n${report}\nreport: load/reports/bench-latest.md\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
