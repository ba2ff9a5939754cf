/**
 * `npx tsx load/capacity/redis-cost.ts [--wins 10000] [--sold-out 50000]`: what one claim costs
 * Redis itself, read from Redis's own accounting (INFO commandstats: calls and µs of Redis CPU per
 * call), on a private redis-server. The figures for docs/capacity.md: claim script per win and per
 * sold-out claim, the confirmation per winner, and the rate limiter's counts per claim (and, for
 * comparison, the counts as rate-limiter-flexible's Redis store made them before). Redis runs
 * one command at a time, so 1,000,000 / (µs per claim) is one shard's ceiling for that claim.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../src/infra/embedded';
import { claimArgs, confirmArgs, couponKeys, defineCouponScripts, loadArgs } from '../../src/redis/scripts';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { ClaimRateLimiter } from '../../src/access/rate-limiter';

const { values: args } = parseArgs({ options: { wins: { type: 'string', default: '10000' }, 'sold-out': { type: 'string', default: '50000' } } });
const wins = Number(args.wins);
const soldOut = Number(args['sold-out']);
const PIPELINE = 200;

interface CommandCost {
  calls: number;
  usecPerCall: number;
}

async function commandStats(redis: Redis): Promise<Record<string, CommandCost>> {
  const text = await redis.info('commandstats');
  const stats: Record<string, CommandCost> = {};
  for (const line of text.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(line.trim());
    if (match) stats[match[1]!] = { calls: Number(match[2]), usecPerCall: Number(match[3]) };
  }
  return stats;
}

/**
 * Redis µs per unit of work over one phase: from commandstats (the commands' own time), and the
 * redis-server process's CPU from /proc (everything: reading, parsing, replying; at 10 ms ticks). A script's commands are counted in commandstats both
 * inside the script's own time and on their own: when scripts ran, only the scripts are summed.
 */
/** CPU seconds the redis-server process has used (user and system), from /proc: its I/O and parsing included. */
function processCpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function phase(redis: Redis, units: number, run: () => Promise<void>): Promise<{ usPerUnit: number; commandsPerUnit: number; processUsPerUnit: number; detail: string }> {
  await redis.config('RESETSTAT');
  const cpuBefore = processCpuSeconds(redisPid);
  await run();
  const processUsPerUnit = ((processCpuSeconds(redisPid) - cpuBefore) * 1e6) / units;
  const stats = await commandStats(redis);
  for (const name of Object.keys(stats)) if (name.startsWith('config') || name === 'info') delete stats[name];
  const scripts = Object.keys(stats).filter((name) => name.startsWith('eval'));
  const counted = scripts.length > 0 ? scripts.map((name) => stats[name]!) : Object.values(stats);
  const total = counted.reduce((sum, s) => sum + s.calls * s.usecPerCall, 0);
  const calls = counted.reduce((sum, s) => sum + s.calls, 0);
  const detail = Object.entries(stats)
    .map(([name, s]) => `${name} ${s.calls} x ${s.usecPerCall.toFixed(2)} µs`)
    .join(', ');
  return { usPerUnit: total / units, commandsPerUnit: calls / units, processUsPerUnit, detail };
}

async function inBatches(count: number, send: (i: number, pipeline: ReturnType<Redis['pipeline']>) => void, redis: Redis): Promise<void> {
  for (let start = 0; start < count; start += PIPELINE) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(count, start + PIPELINE); i++) send(i, pipeline);
    await pipeline.exec();
  }
}

let redisPid = 0;

