/**
 * Local Redis Cluster and Redis Sentinel groups for the integration tests (and for trying the
 * service on them by hand): real `redis-server` processes on free loopback ports, each with its
 * own directory, and failure detection tuned to seconds so a test can watch a replica take over.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { RedisNode, RedisTarget } from '../config';
import { freePort, spawnRedisServer, startRedisServer, type EmbeddedServer } from './embedded';

const run = promisify(execFile);
const HOST = '127.0.0.1';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(timeoutMs: number, what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = ` (last error: ${(error as Error).message})`;
    }
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms${lastError}`);
    await sleep(100);
  }
}

/** A short-lived connection to one server, for administration. */
async function withConnection<T>(port: number, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 2000 });
  try {
    await redis.connect();
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

const parseInfo = (text: string) =>
  Object.fromEntries(
    text
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );

export interface RedisClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /**
   * cluster-node-timeout: how long a master may not answer before it is failed over. Default 2000:
   * at 1000 a node starved of CPU for a second (a loaded two-core CI machine) could be failed
   * over without any fault.
   */
  nodeTimeoutMs?: number;
}

export interface LocalRedisCluster {
  /** Every server, masters and replicas (roles change on failover). */
  readonly servers: EmbeddedServer[];
  readonly target: RedisTarget & { kind: 'cluster' };
  /** The server that serves `key`'s slot as master now, as the live nodes see it. */
  masterFor(key: string): Promise<EmbeddedServer>;
  /** The servers that are masters now, as the live nodes see it. */
  masters(): Promise<EmbeddedServer[]>;
  /** The replicas of a master, as it reports them. */
  replicasOf(master: EmbeddedServer): Promise<EmbeddedServer[]>;
  /** Resolves once every live node reports cluster_state:ok and every slot has a live master. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `masters` masters with `replicasPerMaster` replicas each, created with `redis-cli --cluster
 * create`. A replica takes over within a few seconds of its master's death:
 * cluster-node-timeout is short and cluster-replica-validity-factor 0 lets any replica stand.
 * cluster-require-full-coverage is off, so the other shards keep serving while one fails over.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<LocalRedisCluster> {
  const masters = options.masters ?? 3;
  const count = masters * (1 + (options.replicasPerMaster ?? 1));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-cluster-'));
  const servers: EmbeddedServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The bus port is set explicitly: the default, port + 10000, may not be free or even valid.
    const ports = await distinctFreePorts(count * 2);
    for (let i = 0; i < count; i++) {
      const port = ports[i]!;
      const nodeDir = path.join(dir, String(port));
      fs.mkdirSync(nodeDir);
      const args = [
        '--port', String(port),
        '--cluster-port', String(ports[count + i]),
        '--bind', HOST,
        '--dir', nodeDir,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
        '--cluster-replica-validity-factor', '0',
        '--cluster-require-full-coverage', 'no',
        '--save', '',
        '--appendonly', 'no',
        '--maxmemory-policy', 'noeviction',
      ];
      servers.push(await spawnRedisServer(args, port, /Ready to accept connections/));
    }
    await run('redis-cli', [
      '--cluster', 'create',
      ...servers.map((server) => `${HOST}:${server.port}`),
      '--cluster-replicas', String(options.replicasPerMaster ?? 1),
      '--cluster-yes',
    ], { timeout: 30_000 });
  } catch (error) {
    await stop();
    throw error;
  }

  const byPort = (port: number) => servers.find((server) => server.port === port)!;
  const live = () => servers.filter((server) => server.alive());
  /** CLUSTER SLOTS from the first live node that answers. */
  const slots = async () => {
    for (const server of live()) {
      try {
        return await withConnection(server.port, (redis) => redis.cluster('SLOTS'));
      } catch {
        // try the next one
      }
    }
    throw new Error('no cluster node answers');
  };
  const cluster: LocalRedisCluster = {
    servers,
    target: { kind: 'cluster', nodes: servers.slice(0, masters).map((server) => ({ host: HOST, port: server.port })) },
    async masterFor(key) {
      const slot = await withConnection(live()[0]!.port, (redis) => redis.cluster('KEYSLOT', key));
      const range = (await slots()).find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return byPort(range[2]![1]);
    },
    async masters() {
      return [...new Set((await slots()).map((range) => range[2]![1]))].map(byPort);
    },
    async replicasOf(master) {
      const info = parseInfo(await withConnection(master.port, (redis) => redis.info('replication')));
      return Object.entries(info)
        .filter(([field]) => /^slave\d+$/.test(field))
        .map(([, value]) => byPort(Number(/port=(\d+)/.exec(value)![1])));
    },
    async waitHealthy(timeoutMs = 20_000) {
      await until(timeoutMs, 'a healthy redis cluster', async () => {
        for (const server of live()) {
          const info = await withConnection(server.port, (redis) => redis.cluster('INFO'));
          if (!/cluster_state:ok/.test(info)) return false;
        }
        const ranges = await slots();
        const covered = ranges.reduce((sum, [from, to]) => sum + (to - from + 1), 0);
        return covered === 16384 && ranges.every((range) => byPort(range[2]![1])?.alive());
      });
      // Every replica has its first copy of its master, so a failover finds one ready.
      for (const server of live()) {
        await until(timeoutMs, `replica ${server.port} in sync`, async () => {
          const info = parseInfo(await withConnection(server.port, (redis) => redis.info('replication')));
          return info.role === 'master' || info.master_link_status === 'up';
        });
      }
    },
    stop,
  };
  try {
    await cluster.waitHealthy();
  } catch (error) {
    await stop();
    throw error;
  }
  return cluster;
}

