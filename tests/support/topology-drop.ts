/**
 * Drops on a Redis Cluster or a Sentinel group, shared by tests/integration/redis-cluster.test.ts
 * and redis-sentinel.test.ts: services run as child processes on the topology, claims come as
 * real clients make them, and the contract's guarantees are checked against MongoDB.
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import type { RedisTarget } from '../../src/config';
import type { EmbeddedServer } from '../../src/infra/embedded';
import {
  claimLikeAClient,
  expectConverges,
  expectNoOversellNoDoubleNothingLost,
  finalAnswers,
  summarize,
  type ClaimAnswer,
  type MongoView,
} from '../integration/faults/contract';
import { startChildService, type ChildService } from './child-service';
import { createCoupon } from './graphql';
import { adminToken, userToken } from './stack';
import { watchStock, wsClient, type Watcher } from './subscriptions';

/** Service settings for these suites: frequent reconciliation, so repairs show within the test. */
export const TOPOLOGY_SERVICE_ENV = { RECONCILE_INTERVAL_MS: '300' };

export function startServicesOn(redis: RedisTarget, mongoUri: string, count: number): Promise<ChildService[]> {
  return Promise.all(Array.from({ length: count }, () => startChildService({ redis, mongoUri, env: TOPOLOGY_SERVICE_ENV })));
}

export async function tokensFor(users: string[]): Promise<Map<string, string>> {
  return new Map(await Promise.all(users.map(async (user) => [user, await userToken(user)] as const)));
}

export async function createCoupons(url: string, names: string[], totalQuantity: number): Promise<string[]> {
  const token = await adminToken();
  return Promise.all(names.map((name) => createCoupon(url, token, { name, totalQuantity })));
}

