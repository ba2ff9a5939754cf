/**
 * `npm run bench`: claimCoupon throughput and latency with distinct users over 50 connections,
 * against the real service (its own process, fresh embedded servers) and, in the same run and
 * alternating round by round, against two yardsticks: Apollo Server with the same schema and
 * handler answering the same mutation with a constant, and plain node:http answering a constant
 * JSON (the floor of what Node allows). Two claim paths: "wins" (every claim
 * ISSUED: Redis script and MongoDB group commit) and "sold out" (answered from the sold-out memory, no Redis command: what most
 * claims of a drop are). Then a bench-only instrumented build of the service says where a
 * claim's time goes: wall time per stage and CPU time per layer. Report in
 * load/reports/bench-latest.md.
 *
 * Usage: npm run bench -- [--claims 20000] [--wins 3000] [--rounds 3] [--connections 50] [--workers 1] [--quick]
 *   --claims   sold-out claims per round (the reference answers as many)
 *   --wins     winning claims, measured once (each needs a new user and a MongoDB write)
 *   --workers  the service's WORKERS
 *   --node-options  the service's NODE_OPTIONS, e.g. '--max-semi-space-size=32'
 *   --env NAME=value  more service configuration (repeatable), e.g. GROUP_COMMIT_MAX_IN_FLIGHT=1
 *   --quick    sold out against the yardsticks only, no report file: for trying a change
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Authenticator } from '../../src/access/auth';
import { createCoupon, ROOT, startServiceProcess, type ServiceProcess } from '../support/service-process';
import { cpuSecondsBetween, cpuSecondsOfTree } from '../support/process-cpu';
import { cpuByLayer, type CpuProfile } from './profile';

const LOAD_DIR = path.join(__dirname, '..');
const RESULTS_DIR = path.join(LOAD_DIR, 'results');
/** Where the bench compiles what it runs (load/bench/tsconfig.build.json), relative to the repository root. */
const BUILD_DIR = 'load/results/build';
const REPORTS_DIR = path.join(LOAD_DIR, 'reports');
const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id sequence } } }';
/** Large enough that every claim in the run is a win: the full path, Redis script and MongoDB write. */
const STOCK = 10_000_000;
const WARMUP_CLAIMS = 500;

const { values: args } = parseArgs({
  options: {
    claims: { type: 'string', default: '20000' },
    wins: { type: 'string', default: '3000' },
    connections: { type: 'string', default: '50' },
    quick: { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
    'node-options': { type: 'string', default: '' },
    env: { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string', default: '3' },
  },
});
const claims = Number(args.claims);
const connections = Number(args.connections);
const rounds = Number(args.rounds);
const wins = Number(args.wins);
/** Extra service configuration, `--env NAME=value` (repeatable). */
const serviceEnv = Object.fromEntries(args.env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));

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
  /** CPU time of the server's processes per request, in µs (when its pid was given). */
  cpuMicrosPerRequest?: number;
  /** The part of it spent in the kernel (system time: the sockets' reads and writes, epoll), in µs. */
  kernelMicrosPerRequest?: number;
}

/**
 * Compiles the service, the reference and the instrumented build to JavaScript, as `npm run
 * build` does for production: both sides run without tsx's on-the-fly transform, whose added
 * helpers (esbuild's keepNames) run in the service's own code but not in Apollo's.
 */