export interface SentinelOptions {
  /** The master's name the sentinels know it by. */
  name?: string;
  sentinels?: number;
  /** down-after-milliseconds: how long a master may not answer before it is considered down. */
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

export interface LocalSentinelGroup {
  readonly master: EmbeddedServer;
  readonly replica: EmbeddedServer;
  readonly sentinels: EmbeddedServer[];
  readonly target: RedisTarget & { kind: 'sentinel' };
  /** The master as the sentinels report it now. */
  currentMaster(): Promise<RedisNode>;
  stop(): Promise<void>;
}

/**
 * A master, one replica and `sentinels` sentinels (quorum: a majority) watching it, with
 * failure detection in about a second. Resolves once every sentinel knows the replica and the
 * other sentinels, so a failover can start as soon as the master dies.
 */
export async function startRedisSentinel(options: SentinelOptions = {}): Promise<LocalSentinelGroup> {
  const name = options.name ?? 'coupons';
  const count = options.sentinels ?? 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-sentinel-'));
  const servers: EmbeddedServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const master = await startRedisServer();
    servers.push(master);
    const replica = await startRedisServer({ settings: { replicaof: `${HOST} ${master.port}` } });
    servers.push(replica);
    const sentinels: EmbeddedServer[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      // A sentinel rewrites its configuration file, so each gets its own.
      const file = path.join(dir, `sentinel-${port}.conf`);
      fs.writeFileSync(
        file,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${name} ${HOST} ${master.port} ${Math.floor(count / 2) + 1}`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 4000}`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = await spawnRedisServer([file, '--sentinel'], port, /\+monitor master/);
      servers.push(sentinel);
      sentinels.push(sentinel);
    }
    const askSentinel = <T>(sentinel: EmbeddedServer, ...args: string[]) => withConnection(sentinel.port, (redis) => redis.call('SENTINEL', ...args) as Promise<T>);
    await until(30_000, 'sentinels that know the replica and each other', async () => {
      for (const sentinel of sentinels) {
        const replicas = await askSentinel<unknown[]>(sentinel, 'REPLICAS', name);
        const peers = await askSentinel<unknown[]>(sentinel, 'SENTINELS', name);
        if (replicas.length < 1 || peers.length < count - 1) return false;
      }
      const info = parseInfo(await withConnection(replica.port, (redis) => redis.info('replication')));
      return info.master_link_status === 'up';
    });
    return {
      master,
      replica,
      sentinels,
      target: { kind: 'sentinel', sentinels: sentinels.map((sentinel) => ({ host: HOST, port: sentinel.port })), name },
      async currentMaster() {
        for (const sentinel of sentinels.filter((s) => s.alive())) {
          try {
            const [host, port] = await askSentinel<[string, string]>(sentinel, 'GET-MASTER-ADDR-BY-NAME', name);
            return { host, port: Number(port) };
          } catch {
            // try the next one
          }
        }
        throw new Error('no sentinel answers');
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