/** GET /metrics: coupon_reconcile_repairs_total by kind. */
export function repairsOf(url: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/metrics`, { agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          const repairs: Record<string, number> = {};
          for (const match of body.matchAll(/^coupon_reconcile_repairs_total\{kind="([^"]+)"\} (\d+)/gm)) repairs[match[1]!] = Number(match[2]);
          resolve(repairs);
        });
      })
      .on('error', reject);
  });
}

export const sumRepairs = (all: Array<Record<string, number>>) =>
  all.reduce<Record<string, number>>((sum, repairs) => {
    for (const [kind, count] of Object.entries(repairs)) sum[kind] = (sum[kind] ?? 0) + count;
    return sum;
  }, {});

/**
 * A drop on several coupons at once, served by several instances: each user claims every coupon,
 * the claims spread over the instances, except that the first coupon is claimed only on the last
 * instance while it is watched only on the first. Checks the guarantees in MongoDB and that every
 * watcher, on every instance, saw the coupon sell out without ever going back to an older value.
 */
export async function dropOnInstances(services: ChildService[], mongo: MongoView, couponIds: string[], total: number, users: string[]) {
  const tokens = await tokensFor(users);
  const clients = services.map((service) => wsClient(service.url));
  try {
    const watchers: Array<{ couponId: string; instance: number; watcher: Watcher }> = [];
    for (const [c, couponId] of couponIds.entries()) {
      const instances = c === 0 ? [0] : services.map((_, i) => i);
      for (const instance of instances) watchers.push({ couponId, instance, watcher: watchStock(clients[instance]!, couponId) });
    }
    await Promise.all(watchers.map(({ watcher }) => watcher.until((event) => event.remaining === total)));

    // Clients as in a real drop: shed by admission control (SERVICE_UNAVAILABLE), they try again shortly.
    const attempts = await Promise.all(
      couponIds.flatMap((couponId, c) =>
        users.map((user, u) => {
          const instance = c === 0 ? services.length - 1 : (u + c) % services.length;
          return claimLikeAClient(services[instance]!.url, couponId, user, tokens.get(user)!);
        }),
      ),
    );
    const answers = finalAnswers(attempts);
    expect(answers.filter((a) => !a.status)).toEqual([]);
    for (const [c, couponId] of couponIds.entries()) {
      const mine = answers.slice(c * users.length, (c + 1) * users.length);
      const stored = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, attempts.slice(c * users.length, (c + 1) * users.length).flat());
      expect(stored).toHaveLength(Math.min(total, users.length));
      expect(mine.filter((a) => a.status === 'ISSUED' || a.status === 'ALREADY_ISSUED')).toHaveLength(stored.length);
      await expectConverges(services[0]!.url, mongo.models, couponId, total);
    }
    for (const { watcher } of watchers) {
      await watcher.until((event) => event.remaining === 0 && event.status === 'SOLD_OUT');
      const remaining = watcher.events.map((event) => event.remaining);
      expect(remaining).toEqual([...remaining].sort((a, b) => b - a));
      expect(watcher.errors).toEqual([]);
    }
    // Latency is not asserted here: a burst from the test process measures its own lag too (faults/burst-client.ts).
    return { answers, attempts: attempts.flat().length, slowestMs: Math.max(...attempts.flat().map((a) => a.ms)), watchers };
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
  }
}

export interface MasterLossReport {
  /** ISSUED answers between the replica's stop and the master's kill: acknowledged writes the replica lacks. */
  issuedWhileReplicaBehind: number;
  /** From the kill to the first claim sent after it that was answered ISSUED. */
  firstIssuedAfterKillMs: number;
  /** The claims in flight at the kill, by what they were told, and the slowest of them. */
  inFlightAtKill: Record<string, number>;
  slowestInFlightMs: number;
  /** Over every attempt of the drop (the test process's own lag included). */
  slowestAnswerMs: number;
  answersOver3s: number;
  /** Every attempt during the fault, by what it was told. */
  during: Record<string, number>;
  after: Record<string, number>;
  /** Repairs the instances' reconcilers made, summed (coupon_reconcile_repairs_total). */
  repairs: Record<string, number>;
  /** Claims that found their Redis reservation contradicted by MongoDB and settled it (logged by the instances). */
  claimRepairs: { adopted: number; revoked: number };
  convergedMs: number;
}

/** How long the replicas are held back before their master dies: claims it acknowledges meanwhile are lost to them. */
const REPLICA_BEHIND_MS = 200;
/** Users' first claims are spread over this long. */
const ARRIVAL_SPREAD_MS = 4000;

/**
 * Asynchronous replication losing writes, on purpose (on localhost a replica is otherwise never
 * behind): each replica drops its link to the master and is stopped (SIGSTOP) before its
 * once-a-second replication cron reconnects; the master goes on acknowledging claims for
 * REPLICA_BEHIND_MS, then dies (SIGKILL), and the replicas resume without those writes, to be
 * promoted. (A SIGSTOP alone loses nothing: what the master sent waits in the replica's socket.)
 */
async function killMasterWithReplicaBehind(master: EmbeddedServer, replicas: EmbeddedServer[]) {
  await Promise.all(
    replicas.map(async (replica) => {
      const redis = new Redis({ host: '127.0.0.1', port: replica.port, lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await redis.connect();
        await redis.call('CLIENT', 'KILL', 'TYPE', 'master');
      } finally {
        redis.disconnect();
      }
      replica.signal('SIGSTOP');
    }),
  );
  const replicaStoppedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, REPLICA_BEHIND_MS));
  master.signal('SIGKILL');
  const killedAt = performance.now();
  replicas.forEach((replica) => replica.signal('SIGCONT'));
  return { replicaStoppedAt, killedAt };
}

/**
 * A drop on `couponId` served by all `services`; when the `killAfterIssued`th ISSUED arrives,
 * the Redis master holding the coupon is killed (kill -9) with its replicas behind. Clients retry SERVICE_UNAVAILABLE
 * as real ones do, until the promoted replica serves them. Then everybody claims again, and the
 * guarantees are checked: every answer within 3 s, nothing acknowledged lost, no oversell, one per
 * user, earlier winners get the same issuance, remaining converges to what MongoDB holds.
 */
export async function dropLosingTheMaster(options: {
  services: ChildService[];
  mongo: MongoView;
  couponId: string;
  total: number;
  users: string[];
  killAfterIssued: number;
  /** The Redis master holding the coupon, and its replicas. */
  master: EmbeddedServer;
  replicas: EmbeddedServer[];
}): Promise<MasterLossReport> {
  const { services, couponId, users } = options;
  const tokens = await tokensFor(users);
  const urlOf = (u: number) => services[u % services.length]!.url;
  // A watcher on every instance, through the failover: live stock must come back by itself.
  const clients = services.map((service) => wsClient(service.url));
  try {
    return await dropWatched(options, tokens, urlOf, clients.map((client) => watchStock(client, couponId)));
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
  }
}

async function dropWatched(
  options: Parameters<typeof dropLosingTheMaster>[0],
  tokens: Map<string, string>,
  urlOf: (u: number) => string,
  watchers: Watcher[],
): Promise<MasterLossReport> {
  const { services, mongo, couponId, total, users } = options;
  await Promise.all(watchers.map((watcher) => watcher.until(() => true)));

  let issued = 0;
  let killing: Promise<{ replicaStoppedAt: number; killedAt: number }> | undefined;
  const issuedAt: Array<{ sentAt: number; answeredAt: number }> = [];
  const timed: Array<{ sentAt: number; answeredAt: number; answer: ClaimAnswer }> = [];
  // Users arrive over ARRIVAL_SPREAD_MS, as they do when a drop opens: the claims keep coming
  // before, during and after the failover.
  const duringTries = await Promise.all(
    users.map(async (user, u) => {
      await new Promise((resolve) => setTimeout(resolve, (u / users.length) * ARRIVAL_SPREAD_MS));
      return claimLikeAClient(urlOf(u), couponId, user, tokens.get(user)!, {
        giveUpAfterMs: 40_000,
        onAnswer: (answer) => {
          const answeredAt = performance.now();
          timed.push({ sentAt: answeredAt - answer.ms, answeredAt, answer });
          if (answer.status !== 'ISSUED') return;
          issuedAt.push({ sentAt: answeredAt - answer.ms, answeredAt });
          if (++issued === options.killAfterIssued) killing = killMasterWithReplicaBehind(options.master, options.replicas);
        },
      });
    }),
  );
  expect(killing).toBeDefined();
  const { replicaStoppedAt, killedAt } = await killing!;

  const firstIssuedAfterKill = Math.min(...issuedAt.filter((a) => a.sentAt > killedAt).map((a) => a.answeredAt)) - killedAt;
  const during = duringTries.flat();
  expect(during.filter((a) => a.failure)).toEqual([]);
  // The claims in flight when the master died: each answered, within the contract's 3 s.
  const inFlight = timed.filter(({ sentAt, answeredAt }) => sentAt < killedAt && answeredAt > killedAt).map(({ answer }) => answer);
  expect(inFlight.length).toBeGreaterThan(0);
  expect(inFlight.filter((a) => a.ms >= 3000)).toEqual([]);
  expect(finalAnswers(duringTries).filter((a) => !a.status)).toEqual([]);
  expect(firstIssuedAfterKill).toBeLessThan(Infinity);

  // Everybody once more, the winners included, on the other instance than before.
  const after = finalAnswers(await Promise.all(users.map((user, u) => claimLikeAClient(urlOf(u + 1), couponId, user, tokens.get(user)!))));
  expect(after.filter((a) => !a.status)).toEqual([]);
  const wonDuring = new Map(during.filter((a) => a.status === 'ISSUED').map((a) => [a.user, a.issuance!]));
  for (const answer of after) {
    const won = wonDuring.get(answer.user);
    if (won) expect({ user: answer.user, status: answer.status, issuance: answer.issuance }).toEqual({ user: answer.user, status: 'ALREADY_ISSUED', issuance: won });
  }
  const stored = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, total, [...during, ...after]);
  expect(stored).toHaveLength(Math.min(total, users.length));
  const holders = new Map(stored.map((doc) => [doc.userId, doc._id.toHexString()]));
  for (const answer of after) {
    if (holders.has(answer.user)) expect(answer.issuance?.id).toBe(holders.get(answer.user));
    else expect(answer.status).toBe('SOLD_OUT');
  }
  let convergedMs = 0;
  for (const service of services) convergedMs = Math.max(convergedMs, await expectConverges(service.url, mongo.models, couponId, total));
  for (const watcher of watchers) {
    await watcher.until((event) => event.remaining === 0 && event.status === 'SOLD_OUT');
    expect(watcher.errors).toEqual([]);
  }
  return {
    firstIssuedAfterKillMs: firstIssuedAfterKill,
    issuedWhileReplicaBehind: issuedAt.filter((a) => a.answeredAt >= replicaStoppedAt && a.answeredAt <= killedAt).length,
    inFlightAtKill: summarize(inFlight),
    slowestInFlightMs: Math.max(...inFlight.map((a) => a.ms)),
    slowestAnswerMs: Math.max(...during.map((a) => a.ms)),
    answersOver3s: during.filter((a) => a.ms >= 3000).length,
    during: summarize(during),
    after: summarize(after),
    repairs: sumRepairs(await Promise.all(services.map((service) => repairsOf(service.url)))),
    claimRepairs: {
      adopted: services.reduce((sum, service) => sum + service.logLines(/adopted the stored one/).length, 0),
      revoked: services.reduce((sum, service) => sum + service.logLines(/redis handed out a sequence mongodb already holds/).length, 0),
    },
    convergedMs,
  };
}

export type { ClaimAnswer };
