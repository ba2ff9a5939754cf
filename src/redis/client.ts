/**
 * Builds Redis connections with explicit timeouts, so a lost or stalled Redis turns into a fast
 * error instead of a hang, and with the coupon scripts defined on every command client.
 *
 * One factory for the three kinds of Redis the service runs on, each through ioredis's own
 * support: a single server (REDIS_URL), a Redis Cluster (REDIS_CLUSTER_NODES: ioredis follows
 * MOVED/ASK, refreshes the slot map when a replica takes over) and a Sentinel-watched master
 * (REDIS_SENTINELS: ioredis asks the sentinels for the master, and reconnects to the promoted one).
 * Every coupon key carries the hash tag `{couponId}`, so each script's keys live on one shard.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { redisVariable, type RedisTarget } from '../config';
import { defineCouponScripts } from './scripts';

/** A connection to whichever kind of Redis is configured; both kinds run the same commands. */
export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** Shown in CLIENT LIST and in logs. */
  name: string;
  logger: Logger;
  /** Per-command budget; the claim path must answer within the contract's 3 s. */
  commandTimeoutMs?: number;
  /**
   * Send every command issued in one event-loop tick in one socket write. A burst of claims is
   * hundreds of scripts per tick, and one write per command was a fifth of the service's CPU.
   * Only for clients whose scripts are all defined up front: ioredis copies them into each
   * pipeline when it is created (a lazily defined script, as rate-limiter-flexible's, breaks it).
   */
  autoPipelining?: boolean;
  /**
   * Commands written to the socket as soon as they are issued, outside the auto-pipeline. The
   * pipeline is flushed with setImmediate, after the event loop's poll phase, and a burst of
   * thousands of requests is read in one poll phase of a second or more: a command whose moment
   * Redis judges (an entry into an opening draw, by Redis's clock) must not wait for it.
   */
  immediateCommands?: string[];
  /**
   * On a cluster, one subscriber connection per master, so that SSUBSCRIBE reaches the shard that
   * owns each channel (the stock feed's subscriber). Ignored elsewhere.
   */
  shardedSubscriber?: boolean;
}

/** Reconnect quickly at first, then once a second: a promoted replica is found within a second of its promotion. */
const retryStrategy = (attempt: number) => Math.min(50 * 2 ** attempt, 1000);
/** Between retries of a command whose shard is failing over (CLUSTERDOWN, connection lost). */
const CLUSTER_RETRY_DELAY_MS = 100;

export function createRedisClient(target: RedisTarget, options: RedisClientOptions): RedisClient {
  const log = options.logger.child({ redis: options.name });
  const commandTimeout = options.commandTimeoutMs ?? 1000;
  const connection: RedisOptions = {
    connectionName: options.name,
    commandTimeout,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
  };
  const enableAutoPipelining = options.autoPipelining ?? false;
  const autoPipeliningIgnoredCommands = options.immediateCommands ?? [];
  let client: RedisClient;
  switch (target.kind) {
    case 'single':
      client = new Redis(target.url, { ...connection, retryStrategy, lazyConnect: true, enableAutoPipelining, autoPipeliningIgnoredCommands });
      break;
    case 'sentinel':
      client = new Redis({
        ...connection,
        sentinels: target.sentinels,
        name: target.name,
        retryStrategy,
        sentinelRetryStrategy: retryStrategy,
        sentinelCommandTimeout: 500,
        // Listens for the sentinels' +switch-master and reconnects at once, rather than when the
        // old master's connection breaks (which a partition may never do).
        failoverDetector: true,
        lazyConnect: true,
        enableAutoPipelining,
        autoPipeliningIgnoredCommands,
      });
      break;
    case 'cluster':
      client = new Cluster(target.nodes, {
        redisOptions: connection,
        clusterRetryStrategy: retryStrategy,
        scaleReads: 'master',
        retryDelayOnFailover: CLUSTER_RETRY_DELAY_MS,
        retryDelayOnClusterDown: CLUSTER_RETRY_DELAY_MS,
        retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
        // Enough for the redirections of a resharding (MOVED, then ASK). A shard that is failing
        // over takes seconds, which no retry here would bridge: its claims fail within a few
        // hundred ms instead, and hold no admission slot for longer (clients retry).
        maxRedirections: Math.max(2, Math.floor(commandTimeout / 250)),
        slotsRefreshTimeout: 1000,
        shardedSubscribers: options.shardedSubscriber ?? false,
        lazyConnect: true,
        enableAutoPipelining,
        autoPipeliningIgnoredCommands,
      });
      watchClusterNodes(client, log);
      break;
  }
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) log.error({ err: error.message }, 'redis connection error');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.warn('redis connection recovered');
    down = false;
  });
  defineCouponScripts(client);
  return client;
}

