/**
 * Starts the local servers used when REDIS_URL / MONGODB_URI are unset (development) and by the
 * integration tests: a `redis-server` from PATH and the MongoDB-compatible server shipped in
 * `@jongodb/memory-server-bin-linux-x64-gnu`. Each listens on a free loopback port.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface EmbeddedServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Sends a signal without waiting (SIGSTOP/SIGCONT for stall tests, SIGKILL for crashes). */
  signal(signal: NodeJS.Signals): void;
  /** The process has not exited (yet). */
  alive(): boolean;
  stop(): Promise<void>;
}

/**
 * A loopback port free now, for a server started next. Drawn below the kernel's ephemeral range
 * (32768-60999 by default): a port that listen(0) hands out comes from that range, where any
 * outgoing connection of this machine may take it before the server binds it. Falls back to
 * listen(0) where the range leaves no room.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralRangeStart();
  if (low > PRIVATE_PORTS_FROM + 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = PRIVATE_PORTS_FROM + Math.floor(Math.random() * (low - PRIVATE_PORTS_FROM));
      if (await bindBriefly(port).then(() => true, () => false)) return port;
    }
  }
  return bindBriefly(0);
}

/** Below the well-known services' usual ports. */
const PRIVATE_PORTS_FROM = 10_000;

function ephemeralRangeStart(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}

/** Listens on `port` (0: any) on loopback and closes again: the port bound, or the bind's error. */
function bindBriefly(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => {
      const bound = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(bound));
    });
  });
}

export interface RedisServerOptions {
  port?: number;
  /** Extra `--name value` arguments, e.g. { 'maxmemory-policy': 'noeviction' }; a value with spaces is several arguments ({ replicaof: '127.0.0.1 6379' }). */
  settings?: Record<string, string>;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<EmbeddedServer> {
  const port = options.port ?? (await freePort());
  const settings: Record<string, string> = {
    bind: '127.0.0.1',
    save: '',
    appendonly: 'no',
    'maxmemory-policy': 'noeviction',
    ...options.settings,
  };
  const args = ['--port', String(port), ...Object.entries(settings).flatMap(([k, v]) => [`--${k}`, ...v.split(' ')])];
  return spawnRedisServer(args, port, /Ready to accept connections/);
}

/**
 * Runs `redis-server` with these arguments (a config file first for a sentinel), resolving once
 * a line of its output matches `ready`.
 */
export async function spawnRedisServer(args: string[], port: number, ready: RegExp): Promise<EmbeddedServer> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForOutput(child, ready, 'redis-server', 10_000);
  return wrap(child, `redis://127.0.0.1:${port}`, port);
}

export interface MongoServerOptions {
  port?: number;
  /** Database named in the returned URI. */
  database?: string;
}

const JONGODB_PACKAGE = '@jongodb/memory-server-bin-linux-x64-gnu';

/** The server's binary; its package is a development dependency, absent from `npm ci --omit=dev`. */
export function jongodbBinary(): string {
  let manifest: string;
  try {
    manifest = require.resolve(`${JONGODB_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${JONGODB_PACKAGE} is not installed (it is a development dependency: run npm ci without --omit=dev, or set MONGODB_URI)`);
  }
  return path.join(path.dirname(manifest), 'bin', 'jongodb');
}

export async function startMongoServer(options: MongoServerOptions = {}): Promise<EmbeddedServer> {
  const port = options.port ?? (await freePort());
  const child = spawn(jongodbBinary(), [`--port=${port}`, '--topology-profile=singleNodeReplicaSet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const line = await waitForOutput(child, /JONGODB_URI=(\S+)/, 'MongoDB-compatible server', 30_000);
  const announced = new URL(line.match(/JONGODB_URI=(\S+)/)![1]!);
  announced.pathname = `/${options.database ?? 'coupons'}`;
  return wrap(child, announced.toString(), port);
}

function wrap(child: ChildProcess, url: string, port: number): EmbeddedServer {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Keep draining output so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url,
    port,
    pid: child.pid!,
    alive: () => child.exitCode === null && child.signalCode === null,
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function waitForOutput(child: ChildProcess, ready: RegExp, label: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const finish = (error?: Error, line?: string) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) {
        child.kill('SIGKILL');
        reject(error);
      } else resolve(line!);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const line = seen.split('\n').find((l) => ready.test(l));
      if (line) finish(undefined, line);
    };
    const onExit = (code: number | null) =>
      finish(new Error(`${label} exited with code ${code} before it was ready: ${seen.trim().split('\n').slice(-3).join(' | ')}`));
    const onError = (error: Error) => finish(new Error(`${label} could not be started: ${error.message}`));
    const timer = setTimeout(() => finish(new Error(`${label} was not ready after ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}
