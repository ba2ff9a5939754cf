/**
 * Runs the real service as a child process (`node --import tsx src/main.ts`), the way an operator
 * runs it, so fault tests can kill it with SIGKILL and start it again on the same Redis and
 * MongoDB, or watch it refuse to start. One node process, no wrapper: a signal reaches the service itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { redisTargetEnv, type RedisTarget } from '../../src/config';
import { freePort } from '../../src/infra/embedded';
import { TEST_SECRET } from './stack';

const ROOT = path.resolve(__dirname, '../..');
const READY_TIMEOUT_MS = 45_000;
/** Enough of the service's output to find a log line or show why it failed. */
const OUTPUT_LIMIT = 4 * 1024 * 1024;

export interface ChildServiceOptions {
  /** A single Redis; or pass `redis` for a cluster or a sentinel group. */
  redisUrl?: string;
  redis?: RedisTarget;
  mongoUri: string;
  /** Default: a free port chosen here. Pass the old port to restart "the same" service. */
  port?: number;
  /** Extra environment, e.g. { RECONCILE_INTERVAL_MS: '200' }. */
  env?: Record<string, string>;
  /** How long to wait for GET /healthz to answer 200 (default 45 s). */
  readyTimeoutMs?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildService {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** stdout and stderr so far (the service logs JSON lines to stdout). */
  output(): string;
  /** Log lines (parsed JSON) whose `msg` matches. */
  logLines(msg: RegExp): Array<Record<string, unknown>>;
  readonly exited: Promise<Exit>;
  /** SIGKILL: no shutdown hook runs, in-flight requests and writes die with the process. */
  kill9(): Promise<Exit>;
  /** SIGTERM, the graceful stop; SIGKILL after 15 s. */
  stop(): Promise<Exit>;
}

function serviceEnv(options: ChildServiceOptions, port: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ...redisTargetEnv(options.redis ?? { kind: 'single', url: options.redisUrl! }),
    MONGODB_URI: options.mongoUri,
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'warn',
    CLAIM_RATE_PER_USER: '0',
    CLAIM_RATE_PER_IP: '0',
    READ_COST_PER_IP: '0',
    READ_COST_PER_USER: '0',
    NEW_DOCUMENTS_PER_IP: '0',
    ...options.env,
  };
}

interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
}

/**
 * The service's output goes to files, not pipes: pino writes synchronously, and a pipe that the
 * busy test process drains late would stall the service in write(2), a delay of the harness's own.
 */
function spawnMain(env: NodeJS.ProcessEnv): Spawned {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coupon-service-'));
  const files = { stdout: path.join(dir, 'stdout.log'), stderr: path.join(dir, 'stderr.log') };
  const fds = { stdout: fs.openSync(files.stdout, 'w'), stderr: fs.openSync(files.stderr, 'w') };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', fds.stdout, fds.stderr] });
  fs.closeSync(fds.stdout);
  fs.closeSync(fds.stderr);
  const read = (file: string) => {
    const text = fs.readFileSync(file, 'utf8');
    return text.length > OUTPUT_LIMIT ? text.slice(-OUTPUT_LIMIT) : text;
  };
  // Once the process is gone its output is kept in memory and the files removed.
  let final: { stdout: string; stderr: string } | undefined;
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      final = { stdout: read(files.stdout), stderr: read(files.stderr) };
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal });
    }),
  );
  return { child, stdout: () => final?.stdout ?? read(files.stdout), stderr: () => final?.stderr ?? read(files.stderr), exited };
}

export function healthStatus(url: string, timeoutMs = 3000): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}/healthz`, { agent: false, timeout: timeoutMs }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
    });
    request.on('timeout', () => request.destroy(new Error(`healthz took longer than ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** Starts the service and resolves once GET /healthz answers 200. */
export async function startChildService(options: ChildServiceOptions): Promise<ChildService> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const { child, stdout, stderr, exited } = spawnMain(serviceEnv(options, port));
  const output = () => stdout() + stderr();
  let exit: Exit | undefined;
  void exited.then((e) => (exit = e));

  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exit) throw new Error(`service exited (${JSON.stringify(exit)}) before it was healthy:\n${output().slice(-2000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service not healthy after ${readyTimeoutMs} ms:\n${output().slice(-2000)}`);
    }
    if ((await healthStatus(url, 1000).catch(() => 0)) === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const signalAndWait = async (signal: NodeJS.Signals, forceAfterMs?: number) => {
    if (!exit) child.kill(signal);
    const force = forceAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), forceAfterMs);
    const result = await exited;
    clearTimeout(force);
    return result;
  };
  return {
    url,
    port,
    pid: child.pid!,
    output,
    logLines: (msg) =>
      output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {
            return {};
          }
        })
        .filter((line) => typeof line.msg === 'string' && msg.test(line.msg)),
    exited,
    kill9: () => signalAndWait('SIGKILL'),
    stop: () => signalAndWait('SIGTERM', 15_000),
  };
}

/** Runs the service expecting it to refuse to start; resolves with how it exited and what it printed. */
export async function runUntilExit(options: ChildServiceOptions, timeoutMs = 30_000): Promise<Exit & { stdout: string; stderr: string }> {
  const { child, stdout, stderr, exited } = spawnMain(serviceEnv(options, options.port ?? (await freePort())));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await exited;
  clearTimeout(timer);
  return { ...exit, stdout: stdout(), stderr: stderr() };
}
