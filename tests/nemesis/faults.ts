/**
 * The faults a nemesis run injects, as a table: each kind says on which topologies it applies,
 * how to inject it and how to heal it. The run records the window from injection to heal. To add
 * a fault, add an entry to FAULT_KINDS.
 */
import type { NemesisEnvironment, Topology } from './environment';
import type { Random } from './random';

export interface InjectedFault {
  /** What it hit, for the report: "instance 1", "redis 6379", "mongodb". */
  target: string;
  /** The instance killed, for kill faults (its in-flight requests may get no answer). */
  instance?: number;
  /** Undoes the fault (resumes, restarts, waits for the failover); resolves once healed. */
  heal(): Promise<void>;
  /** The schedule goes on to the next fault while this one heals (a restart takes seconds). */
  healsInBackground?: boolean;
  /** Nothing was done (e.g. no instance to spare): not recorded as a fault. */
  skipped?: boolean;
}

export interface FaultKindSpec {
  kind: string;
  weight: number;
  topologies: Topology[];
  /** The schedule goes on to the next fault while this one heals (see InjectedFault). */
  healsInBackground?: boolean;
  inject(environment: NemesisEnvironment, rng: Random): Promise<InjectedFault>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nothingToHeal = async () => undefined;

export const FAULT_KINDS: FaultKindSpec[] = [
  {
    kind: 'kill-instance',
    weight: 3,
    topologies: ['single', 'cluster'],
    healsInBackground: true,
    async inject(environment, rng) {
      // One instance down at a time: the others keep serving while it restarts.
      const alive = environment.instances.flatMap((instance, index) => (instance ? [index] : []));
      if (alive.length < environment.instances.length) return { target: 'none (an instance is already down)', skipped: true, heal: nothingToHeal };
      const index = rng.pick(alive);
      await environment.killInstance(index);
      const downMs = rng.int(200, 1500);
      return { target: `instance ${index}`, instance: index, healsInBackground: true, heal: async () => (await sleep(downMs), await environment.restartInstance(index)) };
    },
  },
  {
    kind: 'redis-stall',
    weight: 3,
    topologies: ['single', 'cluster'],
    async inject(environment, rng) {
      // On a cluster, below cluster-node-timeout (2 s): a stall, not a failover (that is its own fault).
      const server = rng.pick(await environment.redisMasters());
      const stallMs = environment.topology === 'cluster' ? rng.int(300, 1500) : rng.int(500, 2500);
      server.signal('SIGSTOP');
      return { target: `redis ${server.port}`, heal: async () => (await sleep(stallMs), server.signal('SIGCONT')) };
    },
  },
  {
    kind: 'redis-flushall',
    weight: 2,
    topologies: ['single', 'cluster'],
    async inject(environment) {
      const masters = await environment.redisMasters();
      await Promise.all(masters.map((server) => environment.onRedis(server, (redis) => redis.flushall())));
      return { target: `redis ${masters.map((server) => server.port).join(',')}`, heal: nothingToHeal };
    },
  },
  {
    kind: 'redis-restart-empty',
    weight: 1,
    topologies: ['single'],
    async inject(environment, rng) {
      const port = environment.redisServers()[0]!.port;
      // kill -9 at once; the new, empty server comes up after downMs.
      const restarted = environment.restartRedis(rng.int(200, 1500));
      return { target: `redis ${port}`, heal: () => restarted };
    },
  },
  {
    kind: 'pubsub-kill',
    weight: 2,
    topologies: ['single', 'cluster'],
    async inject(environment) {
      const servers = environment.redisServers();
      await Promise.all(servers.map((server) => environment.onRedis(server, (redis) => redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))));
      return { target: `redis ${servers.map((server) => server.port).join(',')}`, heal: nothingToHeal };
    },
  },
  {
    kind: 'mongodb-stall',
    weight: 2,
    topologies: ['single', 'cluster'],
    async inject(environment, rng) {
      const stallMs = rng.int(500, 2500);
      environment.mongoServer.signal('SIGSTOP');
      return { target: 'mongodb', heal: async () => (await sleep(stallMs), environment.mongoServer.signal('SIGCONT')) };
    },
  },
  {
    kind: 'master-failover',
    weight: 2,
    topologies: ['cluster'],
    async inject(environment, rng) {
      const cluster = environment.cluster!;
      const master = rng.pick(await cluster.masters());
      const [replica] = await cluster.replicasOf(master);
      if (!replica) return { target: `redis ${master.port} (no replica)`, skipped: true, heal: nothingToHeal };
      // FORCE: the replica takes over without the master's agreement; writes the master takes
      // meanwhile are lost, as in a real failover after a partition.
      await environment.onRedis(replica, (redis) => redis.call('CLUSTER', 'FAILOVER', 'FORCE'));
      return { target: `redis ${master.port} -> ${replica.port}`, heal: () => cluster.waitHealthy(20_000) };
    },
  },
];

export const faultKindsFor = (topology: Topology) => FAULT_KINDS.filter((fault) => fault.topologies.includes(topology));