/** On a cluster one node can fail while the client stays ready: its errors are logged once per node and interval. */
function watchClusterNodes(cluster: Cluster, log: Logger): void {
  const lastLogged = new Map<string, number>();
  cluster.on('node error', (error: Error, node: string) => {
    const now = Date.now();
    if (now - (lastLogged.get(node) ?? 0) < 10_000) return;
    lastLogged.set(node, now);
    log.warn({ node, err: error.message }, 'redis cluster node error');
  });
}

/**
 * Connects, within `timeoutMs`; a failure names the variable the target came from. Resolves on
 * the client's first `ready`, not only on connect()'s own promise: when a cluster's first ready
 * check fails (a node slow to answer CLUSTER INFO), ioredis reconnects by itself and that promise
 * never settles, while `ready` does come. A rejected first attempt is not final either: the
 * client retries it, and only the deadline ends the wait.
 */
export async function connectRedis(client: RedisClient, target: RedisTarget, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onReady: (() => void) | undefined;
  let onError: ((error: Error) => void) | undefined;
  const attempt = new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined;
    timer = setTimeout(() => reject(lastError ?? new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    onReady = resolve;
    client.once('ready', onReady);
    // A first attempt that fails is retried by the client itself (retryStrategy): a server slow
    // to answer its ready check on a busy machine is not a configuration error. Only the deadline
    // decides, reporting the last failure.
    client.connect().then(resolve, (error: Error) => (lastError ??= error));
    // The socket's own error ("connect ECONNREFUSED ...") says more than the closed connection.
    onError = (error: Error) => (lastError = error);
    client.on('error', onError);
  });
  try {
    await attempt;
  } catch (error) {
    client.disconnect();
    throw new Error(`${redisVariable(target)}: cannot connect to redis (${(error as Error).message})`);
  } finally {
    clearTimeout(timer);
    client.off('ready', onReady!);
    client.off('error', onError!);
  }
}

/**
 * The servers that hold data: every master of a cluster, or the one server. What must hold on
 * every shard (health, eviction policy, SCAN) runs on each of them.
 */
export function masterNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

const nodeAddress = (node: Redis) => `${node.options.host}:${node.options.port}`;

/**
 * Redis must never evict a coupon's keys: losing `meta` silently would re-open sold-out stock.
 * On a cluster every node is checked, replicas included: a replica becomes a master when it takes over.
 */
export async function assertNoEviction(client: RedisClient, target: RedisTarget): Promise<void> {
  const nodes = client instanceof Cluster ? client.nodes('all') : [client];
  const policies = await Promise.all(nodes.map(async (node) => ((await node.config('GET', 'maxmemory-policy')) as string[])[1]));
  const evicting = policies.findIndex((policy) => policy !== 'noeviction');
  if (evicting === -1) return;
  const where = client instanceof Cluster ? ` on ${nodeAddress(nodes[evicting]!)}` : '';
  throw new Error(
    `${redisVariable(target)}: maxmemory-policy${where} is "${policies[evicting]}", it must be "noeviction" (coupon state must never be evicted)`,
  );
}

/** Answers when every master answers a PING: on a cluster, a master down means its coupons cannot be claimed. */
export async function pingEveryMaster(client: RedisClient): Promise<void> {
  const masters = masterNodes(client);
  if (masters.length === 0) throw new Error('no redis master known');
  await Promise.all(masters.map((node) => node.ping()));
}

/**
 * Every key matching `pattern`, from every master: on a cluster SCAN only walks the node it is
 * sent to. Keys can repeat (SCAN's own guarantee) and keys written meanwhile may be missed.
 */
export async function* scanKeys(client: RedisClient, pattern: string, count = 500): AsyncGenerator<string[]> {
  for (const node of masterNodes(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}