async function main(): Promise<void> {
  const server = await startRedisServer();
  redisPid = server.pid;
  const redis = new Redis(server.url);
  defineCouponScripts(redis);
  try {
    const keys = couponKeys(randomBytes(12).toString('hex'));
    await redis.couponLoad(...loadArgs(keys, { totalQuantity: wins, startsAt: new Date(0), endsAt: null }, 0, []));
    const issuanceId = (i: number) => i.toString(16).padStart(24, '0');

    const win = await phase(redis, wins, () =>
      inBatches(wins, (i, p) => void (p as unknown as Redis).couponClaim(...claimArgs(keys, `winner-${i}`, issuanceId(i))), redis),
    );
    // The group commit confirms each batch of winners in one script call (batches of 500 at most).
    const confirm = await phase(redis, wins, async () => {
      for (let start = 0; start < wins; start += 500) {
        const batch = Array.from({ length: Math.min(500, wins - start) }, (_, k) => ({ userId: `winner-${start + k}`, issuanceId: issuanceId(start + k) }));
        await redis.couponConfirm(...confirmArgs(keys, batch));
      }
    });
    const late = await phase(redis, soldOut, () =>
      inBatches(soldOut, (i, p) => void (p as unknown as Redis).couponClaim(...claimArgs(keys, `late-${i}`, issuanceId(wins + i))), redis),
    );
    // As src/composition/connections.ts makes the limiter's client: auto-pipelined.
    const limiterRedis = new Redis(server.url, { enableAutoPipelining: true });
    await new Promise((ready) => limiterRedis.once('ready', ready));
    const limiter = new ClaimRateLimiter(limiterRedis, { perUser: 10, perIp: 300 });
    const limits = await phase(redis, soldOut, async () => {
      for (let start = 0; start < soldOut; start += PIPELINE) {
        await Promise.all(
          Array.from({ length: Math.min(PIPELINE, soldOut - start) }, (_, k) =>
            limiter.consume({ userId: `user-${start + k}`, clientIp: `10.${(start + k) >> 16 & 255}.${(start + k) >> 8 & 255}.${(start + k) & 255}` }).catch(() => undefined),
          ),
        );
      }
    });
    // The layout this service used before (rate-limiter-flexible's Redis store: a Lua script per
    // count), measured in the same run for comparison.
    // Its client was not auto-pipelined: the library defines its script lazily, which breaks that.
    const previousRedis = new Redis(server.url);
    await new Promise((ready) => previousRedis.once('ready', ready));
    const previous = [
      new RateLimiterRedis({ storeClient: previousRedis, keyPrefix: 'ratelimit:previous:user', points: 10, duration: 1 }),
      new RateLimiterRedis({ storeClient: previousRedis, keyPrefix: 'ratelimit:previous:ip', points: 300, duration: 1 }),
    ];
    const previousLimits = await phase(redis, soldOut, async () => {
      for (let start = 0; start < soldOut; start += PIPELINE) {
        await Promise.all(
          Array.from({ length: Math.min(PIPELINE, soldOut - start) }, (_, k) => {
            const i = start + k;
            return Promise.allSettled([previous[0]!.consume(`user-${i}`), previous[1]!.consume(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)]);
          }),
        );
      }
    });
    limiterRedis.disconnect();
    previousRedis.disconnect();

    const row = (what: string, p: { usPerUnit: number; commandsPerUnit: number; processUsPerUnit: number; detail: string }) =>
      `| ${what} | ${p.commandsPerUnit.toFixed(2)} | ${p.usPerUnit.toFixed(2)} | ${p.processUsPerUnit.toFixed(1)} | ${Math.floor(1e6 / p.usPerUnit).toLocaleString('en-US')} | ${p.detail} |`;
    process.stdout.write(
      [
        `Redis ${(await redis.info('server')).match(/redis_version:(\S+)/)?.[1]}, ${wins} wins, ${soldOut} sold-out claims, pipelines of ${PIPELINE}:`,
        '',
        '| per claim | commands sent | Redis CPU µs (commandstats) | redis-server process CPU µs (/proc, I/O and parsing included; coarse) | ceiling per shard (claims/s, commandstats) | commands seen (a script\'s own commands included) |',
        '|---|---:|---:|---:|---:|---|',
        row('win: claim script', win),
        row('win: confirmation (batches of 500)', confirm),
        row('sold out, in Redis: claim script', late),
        row('rate limits (user and address)', limits),
        row('rate limits, previous layout (a Lua script per count)', previousLimits),
        '',
        `Per claim that reaches Redis (sold out, in Redis), claim script and rate limits: ${(late.usPerUnit + limits.usPerUnit).toFixed(2)} µs (commandstats), ${(late.processUsPerUnit + limits.processUsPerUnit).toFixed(1)} µs (process); with the previous limiter layout ${(late.usPerUnit + previousLimits.usPerUnit).toFixed(2)} µs and ${(late.processUsPerUnit + previousLimits.processUsPerUnit).toFixed(1)} µs.`,
        '',
      ].join('\n'),
    );
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`redis-cost failed: ${error.message}\n`);
  process.exit(1);
});
