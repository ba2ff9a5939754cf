/**
 * An entry into an opening draw reaches Redis as the claim is read, not after the event loop's
 * poll phase: Redis's clock judges whether it came inside the window, and a burst of thousands
 * of requests is read in one poll phase of a second or more, after which the auto-pipeline
 * (flushed with setImmediate) would send the entries, too late. Checked while this process's
 * loop is blocked, by asking the Redis server from another process.
 */
import { execFileSync } from 'node:child_process';
import { drawKeys, enterArgs } from '../../src/redis/draw-scripts';
import { useTestService } from '../support/stack';

const suite = useTestService();

const entriesSeenByRedis = (key: string) => execFileSync('redis-cli', ['-p', String(suite.stack.redis.port), 'ZCARD', key], { encoding: 'utf8' }).trim();

test('a draw entry is in Redis before the event loop turns; an ordinary command waits for the pipeline', async () => {
  const keys = drawKeys('0123456789abcdef01234567');
  const coupon = { startsAt: new Date(Date.now() - 1000), openingDrawMs: 60_000, endsAt: null };
  const redis = suite.service.redis;
  // The script is loaded on this connection first (ioredis sends EVALSHA, and EVAL after NOSCRIPT).
  await redis.drawEnter(...enterArgs(keys, 'aaaa:first', coupon));

  const entered = redis.drawEnter(...enterArgs(keys, 'bbbb:second', coupon));
  const piped = redis.zadd('pipelined', 0, 'member');
  // No await in between: the loop has not turned since the two commands were issued.
  expect(entriesSeenByRedis(keys.entries)).toBe('2');
  expect(entriesSeenByRedis('pipelined')).toBe('0');
  await Promise.all([entered, piped]);
  expect(entriesSeenByRedis('pipelined')).toBe('1');
});
