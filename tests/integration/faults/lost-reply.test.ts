/**
 * Fault: a claim script runs in Redis but its reply never reaches the service, because the
 * connection drops in between. A TCP proxy between the service and Redis injects it: it forwards
 * the claim command, swallows Redis's reply and cuts the connection. ioredis reconnects and sends
 * the command again; the script must then report the same win rather than a second one.
 */
import net from 'node:net';
import { Redis } from 'ioredis';
import { freePort } from '../../../src/infra/embedded';
import type { Models } from '../../../src/mongo/models';
import { couponKeys } from '../../../src/redis/scripts';
import { startChildService, type ChildService } from '../../support/child-service';
import { createCoupon } from '../../support/graphql';
import { adminToken, startStack, userToken, type Stack } from '../../support/stack';
import { claimAs, expectConverges, expectNoOversellNoDoubleNothingLost, openModels, storedIssuances, within } from './contract';

/** The claim script's reply for a win starts with this bulk string (RESP: `$6\r\nISSUED\r\n`). */
const ISSUED_REPLY = Buffer.from('\r\nISSUED\r\n');

/** Forwards every connection to Redis; once armed, loses the next ISSUED reply and cuts that connection. */
class ReplyCuttingProxy {
  /** Script calls (EVALSHA or EVAL) sent for the watched user: each is one run of the claim script. */
  commandsSeen = 0;
  readonly replies: Buffer[] = [];
  private watch: Buffer | undefined;
  private cutNext = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(
    readonly port: number,
    redisPort: number,
  ) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(redisPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.on('data', (chunk: Buffer) => {
        if (this.watch && chunk.includes(this.watch) && /\r\nevalsha\r\n|\r\neval\r\n/i.test(chunk.toString('latin1'))) this.commandsSeen += 1;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (this.watch && chunk.includes(ISSUED_REPLY)) {
          this.replies.push(chunk);
          if (this.cutNext) {
            // Redis has run the script; the service never hears of it.
            this.cutNext = false;
            client.destroy();
            return;
          }
        }
        client.write(chunk);
      });
    });
  }

  static async start(redisPort: number): Promise<ReplyCuttingProxy> {
    const proxy = new ReplyCuttingProxy(await freePort(), redisPort);
    await new Promise<void>((resolve) => proxy.server.listen(proxy.port, '127.0.0.1', resolve));
    return proxy;
  }

  arm(userId: string): void {
    this.watch = Buffer.from(userId);
    this.cutNext = true;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let stack: Stack;
let proxy: ReplyCuttingProxy;
let service: ChildService;
let mongo: { models: Models; close: () => Promise<void> };
let redis: Redis;

beforeAll(async () => {
  stack = await startStack();
  proxy = await ReplyCuttingProxy.start(stack.redis.port);
  [service, mongo] = await Promise.all([
    startChildService({ redisUrl: `redis://127.0.0.1:${proxy.port}`, mongoUri: stack.mongo.url }),
    openModels(stack.mongo.url),
  ]);
  redis = new Redis(stack.redis.url);
});

afterAll(async () => {
  await service?.stop();
  await proxy?.stop();
  redis?.disconnect();
  await mongo?.close();
  await stack?.stop();
});

const issuanceIdIn = (reply: Buffer) => /\r\n([0-9a-f]{24})\r\n/.exec(reply.toString('latin1'))?.[1];

test('a claim whose script reply is lost on the wire is re-sent, reports ISSUED with the same issuance both times, and issues exactly once', async () => {
  const total = 10;
  const couponId = await createCoupon(service.url, await adminToken(), { name: 'Lost reply', totalQuantity: total });
  // Another user first, so the coupon's state is loaded and the watched claim is one plain script call.
  const warm = await claimAs(service.url, couponId, 'warm-user', await userToken('warm-user'));
  expect(warm.status).toBe('ISSUED');

  const token = await userToken('lost-reply-user');
  proxy.arm('lost-reply-user');
  const answer = await claimAs(service.url, couponId, 'lost-reply-user', token);

  // The script ran twice: the first reply was swallowed, the re-sent command's reply got through.
  expect(proxy.commandsSeen).toBe(2);
  expect(proxy.replies).toHaveLength(2);
  const [lost, resent] = proxy.replies.map(issuanceIdIn);
  expect(lost).toBeDefined();
  expect(resent).toBe(lost);
  expect(answer).toMatchObject({ status: 'ISSUED', issuance: { id: lost, userId: 'lost-reply-user', sequence: 2 } });
  expect(answer.ms).toBeLessThan(3000);

  // Exactly one issuance, one sequence consumed, nothing left pending.
  const stored = (await storedIssuances(mongo.models, couponId)).filter((doc) => doc.userId === 'lost-reply-user');
  expect(stored.map((doc) => doc._id.toHexString())).toEqual([lost]);
  const keys = couponKeys(couponId);
  expect(await redis.hget(keys.meta, 'seq')).toBe('2');
  expect(await redis.hlen(keys.winners)).toBe(2);
  await within(5_000, 'the pending mark is cleared', async () => (await redis.zcard(keys.pending)) === 0);

  const again = await claimAs(service.url, couponId, 'lost-reply-user', token);
  expect(again).toMatchObject({ status: 'ALREADY_ISSUED', issuance: answer.issuance });
  await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, [warm, answer, again]);
  await expectConverges(service.url, mongo.models, couponId, total);
  console.log(`lost reply: script ran twice for one claim, answered ISSUED ${lost} in ${answer.ms.toFixed(0)} ms; remaining ${total - 2}`);
});