function buildForBench(): void {
  const steps = [
    [require.resolve('typescript/bin/tsc'), '-p', 'load/bench/tsconfig.build.json'],
    ['scripts/copy-assets.js', BUILD_DIR],
  ];
  for (const step of steps) {
    const built = spawnSync(process.execPath, step, { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) throw new Error(`bench build failed: node ${step.join(' ')}`);
  }
}

/** How both sides run: compiled, and in production mode (graphql-js and Apollo read NODE_ENV too). */
const PRODUCTION_ENV = { NODE_ENV: 'production' };

/**
 * Production counts every claim against the claim limits and every request against the request
 * budgets (src/access/); the bench's one machine is every client, so both are on here and out of
 * reach: the counting is measured, no refusal happens. `--env NAME=value` overrides them.
 */
const LIMITS_OUT_OF_REACH = {
  CLAIM_RATE_PER_USER: '1000000',
  CLAIM_RATE_PER_IP: '1000000000',
  READ_COST_PER_IP: '1000000000',
  READ_COST_PER_USER: '1000000000',
  NEW_DOCUMENTS_PER_IP: '1000000',
};

/** Signs one token per distinct user up front, so the load generator does no crypto while measuring. */
function tokensFor(secret: string, count: number, prefix: string): string[] {
  const auth = new Authenticator(secret);
  return Array.from({ length: count }, (_, i) => auth.issue(`${prefix}-${i}`, { expiresInSeconds: 3600 }));
}

async function hammer(url: string, couponId: string, tokens: string[], expected: 'ISSUED' | 'SOLD_OUT', serverPid?: number): Promise<Measured> {
  const cpuBefore = serverPid === undefined ? undefined : cpuSecondsOfTree(serverPid);
  let next = 0;
  let graphqlErrors = 0;
  let unexpected = 0;
  // autocannon's own duration is only checked on its 1 s ticker, which would quantise req/s.
  const began = performance.now();
  let lastAnswer = began;
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
          lastAnswer = performance.now();
          if (body.includes('"errors"')) graphqlErrors += 1;
          else if (!body.includes(`"status":"${expected}"`)) unexpected += 1;
        },
      },
    ],
  });
  const seconds = (lastAnswer - began) / 1000;
  const cpuAfter = serverPid === undefined ? undefined : cpuSecondsOfTree(serverPid);
  const perRequest = (seconds: number) => (seconds * 1e6) / result.requests.total;
  return {
    requestsPerSecond: result.requests.total / seconds,
    latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    graphqlErrors,
    unexpected,
    seconds,
    cpuMicrosPerRequest: cpuBefore && cpuAfter && perRequest(cpuSecondsBetween(cpuBefore, cpuAfter).total),
    kernelMicrosPerRequest: cpuBefore && cpuAfter && perRequest(cpuSecondsBetween(cpuBefore, cpuAfter).kernel),
  };
}

