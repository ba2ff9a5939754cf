/**
 * The system under load, started the way production starts it: fresh embedded redis-server and
 * MongoDB-compatible server (src/infra/embedded.ts) and the service as its own process
 * (src/main.ts), configured only through its environment, on 127.0.0.1. Used by the strategy
 * comparison and the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startMongoServer, startRedisServer } from '../../src/infra/embedded';
import { Authenticator } from '../../src/access/auth';

export const ROOT = path.join(__dirname, '..', '..');

export interface ServiceProcess {
  url: string;
  pid: number;
  mongoUri: string;
  jwtSecret: string;
  auth: Authenticator;
  /** The service process, for IPC when started with `ipc`. */
  child: ChildProcess;
  /** SIGTERM (graceful), then the embedded servers; SIGKILL if it takes over 15 s. */
  stop(): Promise<void>;
}

export interface ServiceProcessOptions {
  /** Extra service environment, e.g. { CLAIM_STRATEGY: 'db-lock' }. */
  env?: Record<string, string>;
  /** Node flags before the entry point, e.g. ['--cpu-prof']. */
  nodeArgs?: string[];
  /** Entry point relative to the repository root; default src/main.ts. TypeScript runs through tsx, JavaScript as it is. */
  entry?: string;
  /** Where the service's stdout and stderr go. */
  logFile: string;
  /** Open an IPC channel (for the bench's instrumented entry point). */
  ipc?: boolean;
  /**
   * Servers started by the caller and shared with other instances: the Redis target's variables
   * (REDIS_URL, REDIS_CLUSTER_NODES, ...), MongoDB and the signing key. Unset: fresh embedded
   * servers of this instance's own, stopped with it.
   */
  shared?: { redisEnv: Record<string, string>; mongoUri: string; jwtSecret: string };
}

export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const own = options.shared ? undefined : await Promise.all([startRedisServer(), startMongoServer({ database: 'load' })]);
  const redisEnv = options.shared?.redisEnv ?? { REDIS_URL: own![0].url };
  const mongoUri = options.shared?.mongoUri ?? own![1].url;
  const jwtSecret = options.shared?.jwtSecret ?? randomBytes(32).toString('base64url');
  const port = await freePort();
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = fs.openSync(options.logFile, 'w');
  const entry = options.entry ?? 'src/main.ts';
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...loader, entry], {
    cwd: ROOT,
    stdio: options.ipc ? ['ignore', log, log, 'ipc'] : ['ignore', log, log],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      ...redisEnv,
      MONGODB_URI: mongoUri,
      JWT_SECRET: jwtSecret,
      LOG_LEVEL: 'warn',
      PLAYGROUND_ENABLED: 'false',
      // One machine sends every claim: the per-user and per-address limits would measure themselves.
      CLAIM_RATE_PER_USER: '0',
      CLAIM_RATE_PER_IP: '0',
      READ_COST_PER_IP: '0',
      READ_COST_PER_USER: '0',
      NEW_DOCUMENTS_PER_IP: '0',
      // And every watcher connects from it: the WebSocket caps per address would too.
      WS_MAX_CONNECTIONS_PER_IP: '0',
      WS_SUBSCRIBE_RATE_PER_IP: '0',
      ...options.env,
    },
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stopInfra = () => Promise.all((own ?? []).map((server) => server.stop())).then(() => undefined);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child, options.logFile);
  } catch (error) {
    child.kill('SIGKILL');
    await stopInfra();
    throw error;
  }
  return {
    url,
    pid: child.pid!,
    mongoUri,
    jwtSecret,
    auth: new Authenticator(jwtSecret),
    child,
    stop: async () => {
      await stopChild(child, exited);
      await stopInfra();
    },
  };
}

async function waitHealthy(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}; see ${logFile}`);
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`service not healthy within 60 s; see ${logFile}`);
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Attempts of createCoupon answered SERVICE_UNAVAILABLE before giving up, a second apart. */
const CREATE_ATTEMPTS = 15;

/**
 * Creates a coupon through the public API, as an operator would: sent again, as an operator would,
 * while the service answers SERVICE_UNAVAILABLE (right after a load of wins, the embedded MongoDB
 * server can still be working through the group commit's backlog). A retried create whose first
 * attempt did land leaves an unused coupon behind, which no bench reads.
 */
export async function createCoupon(service: Pick<ServiceProcess, 'url' | 'auth'>, input: { name: string; totalQuantity: number }): Promise<string> {
  const token = await service.auth.issue('load-operator', { admin: true, expiresInSeconds: 3600 });
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'mutation($input: CreateCouponInput!) { createCoupon(input: $input) { id } }', variables: { input } }),
    });
    const body = (await response.json()) as { data?: { createCoupon?: { id: string } }; errors?: Array<{ extensions?: { code?: string } }> };
    if (body.data?.createCoupon) return body.data.createCoupon.id;
    const unavailable = body.errors?.some((error) => error.extensions?.code === 'SERVICE_UNAVAILABLE');
    if (!unavailable || attempt === CREATE_ATTEMPTS) throw new Error(`createCoupon failed after ${attempt} attempt(s): ${JSON.stringify(body.errors)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** The coupon as any client sees it. */
export async function readCoupon(service: ServiceProcess, id: string): Promise<{ remaining: number; issuedCount: number; status: string }> {
  const response = await fetch(`${service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'query($id: ID!) { coupon(id: $id) { remaining issuedCount status } }', variables: { id } }),
  });
  const body = (await response.json()) as { data: { coupon: { remaining: number; issuedCount: number; status: string } } };
  return body.data.coupon;
}
