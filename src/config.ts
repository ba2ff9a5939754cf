/**
 * The one place that reads the environment. Every variable is validated here, once;
 * a mistake becomes a ConfigError whose message is one line naming the variable.
 */
import { availableParallelism } from 'node:os';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const urlWithProtocols = (name: string, protocols: string[]) =>
  z
    .string()
    .trim()
    .refine((value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    }, `${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

const nonNegativeInt = z.coerce.number().int().min(0);

/** One Redis endpoint of a cluster or a sentinel group. */
export interface RedisNode {
  host: string;
  port: number;
}

/** Where the service's Redis is: one server (or a managed endpoint), a Redis Cluster, or a Sentinel-watched master. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: RedisNode[] }
  | { kind: 'sentinel'; sentinels: RedisNode[]; name: string };

/** `host:port` or `[ipv6]:port`; undefined when it is neither. */
export function parseHostPort(entry: string): RedisNode | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]@]+)):(\d{1,5})$/.exec(entry);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return undefined;
  return { host: (match[1] ?? match[2])!, port };
}

const hostPortList = (name: string) =>
  z
    .string()
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
    .refine((entries) => entries.length > 0 && entries.every((entry) => parseHostPort(entry)), `${name} must be a comma-separated list of host:port`)
    .transform((entries) => entries.map((entry) => parseHostPort(entry)!));

const REDIS_TARGET_VARIABLES = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const;

const TRUSTED_PROXIES_FORMAT = 'TRUSTED_PROXIES must be a comma-separated list of IP addresses, CIDR ranges (10.0.0.0/8), or the names loopback, linklocal, uniquelocal';
const trustedProxyList = z
  .string()
  .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
  .refine((entries) => {
    try {
      proxyaddr.compile(entries);
      return true;
    } catch {
      return false;
    }
  }, TRUSTED_PROXIES_FORMAT);
const WORKERS_RANGE = 'WORKERS must be a whole number from 1 to 256, or auto';

export const TRACE_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

/** Where and how traces go (OTEL_* variables); unset when tracing is off. */
export interface TracingSettings {
  serviceName: string;
  /** The OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  tracesUrl: string;
  sampler: (typeof TRACE_SAMPLERS)[number];
  /** For the traceidratio samplers (OTEL_TRACES_SAMPLER_ARG, default 1). */
  samplerRatio: number;
}

const httpUrl = (variable: string) =>
  z.string().trim().refine((value) => {
    try {
      return ['http:', 'https:'].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `${variable} must be an http(s) URL`);

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  // Unset: 127.0.0.1 in development and test (the playground and printed tokens stay on this
  // machine), 0.0.0.0 in production (a container's port is published from outside it).
  HOST: z.string().trim().min(1).optional(),
  // A separate port for GET /metrics (only the monitoring network reaches it); unset: the main port.
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  REDIS_URL: urlWithProtocols('REDIS_URL', ['redis:', 'rediss:']).optional(),
  REDIS_CLUSTER_NODES: hostPortList('REDIS_CLUSTER_NODES').optional(),
  REDIS_SENTINELS: hostPortList('REDIS_SENTINELS').optional(),
  REDIS_SENTINEL_MASTER: z.string().trim().min(1).max(200).regex(/^[^\s]+$/, 'REDIS_SENTINEL_MASTER must be a master name without spaces').optional(),
  MONGODB_URI: urlWithProtocols('MONGODB_URI', ['mongodb:', 'mongodb+srv:']).optional(),
  JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
  // Claims per second; 0 turns a limit off. Per user: fast clicking reaches 6-8 per second,
  // so 10 is one a person cannot exceed by hand while a script hammering at 50 is held to it.
  CLAIM_RATE_PER_USER: nonNegativeInt.default(10),
  // Per address (IPv6: per /56): 300 in one second is 300 people behind one office NAT clicking
  // in the same second, which an office does not do; carrier-grade NATs may need more.
  CLAIM_RATE_PER_IP: nonNegativeInt.default(300),
  // Cancels and redeems per second, per user, together; 0 turns the limit off. A person redeems
  // or cancels a few times a day; 5 in one second is a script, and each cancel moves stock.
  LIFECYCLE_RATE_PER_USER: nonNegativeInt.default(5),
  // Every GraphQL request over HTTP is charged its cost (the request limits' measure: a claim ~50,
  // one coupon ~10, 15 full coupons 210) per second, per address and per user (docs/operations.md).
  // Per address: CLAIM_RATE_PER_IP claims at ~50 each, with room for their pages' reads.
  // Unset outside production: off, so that the playground's schema reads and a developer's retries
  // are never refused on a laptop (the defaults below apply when NODE_ENV=production).
  READ_COST_PER_IP: nonNegativeInt.optional(),
  // Per user: 10 claims a second and a 15-coupon page refreshed several times a second.
  READ_COST_PER_USER: nonNegativeInt.optional(),
  // Documents this instance has not parsed before, per second from one address: a page sends a
  // handful of distinct documents, and each is new only to the first of all clients to send it.
  NEW_DOCUMENTS_PER_IP: nonNegativeInt.optional(),
  // How long an ENDED coupon's claim state stays in Redis after its end (a late write settles meanwhile).
  ENDED_STATE_RETENTION_MS: z.coerce.number().int().min(0).max(30 * 86_400_000).default(600_000),
  // Reverse proxies believed about the client's address (X-Forwarded-For); unset: none.
  TRUSTED_PROXIES: trustedProxyList.optional(),
  PLAYGROUND_ENABLED: z.enum(['true', 'false']).optional(),
  INTROSPECTION_ENABLED: z.enum(['true', 'false']).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // 2000 leaves the contract's 3 s a full second for what no timer covers: accepting the
  // connection, admission, event-loop lag when hundreds of claims time out together.
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3000).default(2000),
  GROUP_COMMIT_WINDOW_MS: z.coerce.number().int().min(0).max(100).default(3),
  GROUP_COMMIT_MAX_BATCH: z.coerce.number().int().min(1).max(10000).default(500),
  GROUP_COMMIT_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(64).default(2),
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(100).default(5000),
  // GraphQL requests processed at once (0 = no limit); the rest queue for at most
  // MAX_QUEUE_WAIT_MS, then hear SERVICE_UNAVAILABLE, so a burst beyond capacity is answered in time.
  MAX_CONCURRENT_REQUESTS: nonNegativeInt.default(128),
  MAX_QUEUE_WAIT_MS: z.coerce.number().int().min(0).max(2500).default(1000),
  MAX_QUEUED_REQUESTS: nonNegativeInt.default(256),
  // Event-loop lag (ms) from which a share of new GraphQL requests is refused; 0 = off.
  MAX_EVENT_LOOP_LAG_MS: nonNegativeInt.default(200),
  // Claims decided in MongoDB alone, for load comparison only: 'db-lock' as before the Redis gate
  // (a lock on the coupon held across the claim's round trips), 'db-atomic' with one conditional $inc.
  CLAIM_STRATEGY: z.enum(['redis', 'db-lock', 'db-atomic']).default('redis'),
  // Distinct GraphQL documents kept compiled (graphql-jit) after Apollo accepted them; 0 = off.
  COMPILED_OPERATIONS_MAX: nonNegativeInt.max(100_000).default(500),
  // Service processes sharing the port; 'auto' is one per core this process may use.
  // WebSocket limits, per instance (per worker); 0 turns one off. Defaults for a public service:
  // 100 connections per address is a busy office or a small carrier NAT watching a drop;
  // load tests from one machine raise WS_MAX_CONNECTIONS_PER_IP and the subscribe rates (or set 0).
  WS_MAX_CONNECTIONS_PER_IP: nonNegativeInt.default(100),
  // Subscribe messages per second on one connection, after a burst of 20 + this (a page filling every slot at once).
  WS_SUBSCRIBE_RATE_PER_CONNECTION: nonNegativeInt.default(5),
  // Subscribe messages per second from one address over all its connections.
  WS_SUBSCRIBE_RATE_PER_IP: nonNegativeInt.default(100),
  // A connection with no subscription for this long is closed (1000).
  WS_IDLE_TIMEOUT_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  // A connection is closed (1000) after this long, spread over its last tenth; clients reconnect.
  WS_MAX_CONNECTION_AGE_MS: z.coerce.number().int().min(0).max(7 * 86_400_000).default(3_600_000),
  // OpenTelemetry's standard variables (traces only); no endpoint, or OTEL_SDK_DISABLED=true: tracing off.
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional(),
  OTEL_SERVICE_NAME: z.string().trim().min(1).max(200).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl('OTEL_EXPORTER_OTLP_ENDPOINT').optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT').optional(),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).optional(),
  OTEL_TRACES_SAMPLER: z.enum(TRACE_SAMPLERS).default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0, 'OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1').max(1, 'OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1').optional(),
  // Webhooks (v3). Unset: false when NODE_ENV=production, true otherwise (a receiver on this machine).
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: z.enum(['true', 'false']).optional(),
  // Delays (ms, comma-separated) after the 1st, 2nd, ... failed attempt; unset: the Standard Webhooks
  // schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). Shorter lists are for tests and benches only.
  WEBHOOK_RETRY_DELAYS_MS: z
    .string()
    .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, 'WEBHOOK_RETRY_DELAYS_MS must be a comma-separated list of milliseconds')
    .transform((value) => value.split(',').map((part) => Number(part.trim())))
    .optional(),
  // Time limit of one delivery attempt; the contract's 10 s is the most.
  WEBHOOK_ATTEMPT_TIMEOUT_MS: z.coerce.number().int().min(100).max(10_000).default(10_000),
  // Delivery attempts in flight per webhook on one instance.
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  WORKERS: z.union([z.literal('auto'), z.coerce.number().int(WORKERS_RANGE).min(1, WORKERS_RANGE).max(256, WORKERS_RANGE)], { error: WORKERS_RANGE }).default(1),
});

export interface Config {
  env: 'development' | 'test' | 'production';
  port: number;
  /** The address both ports listen on. */
  host: string;
  /** GET /metrics only on this port when set (0: a free port); unset: on the main port. */
  metricsPort?: number;
  /** REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS; unset: an embedded redis-server is started (never in production). */
  redis?: RedisTarget;
  /** Unset: an embedded MongoDB-compatible server is started (never in production). */
  mongoUri?: string;
  /** Unset: a random per-start secret, with dev tokens printed (never in production). */
  jwtSecret?: string;
  claimRatePerUser: number;
  lifecycleRatePerUser: number;
  claimRatePerIp: number;
  /** Cost units per second of GraphQL requests per address / per user, and new documents per second per address; 0 = off. */
  readCostPerIp: number;
  readCostPerUser: number;
  newDocumentsPerIp: number;
  /** How long an ENDED coupon's claim state stays in Redis after its end. */
  endedStateRetentionMs: number;
  /** Proxies whose X-Forwarded-For names the client (addresses, CIDR ranges, proxy-addr names); empty: the socket's peer is the client. */
  trustedProxies: string[];
  playgroundEnabled: boolean;
  introspectionEnabled: boolean;
  logLevel: string;
  /** Budget for one request; below the contract's 3 s so the answer leaves in time. */
  requestTimeoutMs: number;
  groupCommitWindowMs: number;
  groupCommitMaxBatch: number;
  /** Group-commit batches written at once; more wait in the queue and go out together. */
  groupCommitMaxInFlight: number;
  reconcileIntervalMs: number;
  /** GraphQL requests processed at once; 0 turns admission off. */
  maxConcurrentRequests: number;
  /** Longest a GraphQL request waits for admission before SERVICE_UNAVAILABLE. */
  maxQueueWaitMs: number;
  /** GraphQL requests allowed to wait for admission; beyond it they are refused at once. */
  maxQueuedRequests: number;
  /** Event-loop lag from which new GraphQL requests are refused (a share, rising with the lag); 0 turns it off. */
  maxEventLoopLagMs: number;
  /** Where a claim is decided: the Redis gate, or (load comparison only, never in service) MongoDB with a lock or one atomic update. */
  claimStrategy: 'redis' | 'db-lock' | 'db-atomic';
  /** Distinct documents answered by their compiled form once Apollo accepted them; 0 sends everything through Apollo. */
  compiledOperationsMax: number;
  /** Service processes sharing the port (node:cluster); 1 runs the service in this process. */
  workers: number;
  /** Webhook delivery (v3): private-network targets allowed, retry delays, attempt limit, attempts in flight per webhook. */
  webhooks: {
    allowPrivateNetworks: boolean;
    /** Undefined: the Standard Webhooks schedule (src/events/retry-schedule.ts). */
    retryDelaysMs?: number[];
    attemptTimeoutMs: number;
    concurrency: number;
  };
  /** WebSocket connections one client address may hold on this instance; 0: no cap. */
  wsMaxConnectionsPerIp: number;
  /** Subscribe messages per second per connection (after a burst of 20 + this); 0: no limit. */
  wsSubscribeRatePerConnection: number;
  /** Subscribe messages per second per client address; 0: no limit. */
  wsSubscribeRatePerIp: number;
  /** A connection without a subscription for this long is closed; 0: never. */
  wsIdleTimeoutMs: number;
  /** Longest life of a connection before the server closes it (1000) for the client to reconnect; 0: no limit. */
  wsMaxConnectionAgeMs: number;
  /** OpenTelemetry traces; unset: off (no SDK loaded). */
  tracing?: TracingSettings;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset", the way shells and compose files usually pass them.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const message = issue.message.startsWith(variable) ? issue.message : `${variable}: ${issue.message}`;
    throw new ConfigError(`configuration error: ${message}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const redis = redisTargetOf(e, production);
  if (production) {
    for (const variable of ['MONGODB_URI', 'JWT_SECRET'] as const) {
      if (!e[variable]) {
        throw new ConfigError(`configuration error: ${variable} must be set when NODE_ENV=production`);
      }
    }
    if (e.CLAIM_STRATEGY !== 'redis') {
      throw new ConfigError(`configuration error: CLAIM_STRATEGY=${e.CLAIM_STRATEGY} is for load comparison only and not allowed when NODE_ENV=production`);
    }
  }
  if (e.MONGODB_URI && !mongoDatabaseName(e.MONGODB_URI)) {
    throw new ConfigError('configuration error: MONGODB_URI must name the database in its path, e.g. mongodb://host:27017/coupons');
  }
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST ?? (production ? '0.0.0.0' : '127.0.0.1'),
    metricsPort: e.METRICS_PORT,
    redis,
    mongoUri: e.MONGODB_URI,
    jwtSecret: e.JWT_SECRET,
    claimRatePerUser: e.CLAIM_RATE_PER_USER,
    lifecycleRatePerUser: e.LIFECYCLE_RATE_PER_USER,
    claimRatePerIp: e.CLAIM_RATE_PER_IP,
    readCostPerIp: e.READ_COST_PER_IP ?? (production ? 30_000 : 0),
    readCostPerUser: e.READ_COST_PER_USER ?? (production ? 3_000 : 0),
    newDocumentsPerIp: e.NEW_DOCUMENTS_PER_IP ?? (production ? 20 : 0),
    endedStateRetentionMs: e.ENDED_STATE_RETENTION_MS,
    trustedProxies: e.TRUSTED_PROXIES ?? [],
    playgroundEnabled: e.PLAYGROUND_ENABLED ? e.PLAYGROUND_ENABLED === 'true' : !production,
    introspectionEnabled: e.INTROSPECTION_ENABLED ? e.INTROSPECTION_ENABLED === 'true' : !production,
    logLevel: e.LOG_LEVEL,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    groupCommitWindowMs: e.GROUP_COMMIT_WINDOW_MS,
    groupCommitMaxBatch: e.GROUP_COMMIT_MAX_BATCH,
    groupCommitMaxInFlight: e.GROUP_COMMIT_MAX_IN_FLIGHT,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    maxConcurrentRequests: e.MAX_CONCURRENT_REQUESTS,
    maxQueueWaitMs: e.MAX_QUEUE_WAIT_MS,
    maxQueuedRequests: e.MAX_QUEUED_REQUESTS,
    maxEventLoopLagMs: e.MAX_EVENT_LOOP_LAG_MS,
    claimStrategy: e.CLAIM_STRATEGY,
    compiledOperationsMax: e.COMPILED_OPERATIONS_MAX,
    workers: e.WORKERS === 'auto' ? availableParallelism() : e.WORKERS,
    webhooks: {
      allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS ? e.WEBHOOK_ALLOW_PRIVATE_NETWORKS === 'true' : !production,
      retryDelaysMs: e.WEBHOOK_RETRY_DELAYS_MS,
      attemptTimeoutMs: e.WEBHOOK_ATTEMPT_TIMEOUT_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
    },
    wsMaxConnectionsPerIp: e.WS_MAX_CONNECTIONS_PER_IP,
    wsSubscribeRatePerConnection: e.WS_SUBSCRIBE_RATE_PER_CONNECTION,
    wsSubscribeRatePerIp: e.WS_SUBSCRIBE_RATE_PER_IP,
    wsIdleTimeoutMs: e.WS_IDLE_TIMEOUT_MS,
    wsMaxConnectionAgeMs: e.WS_MAX_CONNECTION_AGE_MS,
    tracing: tracingOf(e),
  };
}