interface Target {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Waits (at most 60 s) until the process tree has used under 5% of a core for two quarter-seconds running. */
async function quiet(pid: number): Promise<void> {
  const total = () => {
    const cpu = cpuSecondsOfTree(pid);
    return cpu.user + cpu.system;
  };
  let last = total();
  let calm = 0;
  for (const started = performance.now(); calm < 2 && performance.now() - started < 60_000; ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = total();
    calm = now - last < 0.0125 ? calm + 1 : 0;
    last = now;
  }
}

/**
 * A yardstick as its own process, like the service: the reference Apollo server
 * (reference-server.ts) or the plain node:http floor (floor-server.ts).
 */
async function startYardstick(name: 'reference' | 'floor'): Promise<Target> {
  const log = fs.openSync(path.join(RESULTS_DIR, `bench-${name}.log`), 'w');
  const child = spawn(process.execPath, [`${BUILD_DIR}/load/bench/${name}-server.js`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', log],
    env: { ...process.env, ...PRODUCTION_ENV },
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /(?:REFERENCE|FLOOR)_PORT=(\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const byThroughput = (a: Measured, b: Measured) => a.requestsPerSecond - b.requestsPerSecond;
const median = (rounds: Measured[]) => [...rounds].sort(byThroughput)[Math.floor(rounds.length / 2)]!;

interface Comparison {
  wins?: Measured;
  soldOut: Measured[];
  /** Apollo Server answering a constant (reference-server.ts), each round right after the claim's. */
  reference: Measured[];
  /** Plain node:http answering a constant (floor-server.ts), each round right after Apollo's. */
  floor: Measured[];
}

/** The claim's throughput over a yardstick's, round by round (both measured back to back), and their median. */
function ratios(claim: Measured[], yardstick: Measured[]): { perRound: number[]; median: number } {
  const perRound = claim.map((m, i) => m.requestsPerSecond / yardstick[i]!.requestsPerSecond);
  const sorted = [...perRound].sort((a, b) => a - b);
  return { perRound, median: sorted[Math.floor(sorted.length / 2)]! };
}

/**
 * Wins once (every claim ISSUED: Redis script and MongoDB write; each round would need fresh users
 * and a larger collection), then rounds that alternate the sold-out claim (answered from memory)
 * with the two yardsticks, so all three see the same machine: on shared cores one run alone swings
 * by a third. Every round has users of its own (new tokens), as a drop has: nothing the service
 * remembers of one user's token helps it with the next round.
 */
async function compareWithReference(withWins: boolean): Promise<Comparison> {
  const [service, reference, floor] = await Promise.all([
    startServiceProcess({
      entry: `${BUILD_DIR}/src/main.js`,
      logFile: path.join(RESULTS_DIR, 'bench-service.log'),
      env: { ...PRODUCTION_ENV, ...LIMITS_OUT_OF_REACH, WORKERS: args.workers, NODE_OPTIONS: args['node-options'], ...serviceEnv },
    }),
    startYardstick('reference'),
    startYardstick('floor'),
  ]);
  try {
    const couponId = await createCoupon(service, { name: 'Bench', totalQuantity: STOCK });
    const [warm, winners] = [tokensFor(service.jwtSecret, WARMUP_CLAIMS, 'warm'), tokensFor(service.jwtSecret, wins, 'win')];
    const roundTokens = (round: number | 'unmeasured') => tokensFor(service.jwtSecret, claims, `bench-${round}`);
    await hammer(service.url, couponId, warm, 'ISSUED');
    const winsRun = withWins ? await hammer(service.url, couponId, winners, 'ISSUED', service.pid) : undefined;
    // The wins leave work behind (group commit backlog, their events): not the sold-out claims' to pay.
    if (winsRun) await quiet(service.pid);
    const goneId = await createCoupon(service, { name: 'Bench (gone)', totalQuantity: 1 });
    await hammer(service.url, goneId, warm.slice(0, 1), 'ISSUED');
    // Same headers and body as the service gets; the yardsticks ignore the token.
    const referenceId = '650000000000000000000000';
    await hammer(reference.url, referenceId, warm, 'ISSUED');
    await hammer(floor.url, referenceId, warm, 'ISSUED');
    // One full unmeasured round each first: the first round after start ran 10-20% slower on
    // all sides (code still being optimised), and would otherwise weigh in the median.
    const unmeasured = roundTokens('unmeasured');
    await hammer(service.url, goneId, unmeasured, 'SOLD_OUT');
    await hammer(reference.url, referenceId, unmeasured, 'ISSUED');
    await hammer(floor.url, referenceId, unmeasured, 'ISSUED');
    const soldOut: Measured[] = [];
    const referenceRounds: Measured[] = [];
    const floorRounds: Measured[] = [];
    for (let round = 0; round < rounds; round++) {
      const tokens = roundTokens(round);
      soldOut.push(await hammer(service.url, goneId, tokens, 'SOLD_OUT', service.pid));
      referenceRounds.push(await hammer(reference.url, referenceId, tokens, 'ISSUED', reference.pid));
      floorRounds.push(await hammer(floor.url, referenceId, tokens, 'ISSUED', floor.pid));
      const [claim, apollo, node] = [soldOut[round]!, referenceRounds[round]!, floorRounds[round]!];
      const show = (m: Measured) => `${m.requestsPerSecond.toFixed(0)} req/s (${m.cpuMicrosPerRequest!.toFixed(0)} µs CPU each, ${m.kernelMicrosPerRequest!.toFixed(0)} in the kernel)`;
      process.stdout.write(
        `  round ${round + 1}: sold out ${show(claim)}, Apollo no-op ${show(apollo)}, node:http floor ${show(node)}; ratios ${(claim.requestsPerSecond / apollo.requestsPerSecond).toFixed(2)} x Apollo, ${(claim.requestsPerSecond / node.requestsPerSecond).toFixed(2)} of floor\n`,
      );
    }
    return { wins: winsRun, soldOut, reference: referenceRounds, floor: floorRounds };
  } finally {
    await Promise.all([service.stop(), reference.stop(), floor.stop()]);
  }
}

type Stage = 'http' | 'jwt' | 'resolver' | 'redis' | 'durable';
/** One measured load against the instrumented build: stage timings and a CPU profile. */
interface Phase {
  stages: Record<Stage, number[]>;
  batches: Array<{ size: number; ms: number }>;
  profile: CpuProfile;
  load: Measured;
}
interface Breakdown {
  wins: Phase;
  soldOut: Phase;
}

function ask(service: ServiceProcess, message: object): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    service.child.once('message', (reply) => resolve(reply as Record<string, unknown>));
    service.child.send(message);
  });
}

async function measurePhase(service: ServiceProcess, name: string, run: () => Promise<Measured>): Promise<Phase> {
  await ask(service, { cmd: 'start' });
  const load = await run();
  const profileFile = path.join(RESULTS_DIR, `bench-${name}.cpuprofile`);
  const reply = await ask(service, { cmd: 'stop', profileFile });
  return {
    stages: reply.stages as Phase['stages'],
    batches: reply.batches as Phase['batches'],
    profile: JSON.parse(fs.readFileSync(profileFile, 'utf8')) as CpuProfile,
    load,
  };
}

async function benchBreakdown(): Promise<Breakdown> {
  const service = await startServiceProcess({
    entry: `${BUILD_DIR}/load/bench/instrumented-service.js`,
    ipc: true,
    logFile: path.join(RESULTS_DIR, 'bench-instrumented.log'),
    env: { ...PRODUCTION_ENV, ...LIMITS_OUT_OF_REACH, ...serviceEnv },
  });
  try {
    const couponId = await createCoupon(service, { name: 'Bench (instrumented)', totalQuantity: STOCK });
    const goneId = await createCoupon(service, { name: 'Bench (instrumented, gone)', totalQuantity: 1 });
    const [warm, winners, measured] = [tokensFor(service.jwtSecret, WARMUP_CLAIMS, 'warm'), tokensFor(service.jwtSecret, wins, 'win'), tokensFor(service.jwtSecret, claims, 'bench')];
    await hammer(service.url, couponId, warm, 'ISSUED');
    await hammer(service.url, goneId, warm.slice(0, 1), 'ISSUED');
    return {
      wins: await measurePhase(service, 'wins', () => hammer(service.url, couponId, winners, 'ISSUED')),
      soldOut: await measurePhase(service, 'sold-out', () => hammer(service.url, goneId, measured, 'SOLD_OUT')),
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

function render(comparison: Comparison & { wins: Measured }, breakdown: Breakdown, command: string): string {
  const row = (label: string, m: Measured) =>
    `| ${label} | ${m.requestsPerSecond.toFixed(0)} | ${m.latency.p50} | ${m.latency.p90} | ${m.latency.p99} | ${m.latency.max} | ${m.errors} | ${m.timeouts} | ${m.non2xx} | ${m.graphqlErrors} | ${m.unexpected} |`;
  const reference = median(comparison.reference);
  const floor = median(comparison.floor);
  const soldOut = median(comparison.soldOut);
  const toApollo = ratios(comparison.soldOut, comparison.reference);
  const toFloor = ratios(comparison.soldOut, comparison.floor);
  const cpuRange = (rounds: Measured[]) => {
    const range = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return `${sorted[0]!.toFixed(0)}–${sorted[sorted.length - 1]!.toFixed(0)} µs (median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)})`;
    };
    const kernel = rounds.map((m) => m.kernelMicrosPerRequest ?? NaN);
    return `${range(rounds.map((m) => m.cpuMicrosPerRequest ?? NaN))}, of it in the kernel ${range(kernel)}`;
  };
  const perRound = (m: Measured) => `${m.requestsPerSecond.toFixed(0)} (${m.cpuMicrosPerRequest?.toFixed(0) ?? '?'})`;
  const stageRow = (label: string, stage: Stage, note: string) => {
    const cells = [breakdown.wins, breakdown.soldOut].map((phase) => {
      const values = phase.stages[stage];
      return values.length ? `${f2(mean(values))} | ${f2(quantile(values, 0.99))}` : '- | -';
    });
    return `| ${label} | ${cells.join(' | ')} | ${note} |`;
  };
  const outside = (phase: Phase) => mean(phase.stages.http) - mean(phase.stages.jwt) - mean(phase.stages.resolver);
  const { batches } = breakdown.wins;
  const batchSizes = batches.map((b) => b.size);
  const cpuTable = (title: string, phase: Phase, file: string) => {
    const cpu = cpuByLayer(phase.profile);
    return [
      `${title} (${phase.load.requestsPerSecond.toFixed(0)} req/s under profiling; ${(cpu.busyMs / 1000).toFixed(1)} s busy of ${(cpu.totalMs / 1000).toFixed(1)} s sampled, ${((cpu.busyMs * 1000) / phase.load.requests).toFixed(0)} µs of CPU per claim; raw profile in load/results/${file}):`,
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
    ];
  };
  return [
    '# Claim benchmark',
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length} cores, Node ${process.version}, service WORKERS=${args.workers}${args.env.length ? ` ${args.env.join(' ')}` : ''}. Command: \`${command}\``,
    '',
    `Distinct users over ${connections} keep-alive connections (autocannon), after ${WARMUP_CLAIMS} warm-up claims. "wins": ${wins} claims on a`,
    'coupon large enough that every claim is ISSUED (Redis script and MongoDB group commit every time);',
    `"sold out": ${claims} claims on a coupon already gone (answered from memory once every winner is in MongoDB, no Redis command: what most claims of a drop are).`,
    'The service runs as its own process with fresh embedded Redis and MongoDB-compatible servers; the',
    'load generator, the service and both servers share the machine. Two yardsticks: Apollo Server with',
    'the same schema and HTTP handler answering the same mutation with a constant (load/bench/reference-server.ts),',
    'and plain node:http reading and parsing the same body and answering a constant JSON (load/bench/floor-server.ts): the floor.',
    'All run as production does: compiled JavaScript (load/bench/tsconfig.build.json), NODE_ENV=production; the service counts every claim and request against its limits and budgets, set out of reach (one machine is every client).',
    `After one unmeasured round each, they are measured in ${rounds} rounds, claim then Apollo then floor, each round with new users; the rows show each one's median round.`,
    '',
    '| server | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | timeouts | non-2xx | GraphQL errors | other outcome |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    row('coupon service, claimCoupon, sold out', soldOut),
    row('reference Apollo Server, constant resolver', reference),
    row('floor: plain node:http, constant JSON', floor),
    row('coupon service, claimCoupon, wins', comparison.wins),
    '',
    `Rounds, sold out / Apollo / floor, req/s (µs of server CPU per request): ${comparison.soldOut
      .map((m, i) => `${perRound(m)} / ${perRound(comparison.reference[i]!)} / ${perRound(comparison.floor[i]!)}`)
      .join('; ')}.`,
    '',
    `**Sold-out claim throughput over Apollo's no-op: ${f2(toApollo.median)} (rounds ${toApollo.perRound.map(f2).join(', ')}); over the node:http floor: ${f2(toFloor.median)} (rounds ${toFloor.perRound.map(f2).join(', ')}).**`,
    '',
    `Server CPU per request: sold-out claim ${cpuRange(comparison.soldOut)}; Apollo no-op ${cpuRange(comparison.reference)}; node:http floor ${cpuRange(comparison.floor)}.`,
    "The kernel part is system time from /proc (the sockets' reads and writes, epoll); the rest is user space. A CPU profile cannot split them: it can put user-space time on `writev` (docs/load-testing.md).",
    `Wins over Apollo's no-op: ${(comparison.wins.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}.`,
    '',
    "## Where a claim's time goes (instrumented run)",
    '',
    'The same loads against a bench-only build (load/bench/instrumented-service.ts) that times each stage, in one',
    'process (WORKERS does not apply), with the same other settings. Wall time in ms per claim (mean and p99); stages',
    `nest (http contains jwt and resolver; resolver contains redis and durable) and include waiting for the event loop under ${connections} concurrent claims.`,
    '',
    '| stage | wins mean | wins p99 | sold out mean | sold out p99 | what |',
    '|---|---:|---:|---:|---:|---|',
    stageRow('http', 'http', 'request received to response finished, in the service'),
    stageRow('jwt', 'jwt', 'HS256 verify (@node-rs/jsonwebtoken)'),
    stageRow('resolver', 'resolver', 'ClaimService.claim'),
    stageRow('redis', 'redis', 'claim script round trip'),
    stageRow('durable', 'durable', 'waiting for the group commit to acknowledge the issuance'),
    '',
    `Mean outside jwt and resolver (body read, the GraphQL layer: the compiled document or Apollo's pipeline, serialisation, queueing): wins **${f2(outside(breakdown.wins))} ms**, sold out **${f2(outside(breakdown.soldOut))} ms**.`,
    '`durable` also counts writes still waiting after their claim answered SERVICE_UNAVAILABLE at the deadline.',
    `Group commit (wins): ${batches.length} batches, size mean ${f1(mean(batchSizes))} / p50 ${quantile(batchSizes, 0.5)} / max ${Math.max(0, ...batchSizes)}, bulkWrite mean ${f1(mean(batches.map((b) => b.ms)))} ms / p99 ${f1(quantile(batches.map((b) => b.ms), 0.99))} ms.`,
    '',
    '## CPU of the service process by layer (self time)',
    '',
    ...cpuTable('Sold out', breakdown.soldOut, 'bench-sold-out.cpuprofile'),
    ...cpuTable('Wins', breakdown.wins, 'bench-wins.cpuprofile'),
  ].join('\n');
}

async function main(): Promise<void> {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.mkdirSync(REPORTS_DIR, { recursive: true });
  process.stdout.write(`bench: ${claims} sold-out claims x ${rounds} rounds, ${args.quick ? 'no' : wins} wins, ${connections} connections, WORKERS=${args.workers}\n`);
  buildForBench();
  const comparison = await compareWithReference(!args.quick);
  const soldOut = median(comparison.soldOut);
  const reference = median(comparison.reference);
  const floor = median(comparison.floor);
  const describe = (m: Measured) => `${m.requestsPerSecond.toFixed(0)} req/s, p99 ${m.latency.p99} ms, errors ${m.errors + m.timeouts + m.non2xx + m.graphqlErrors + m.unexpected}`;
  process.stdout.write(`  sold out (median): ${describe(soldOut)}\n  Apollo no-op (median): ${describe(reference)}\n  node:http floor (median): ${describe(floor)}\n`);
  if (comparison.wins) process.stdout.write(`  wins: ${describe(comparison.wins)}\n`);
  const toApollo = ratios(comparison.soldOut, comparison.reference);
  const toFloor = ratios(comparison.soldOut, comparison.floor);
  process.stdout.write(`  sold out over Apollo no-op: ${toApollo.median.toFixed(2)} (rounds ${toApollo.perRound.map((r) => r.toFixed(2)).join(', ')})\n`);
  process.stdout.write(`  sold out over node:http floor: ${toFloor.median.toFixed(2)} (rounds ${toFloor.perRound.map((r) => r.toFixed(2)).join(', ')})\n`);
  if (!comparison.wins) return;
  const breakdown = await benchBreakdown();
  const argv = process.argv.slice(2).join(' ');
  const report = render({ ...comparison, wins: comparison.wins }, breakdown, `npm run bench${argv ? ` -- ${argv}` : ''}`);
  fs.writeFileSync(path.join(REPORTS_DIR, 'bench-latest.md'), report);
  process.stdout.write(`\n${report}\nreport: load/reports/bench-latest.md\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
