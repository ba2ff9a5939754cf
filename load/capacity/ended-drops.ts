/**
 * `npm run bench:ended-memory [-- --drops 100 --winners 50]`: Redis memory per live coupon, per
 * winner, and after `drops` ended drops, read from Redis's own accounting (INFO memory
 * used_memory, DBSIZE) on private servers, with the service in this process (as the tests run it)
 * and ENDED_STATE_RETENTION_MS of 1 s so the removal of ended states shows within the run.
 *
 * Steps: the service idle (reference); `drops` coupons read once each (a read loads a live
 * coupon's state); `winners` claims on each (through the claim service, one user each); every
 * coupon ended (its state still there for the retention); the state after removal.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config';
import { startMongoServer, startRedisServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { startService } from '../../src/service';

const { values } = parseArgs({ options: { drops: { type: 'string', default: '100' }, winners: { type: 'string', default: '50' } } });
const drops = Number(values.drops);
const winners = Number(values.winners);
const SECRET = 'ended-drops-capacity-secret-0123456789abcdef';

/** used_memory (everything Redis allocated), the keys, and MEMORY USAGE summed over the coupon keys (their own bytes). */
async function usedMemory(redis: Redis): Promise<{ bytes: number; keys: number; couponBytes: number }> {
  const info = await redis.info('memory');
  let couponBytes = 0;
  for (const key of await redis.keys('coupon:*')) couponBytes += Number(await redis.memory('USAGE', key, 'SAMPLES', '0')) || 0;
  return { bytes: Number(/used_memory:(\d+)/.exec(info)![1]), keys: await redis.dbsize(), couponBytes };
}

async function main(): Promise<void> {
  const [redisServer, mongoServer] = await Promise.all([startRedisServer(), startMongoServer({ database: 'ended-drops' })]);
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    CLAIM_RATE_PER_USER: '0',
    CLAIM_RATE_PER_IP: '0',
    READ_COST_PER_IP: '0',
    NEW_DOCUMENTS_PER_IP: '0',
    ENDED_STATE_RETENTION_MS: '1000',
    REQUEST_TIMEOUT_MS: '3000',
  });
  const service = await startService({ ...config, redis: { kind: 'single', url: redisServer.url }, mongoUri: mongoServer.url, jwtSecret: SECRET }, createLogger('warn'));
  const redis = new Redis(redisServer.url);
  const lines: string[] = [];
  const say = (line: string) => {
    console.log(line);
    lines.push(line);
  };
  try {
    const { catalog, reader, claims, admin } = service.services;
    const operator = { id: 'capacity-operator', admin: true };
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const idle = await usedMemory(redis);
    say(`idle service: used_memory ${idle.bytes} B, ${idle.keys} keys`);

    const ids: string[] = [];
    for (let i = 0; i < drops; i++) ids.push((await catalog.create({ name: `Drop ${i}`, totalQuantity: winners * 2 })).id);
    for (const id of ids) await reader.coupon(id);
    const live = await usedMemory(redis);
    const perCoupon = (live.bytes - idle.bytes) / drops;
    say(`${drops} live coupons, no winners: +${live.bytes - idle.bytes} B used_memory (${perCoupon.toFixed(0)} B per live coupon); coupon keys ${live.couponBytes} B (${(live.couponBytes / drops).toFixed(0)} B each), ${live.keys} keys`);

    for (const [n, id] of ids.entries()) {
      if (n % 20 === 0) console.log(`claiming: coupon ${n} of ${drops}`);
      // A claim past its 2 s budget on a busy machine is retried, as a client would.
      const claimOnce = async (user: string): Promise<void> => {
        for (let attempt = 0; ; attempt++) {
          try {
            await claims.claim(id, user, '127.0.0.1');
            return;
          } catch (error) {
            if (attempt >= 5) throw Object.assign(error as Error, { cause: (error as { originalError?: unknown }).originalError });
          }
        }
      };
      for (let w = 0; w < winners; w += 10) {
        await Promise.all(Array.from({ length: Math.min(10, winners - w) }, (_, k) => claimOnce(`user-${w + k}-of-${id.slice(-6)}`)));
      }
    }
    // Group-commit confirmations land in the background.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const won = await usedMemory(redis);
    const perWinner = (won.bytes - live.bytes) / (drops * winners);
    say(`${drops * winners} winners: +${won.bytes - live.bytes} B used_memory (${perWinner.toFixed(0)} B per winner); coupon keys ${won.couponBytes} B (${((won.couponBytes - live.couponBytes) / (drops * winners)).toFixed(0)} B per winner), ${won.keys} keys`);

    for (const id of ids) await admin.end(operator, id);
    const ended = await usedMemory(redis);
    say(`${drops} drops ended, within the retention: ${ended.bytes - idle.bytes} B used_memory above idle, coupon keys ${ended.couponBytes} B, ${ended.keys} keys (what stayed for ever before ended states were removed)`);

    const until = Date.now() + 30_000;
    let after = await usedMemory(redis);
    while (Date.now() < until && after.keys > idle.keys) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      after = await usedMemory(redis);
    }
    say(`after the retention: ${after.bytes - idle.bytes} B used_memory above idle, coupon keys ${after.couponBytes} B, ${after.keys} keys (${idle.keys} idle)`);
    const reads = await Promise.all(ids.slice(0, 5).map((id) => reader.coupon(id)));
    const afterReads = await usedMemory(redis);
    say(`reads of ended coupons: ${reads.map((c) => `${c?.status}/${c?.remaining}`).join(', ')}; keys after them: ${afterReads.keys} (not rebuilt)`);
  } finally {
    redis.disconnect();
    await service.stop();
    await Promise.all([redisServer.stop(), mongoServer.stop()]);
  }
  console.log(`\n${lines.join('\n')}`);
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
