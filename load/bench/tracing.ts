/**
 * `npm run bench:tracing`: what tracing costs the most common claim of a drop, one answered
 * SOLD_OUT from the sold-out memory (HTTP server span and GraphQL operation span; no Redis or
 * MongoDB work). Three instances of the service run side by side on one Redis and one MongoDB:
 * tracing off, sampled at 1% (parentbased_traceidratio 0.01) and at 100% (parentbased_always_on),
 * the last two exporting OTLP/HTTP JSON to a sink in this process that accepts and drops. Rounds
 * alternate between the three, so a machine shared with other work shifts all three alike; the
 * report gives each one's median round (claims per second, latency) and the server's CPU time
 * per claim from /proc, which depends less on who else shares the cores.
 *
 * Usage: npm run bench:tracing -- [--claims 5000] [--rounds 3] [--connections 50]
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { startMongoServer, startRedisServer } from '../../src/infra/embedded';
import { createCoupon, startServiceProcess, type ServiceProcess } from '../support/service-process';

const { values: args } = parseArgs({
  options: {
    claims: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
  },
});
const claims = Number(args.claims);
const rounds = Number(args.rounds);
const connections = Number(args.connections);
const RESULTS_DIR = path.join(__dirname, '..', 'results');
const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id sequence } } }';

/** An OTLP/HTTP receiver that reads and drops every export, counting the bytes. */
async function startSink(): Promise<{ url: string; bytes: () => number; close(): Promise<void> }> {
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bytes: () => bytes, close: () => new Promise((r) => server.close(() => r())) };
}

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Round {
  perSecond: number;
  p50: number;
  p99: number;
  cpuMicros: number;
  wrong: number;
}

async function hammer(service: ServiceProcess, couponId: string, tokens: string[]): Promise<Round> {
  let next = 0;
  let wrong = 0;
  const cpuBefore = cpuSeconds(service.pid);
  const began = performance.now();
  let last = began;
  const result = await autocannon({
    url: `${service.url}/graphql`,
    method: 'POST',
    connections,
    amount: tokens.length,
    timeout: 10,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CLAIM, variables: { couponId } }),
    requests: [
      {
        setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } }),
        onResponse: (_status, body) => {
          last = performance.now();
          if (!body.includes('"status":"SOLD_OUT"')) wrong += 1;
        },
      },
    ],
  });
  return {
    perSecond: result.requests.total / ((last - began) / 1000),
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMicros: ((cpuSeconds(service.pid) - cpuBefore) * 1e6) / result.requests.total,
    wrong: wrong + result.errors + result.timeouts + result.non2xx,
  };
}

/** A set-up request, retried while the service is still warming up (SERVICE_UNAVAILABLE). */
async function retried<T>(attempt: () => Promise<T>): Promise<T> {
  for (let left = 10; ; left--) {
    try {
      return await attempt();
    } catch (error) {
      if (left === 0) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function main(): Promise<void> {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const [redis, mongo, sink] = await Promise.all([startRedisServer(), startMongoServer({ database: 'tracing-bench' }), startSink()]);
  const shared = { redisEnv: { REDIS_URL: redis.url }, mongoUri: mongo.url, jwtSecret: randomBytes(32).toString('base64url') };
  const variants: Array<{ name: string; env: Record<string, string> }> = [
    { name: 'off', env: {} },
    { name: 'sampled 1%', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' } },
    { name: 'sampled 100%', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'parentbased_always_on' } },
  ];
  const services: ServiceProcess[] = [];
  try {
    // Lag-based shedding off on all three alike: on a shared machine it would refuse claims for
    // reasons of its own, and the comparison is of what tracing costs a claim.
    const base = { NODE_ENV: 'production', MAX_EVENT_LOOP_LAG_MS: '0' };
    // One after another: three starts at once can outlast the start timeout on a busy machine.
    for (const [i, variant] of variants.entries()) {
      services.push(await startServiceProcess({ env: { ...base, ...variant.env }, logFile: path.join(RESULTS_DIR, `bench-tracing-${i}.log`), shared }));
    }
    // One coupon per instance, sold out by one win, so every measured claim is SOLD_OUT from memory.
    const gone: string[] = [];
    for (const service of services) {
      const id = await retried(() => createCoupon(service, { name: 'Tracing bench (gone)', totalQuantity: 1 }));
      const warm = Array.from({ length: 500 }, (_, i) => service.auth.issue(`warm-${i}`, { expiresInSeconds: 3600 }));
      await hammer(service, id, warm);
      gone.push(id);
    }
    const tokens = Array.from({ length: claims }, (_, i) => services[0]!.auth.issue(`bench-${i}`, { expiresInSeconds: 3600 }));
    const measured: Round[][] = variants.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, service] of services.entries()) {
        const result = await hammer(service, gone[i]!, tokens);
        measured[i]!.push(result);
        process.stdout.write(`round ${round + 1} ${variants[i]!.name}: ${result.perSecond.toFixed(0)} claims/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.cpuMicros.toFixed(0)} µs CPU/claim\n`);
      }
    }
    const medianOf = (list: Round[]) => [...list].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(list.length / 2)]!;
    const off = medianOf(measured[0]!);
    const lines = [
      `Sold-out claims, ${claims} per round, ${rounds} alternating rounds, ${connections} connections; median round of each:`,
      '| tracing | claims/s | vs off | p50 ms | p99 ms | CPU µs/claim | answers not SOLD_OUT |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...variants.map((variant, i) => {
        const m = medianOf(measured[i]!);
        const wrong = measured[i]!.reduce((sum, r) => sum + r.wrong, 0);
        return `| ${variant.name} | ${m.perSecond.toFixed(0)} | ${((m.perSecond / off.perSecond) * 100).toFixed(0)}% | ${m.p50} | ${m.p99} | ${m.cpuMicros.toFixed(0)} | ${wrong} |`;
      }),
      `OTLP bytes received by the sink: ${sink.bytes()}`,
    ];
    process.stdout.write(`\n${lines.join('\n')}\n`);
    fs.writeFileSync(path.join(RESULTS_DIR, 'bench-tracing-latest.md'), `${lines.join('\n')}\n`);
  } finally {
    await Promise.all(services.map((service) => service.stop()));
    await Promise.all([redis.stop(), mongo.stop(), sink.close()]);
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