/** Tracing is on when an OTLP endpoint is given, unless the SDK or the traces exporter is turned off. */
function tracingOf(e: z.infer<typeof envSchema>): TracingSettings | undefined {
  if (e.OTEL_SDK_DISABLED === 'true' || e.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const tracesUrl = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (e.OTEL_EXPORTER_OTLP_ENDPOINT && `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (!tracesUrl) return undefined;
  return { serviceName: e.OTEL_SERVICE_NAME ?? 'coupon-service', tracesUrl, sampler: e.OTEL_TRACES_SAMPLER, samplerRatio: e.OTEL_TRACES_SAMPLER_ARG ?? 1 };
}

/** At most one Redis target (exactly one in production); a sentinel group needs its master's name, and only it. */
function redisTargetOf(e: z.infer<typeof envSchema>, production: boolean): RedisTarget | undefined {
  const given = REDIS_TARGET_VARIABLES.filter((variable) => e[variable] !== undefined);
  if (given.length > 1) {
    throw new ConfigError(`configuration error: ${given[1]} cannot be set together with ${given[0]}: set only one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS`);
  }
  if (e.REDIS_SENTINELS && !e.REDIS_SENTINEL_MASTER) {
    throw new ConfigError('configuration error: REDIS_SENTINEL_MASTER must name the master the sentinels watch when REDIS_SENTINELS is set');
  }
  if (e.REDIS_SENTINEL_MASTER && !e.REDIS_SENTINELS) {
    throw new ConfigError('configuration error: REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS');
  }
  if (production && given.length === 0) {
    throw new ConfigError('configuration error: REDIS_URL (or REDIS_CLUSTER_NODES, or REDIS_SENTINELS) must be set when NODE_ENV=production');
  }
  if (e.REDIS_URL) return { kind: 'single', url: e.REDIS_URL };
  if (e.REDIS_CLUSTER_NODES) return { kind: 'cluster', nodes: e.REDIS_CLUSTER_NODES };
  if (e.REDIS_SENTINELS) return { kind: 'sentinel', sentinels: e.REDIS_SENTINELS, name: e.REDIS_SENTINEL_MASTER! };
  return undefined;
}

/** The variable a Redis target came from, to name it in errors. */
export function redisVariable(target: RedisTarget): (typeof REDIS_TARGET_VARIABLES)[number] {
  return target.kind === 'single' ? 'REDIS_URL' : target.kind === 'cluster' ? 'REDIS_CLUSTER_NODES' : 'REDIS_SENTINELS';
}

/**
 * The environment that makes loadConfig read `target` back: how the primary hands a resolved
 * target (an embedded server's URL included) to its workers. The other variables are emptied, so
 * what the primary inherited cannot make a worker's configuration ambiguous.
 */
export function redisTargetEnv(target: RedisTarget): Record<string, string> {
  const hostPorts = (nodes: RedisNode[]) => nodes.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');
  return {
    REDIS_URL: target.kind === 'single' ? target.url : '',
    REDIS_CLUSTER_NODES: target.kind === 'cluster' ? hostPorts(target.nodes) : '',
    REDIS_SENTINELS: target.kind === 'sentinel' ? hostPorts(target.sentinels) : '',
    REDIS_SENTINEL_MASTER: target.kind === 'sentinel' ? target.name : '',
  };
}

export function mongoDatabaseName(uri: string): string | undefined {
  try {
    const name = decodeURIComponent(new URL(uri).pathname.replace(/^\//, ''));
    return name || undefined;
  } catch {
    return undefined;
  }
}
