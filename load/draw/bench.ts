/**
 * Opening-draw bench: the draw's own Redis cost over many entries inserted directly, and how fast
 * one client enters users (draw-enter-2.lua, each written at once, as the service sends it). Starts a
 * private redis-server; the same operations on a 1,000-entry draw are measured in the same run,
 * rounds alternating, as the reference.
 * Usage: npm run bench:draw -- [entries=1000000] [units=1000] [rounds=3]
 */
import { createHmac, randomBytes } from 'node:crypto';
import { startRedisServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { connectRedis, createRedisClient } from '../../src/redis/client';
import { couponKeys } from '../../src/redis/scripts';
import { closeArgs, drawKeys, enterArgs, parseCloseReply, parseEnterReply } from '../../src/redis/draw-scripts';

const [entries = 1_000_000, units = 1000, rounds = 3] = process.argv.slice(2).map(Number);

async function main() {
  const server = await startRedisServer();
  const target = { kind: 'single' as const, url: server.url };
  const redis = createRedisClient(target, { name: 'draw-bench', logger: createLogger('silent'), autoPipelining: true, immediateCommands: ['drawEnter'], commandTimeoutMs: 60_000 });
  await connectRedis(redis, target);
  const seed = randomBytes(32);
  const member = (user: string) => `${createHmac('sha256', seed).update(user).digest('hex')}:${user}`;

  /** A coupon whose window is over, with `count` entries ZADDed directly (batches of 10,000). */
  async function prepare(id: string, count: number) {
    const keys = couponKeys(id);
    await redis.hset(keys.meta, 'total', count, 'startsAt', 0, 'endsAt', 0, 'seq', 0, 'version', 1, 'epoch', 1);
    for (let from = 0; from < count; from += 10_000) {
      const args: Array<string | number> = [];
      for (let i = from; i < Math.min(count, from + 10_000); i++) args.push(0, member(`user-${i}`));
      await redis.zadd(drawKeys(id).entries, ...args);
    }
  }

  /** The draw's Redis part: close (lease, snapshot, ZCARD) and reading the first k members. */
  async function draw(id: string, k: number) {
    const started = performance.now();
    const close = parseCloseReply(await redis.drawClose(...closeArgs(couponKeys(id), drawKeys(id), `t${Math.random()}`, 0, 3000)));
    const closedMs = performance.now() - started;
    const winners = await redis.zrange(drawKeys(id).entries, '0', String(Math.min(k, close.entrants) - 1));
    const totalMs = performance.now() - started;
    await redis.hdel(drawKeys(id).draw, 'owner', 'lockUntil');
    return { closedMs, totalMs, winners: winners.length, entrants: close.entrants };
  }

  const big = 'b'.repeat(24);
  const small = 's'.repeat(24);
  let prepared = performance.now();
  await prepare(big, entries);
  const insertMs = performance.now() - prepared;
  await prepare(small, 1000);
  const memory = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);

  const results: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const [name, id] of [['reference (1,000 entries)', small], [`${entries.toLocaleString('en')} entries`, big]] as const) {
      const r = await draw(id, units);
      results.push(`| ${round} | ${name} | ${r.closedMs.toFixed(1)} | ${r.totalMs.toFixed(1)} | ${r.winners} |`);
    }
  }

  // Entering: users entered per second by one client writing each entry at once (an open window).
  const enterId = 'e'.repeat(24);
  const coupon = { startsAt: new Date(Date.now() - 10), openingDrawMs: 2000, endsAt: null };
  prepared = performance.now();
  const n = 50_000;
  await Promise.all(Array.from({ length: n }, (_, i) => redis.drawEnter(...enterArgs(drawKeys(enterId), member(`enter-${i}`), coupon)).then(parseEnterReply)));
  const enterMs = performance.now() - prepared;

  console.log(`# Opening draw bench (${new Date().toISOString()}, shared machine)\n`);
  console.log(`Entries inserted directly: ${entries.toLocaleString('en')} in ${(insertMs / 1000).toFixed(1)} s (HMACs included); Redis memory ${(memory / 1024 / 1024).toFixed(0)} MB (${((memory / entries)).toFixed(0)} bytes per entry, the 1,000-entry reference included).\n`);
  console.log(`The draw's Redis time, ${units} units (draw-close-4.lua, then ZRANGE of the first k members):\n`);
  console.log('| round | draw | close ms | close + winners ms | winners |\n| --- | --- | --- | --- | --- |');
  console.log(results.join('\n'));
  console.log(`\nEntering: ${n.toLocaleString('en')} draw-enter-2.lua calls from one client, each written at once, in ${enterMs.toFixed(0)} ms = ${Math.round(n / (enterMs / 1000)).toLocaleString('en')} entries/s (HMAC in the client included).`);
  redis.disconnect();
  await server.stop();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
