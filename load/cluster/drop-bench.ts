/**
 * `npm run bench:cluster`: one drop, run the same way against two set-ups in the same run:
 *   - one service instance on one Redis;
 *   - two service instances on a six-node Redis Cluster (three masters), claims spread over both.
 * Several coupons at once (they land on different shards), users arriving within a couple of
 * seconds as in a real drop (wins), then a wave of late users on the sold-out coupons. Each phase
 * reports throughput and latency; MongoDB is audited for the contract's guarantees afterwards.
 * Report in load/reports/cluster-drop-latest.md.
 *
 * On one machine both set-ups share its cores, so this shows what the cluster costs and that it
 * keeps every guarantee, not how it scales: more machines are what a cluster adds.
 *
 * Usage: npm run bench:cluster -- [--coupons 3] [--stock 200] [--users 1500] [--late 3000] [--seconds 2]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { redisTargetEnv } from '../../src/config';
import { startMongoServer, startRedisServer, type EmbeddedServer } from '../../src/infra/embedded';
import { startRedisCluster } from '../../src/infra/redis-topologies';
import { auditIssuances } from '../support/mongo-audit';
import { countBy, evenArrivals, latencyOf, percentiles, runOpenModel, type ClaimRecord } from '../support/open-model';
import { createCoupon, startServiceProcess, type ServiceProcess } from '../support/service-process';

const { values: args } = parseArgs({
  options: {
    coupons: { type: 'string', default: '3' },
    stock: { type: 'string', default: '200' },
    users: { type: 'string', default: '1500' },
    late: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '2' },
  },
});
const coupons = Number(args.coupons);
const stock = Number(args.stock);
const users = Number(args.users);
const late = Number(args.late);
const seconds = Number(args.seconds);
const RESULTS = path.join(__dirname, '..', 'results');
const REPORT = path.join(__dirname, '..', 'reports', 'cluster-drop-latest.md');

interface PhaseResult {
  claims: number;
  wallSeconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  after3s: number;
  outcomes: Record<string, number>;
}

interface SetupResult {
  name: string;
  wins: PhaseResult;
  soldOut: PhaseResult;
  issued: number;
  guaranteesHold: boolean;
}

function summarise(records: ClaimRecord[]): PhaseResult {
  const latencies = records.map(latencyOf).filter((ms): ms is number => ms !== null);
  const p = percentiles(latencies);
  const wall = (Math.max(...records.map((r) => r.answered ?? r.sent)) - Math.min(...records.map((r) => r.sent))) / 1000;
  return {
    claims: records.length,
    wallSeconds: wall,
    perSecond: records.length / wall,
    p50: p.p50,
    p99: p.p99,
    after3s: latencies.filter((ms) => ms > 3000).length,
    outcomes: countBy(records, (r) => r.outcome),
  };
}

/** Arrivals of one phase spread over the instances, round robin, and all coupons. */
async function phase(instances: ServiceProcess[], couponIds: string[], count: number, prefix: string): Promise<PhaseResult> {
  const runs: Array<Promise<ClaimRecord[]>> = [];
  const lanes = instances.length * couponIds.length;
  instances.forEach((instance, i) =>
    couponIds.forEach((couponId, c) =>
      runs.push(
        runOpenModel({
          url: instance.url,
          couponId,
          auth: instance.auth,
          arrivals: evenArrivals(Math.round(count / lanes), seconds),
          connections: Math.max(10, Math.round(150 / lanes)),
          userPrefix: `${prefix}-${c}`,
          // Same user ids on every instance of a coupon: a user may reach either instance.
          ...(i > 0 ? { userPrefix: `${prefix}-${c}-i${i}` } : {}),
        }),
      ),
    ),
  );
  return summarise((await Promise.all(runs)).flat());
}

async function runSetup(name: string, instances: ServiceProcess[], mongoUri: string): Promise<SetupResult> {
  const couponIds: string[] = [];
  for (let c = 0; c < coupons; c++) couponIds.push(await createCoupon(instances[0]!, { name: `${name} ${c}`, totalQuantity: stock }));
  // Warm: code compiled and connections open on every instance before the drop.
  const warmId = await createCoupon(instances[0]!, { name: `${name} warm-up`, totalQuantity: 1_000_000 });
  await Promise.all(instances.map((instance, i) => runOpenModel({ url: instance.url, couponId: warmId, auth: instance.auth, arrivals: evenArrivals(300, 1), userPrefix: `warm-${i}` })));
  const wins = await phase(instances, couponIds, users, `${name}-drop`);
  const soldOut = await phase(instances, couponIds, late, `${name}-late`);
  const audits = await Promise.all(couponIds.map((id) => auditIssuances(mongoUri, id, stock)));
  return { name, wins, soldOut, issued: audits.reduce((sum, a) => sum + a.issued, 0), guaranteesHold: audits.every((a) => a.guaranteesHold) };
}

function report(results: SetupResult[]): string {
  const row = (r: SetupResult, p: PhaseResult, what: string) =>
    `| ${r.name} | ${what} | ${p.claims} | ${p.perSecond.toFixed(0)} | ${p.p50.toFixed(0)} | ${p.p99.toFixed(0)} | ${p.after3s} | ${Object.entries(p.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')} |`;
  return [
    '# A drop on one Redis and on a Redis Cluster',
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${process.env.npm_config_user_agent ? '' : ''}Node ${process.version}. Command: \`npm run bench:cluster -- --coupons ${coupons} --stock ${stock} --users ${users} --late ${late} --seconds ${seconds}\``,
    '',
    `${coupons} coupons of ${stock}; ${users} users arrive over ${seconds} s spread over every coupon and instance (the drop, mostly wins at first), then ${late} late users over ${seconds} s (sold out).`,
    'Everything shares one machine: the load generator, the service instances, the Redis servers and the embedded MongoDB-compatible server.',
    '',
    '| set-up | phase | claims | answered/s | p50 ms | p99 ms | after 3 s | outcomes |',
    '|---|---|---:|---:|---:|---:|---:|---|',
    ...results.flatMap((r) => [row(r, r.wins, 'drop'), row(r, r.soldOut, 'late (sold out)')]),
    '',
    ...results.map((r) => `${r.name}: ${r.issued} issued in MongoDB of ${coupons * stock}; guarantees (no oversell, one per user, unique sequences) ${r.guaranteesHold ? 'hold' : 'BROKEN'}.`),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  fs.mkdirSync(RESULTS, { recursive: true });
  const jwtSecret = randomBytes(32).toString('base64url');
  const mongo = await startMongoServer({ database: 'load' });
  const servers: Array<EmbeddedServer | { stop(): Promise<void> }> = [mongo];
  const instances: ServiceProcess[] = [];
  try {
    const results: SetupResult[] = [];
    {
      const redis = await startRedisServer();
      servers.push(redis);
      const mongoUri = mongo.url.replace(/\/[^/?]*(\?|$)/, '/single$1');
      const one = await startServiceProcess({ logFile: path.join(RESULTS, 'cluster-bench-single.log'), shared: { redisEnv: { REDIS_URL: redis.url }, mongoUri, jwtSecret } });
      instances.push(one);
      results.push(await runSetup('1 instance, 1 Redis', [one], mongoUri));
      await one.stop();
    }
    {
      const cluster = await startRedisCluster();
      servers.push(cluster);
      const mongoUri = mongo.url.replace(/\/[^/?]*(\?|$)/, '/cluster$1');
      const shared = { redisEnv: redisTargetEnv(cluster.target), mongoUri, jwtSecret };
      const two = await Promise.all([0, 1].map((i) => startServiceProcess({ logFile: path.join(RESULTS, `cluster-bench-${i}.log`), shared })));
      instances.push(...two);
      results.push(await runSetup('2 instances, Redis Cluster (3 masters)', two, mongoUri));
    }
    const text = report(results);
    fs.writeFileSync(REPORT, text);
    process.stdout.write(`${text}\nreport: ${path.relative(process.cwd(), REPORT)}\n`);
    if (!results.every((r) => r.guaranteesHold)) process.exitCode = 1;
  } finally {
    await Promise.all(instances.map((instance) => instance.stop().catch(() => undefined)));
    await Promise.all(servers.map((server) => server.stop().catch(() => undefined)));
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench:cluster failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
