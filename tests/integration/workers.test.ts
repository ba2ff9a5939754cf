/**
 * WORKERS > 1: the service as a node:cluster primary with N worker processes on one port, run
 * as an operator runs it (a child process), on a Redis and MongoDB of the test's own.
 */
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { freePort } from '../../src/infra/embedded';
import { healthStatus, runUntilExit, startChildService, type ChildService } from '../support/child-service';
import { createCoupon } from '../support/graphql';
import { adminToken, startStack, userToken, type Stack } from '../support/stack';
import { claimLikeAClient, expectConverges, expectNoOversellNoDoubleNothingLost, finalAnswers, openModels, summarize, within, type ClaimAnswer, type MongoView } from './faults/contract';

let stack: Stack;
let mongo: MongoView;
const started: ChildService[] = [];

beforeAll(async () => {
  stack = await startStack();
  mongo = await openModels(stack.mongo.url);
});

afterAll(async () => {
  await Promise.all(started.map((service) => service.stop()));
  await mongo?.close();
  await stack?.stop();
});

async function startWorkers(count: number, env: Record<string, string> = {}): Promise<ChildService> {
  const service = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env: { WORKERS: String(count), LOG_LEVEL: 'info', ...env } });
  started.push(service);
  // Healthy means one worker listens; the primary says 'coupon service ready' once all do.
  await within(30_000, 'all workers ready', async () => service.logLines(/^coupon service ready$/).length === 1);
  return service;
}

/** A /proc file's text; empty once the process is gone. */
function readProc(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

const runsMain = (pid: number) => readProc(`/proc/${pid}/cmdline`).includes('src/main.ts');

/** The workers: the primary's child processes running src/main.ts (cluster.fork keeps tsx's --import). */
function workerPids(primaryPid: number): number[] {
  const tasks = fs.readdirSync(`/proc/${primaryPid}/task`);
  const children = tasks.flatMap((task) => readProc(`/proc/${primaryPid}/task/${task}/children`).split(' ').filter(Boolean).map(Number));
  return children.filter((pid) => runsMain(pid) && isRunning(pid));
}

/** State, parent and CPU time in clock ticks from /proc/<pid>/stat; undefined once the process is gone. */
function procStat(pid: number): { state: string; parent: number; cpuTicks: number } | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.replace(/^.*\) /s, '').split(' ');
  return { state: fields[0]!, parent: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}
const isRunning = (pid: number) => (procStat(pid)?.state ?? 'Z') !== 'Z';

/** Sum of a counter's samples over all label values, from one GET /metrics on a fresh connection. */
function scrapeCounter(url: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/metrics`, { agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          const samples = body.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
          resolve(samples.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0));
        });
      })
      .on('error', reject);
  });
}

async function drop(service: ChildService, name: string, stock: number, userCount: number) {
  const couponId = await createCoupon(service.url, await adminToken(), { name, totalQuantity: stock });
  const users = Array.from({ length: userCount }, (_, i) => `${name}-${i}`);
  const tokens = new Map(await Promise.all(users.map(async (u) => [u, await userToken(u)] as const)));
  return { couponId, users, tokens };
}

test('two workers share a drop: 800 users on a stock of 300 get exactly 300, both workers serve, and /metrics counts every claim of both', async () => {
  const service = await startWorkers(2);
  const pids = workerPids(service.pid);
  expect(pids).toHaveLength(2);
  const { couponId, users, tokens } = await drop(service, 'workers-drop', 300, 800);

  const cpuBefore = pids.map((pid) => procStat(pid)!.cpuTicks);
  const attempts = await Promise.all(users.map((user) => claimLikeAClient(service.url, couponId, user, tokens.get(user)!)));
  // Connections are spread over the workers, so each spent a real share of the CPU time the drop
  // took (idle, a worker uses 2 or 3 ticks a second; serving half of this drop, 40 to 130 in all).
  const cpuUsed = pids.map((pid, i) => procStat(pid)!.cpuTicks - cpuBefore[i]!);
  const answers = attempts.flat();
  console.log(`workers drop: ${JSON.stringify(summarize(finalAnswers(attempts)))} in ${answers.length} answers; CPU ticks per worker ${cpuUsed}`);
  for (const ticks of cpuUsed) expect(ticks / (cpuUsed[0]! + cpuUsed[1]!)).toBeGreaterThan(0.2);

  expect(finalAnswers(attempts).filter((a) => !a.status)).toEqual([]);
  const docs = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, 300, answers);
  expect(docs).toHaveLength(300);
  expect(finalAnswers(attempts).filter((a) => a.status === 'ISSUED')).toHaveLength(300);

  // Every answer is a claim outcome (coupon_claims_total) or a request shed by a worker's
  // admission control before it reached the claim (coupon_requests_shed_total). Whichever worker
  // answers the scrape, it reports both workers' counts.
  for (let scrape = 0; scrape < 4; scrape++) {
    const [claims, shed] = await Promise.all([scrapeCounter(service.url, 'coupon_claims_total'), scrapeCounter(service.url, 'coupon_requests_shed_total')]);
    expect(claims + shed).toBe(answers.length);
  }
  await expectConverges(service.url, mongo.models, couponId, 300);
}, 90_000);

test('a worker killed with kill -9 mid-drop is replaced while the other keeps serving, and the drop still sells out exactly', async () => {
  // A 50 ms group-commit window leaves reservations unwritten when the kill lands; the surviving
  // worker's reconciler must settle them.
  const service = await startWorkers(2, { RECONCILE_INTERVAL_MS: '200', GROUP_COMMIT_WINDOW_MS: '50' });
  const [victim, survivor] = workerPids(service.pid);
  const stock = 400;
  const { couponId, users, tokens } = await drop(service, 'workers-kill', stock, 1000);

  let issued = 0;
  const before: ClaimAnswer[] = [];
  const answered = new Set<string>();
  const onAnswer = (answer: ClaimAnswer) => void (before.push(answer), answer.status === 'ISSUED' && (issued += 1));
  for (const user of users) void claimLikeAClient(service.url, couponId, user, tokens.get(user)!, { onAnswer }).then(() => answered.add(user));
  await within(30_000, '50 ISSUED answered', async () => issued >= 50, 2);
  process.kill(victim!, 'SIGKILL');
  // Guarantee 5: every request gets an answer (or, on the killed worker, a cut connection); none hangs.
  await within(20_000, 'every claim of the drop answered', async () => answered.size === users.length).catch(() => undefined);
  const hanging = users.filter((user) => !answered.has(user));
  console.log(`workers kill: answers around the kill ${JSON.stringify(summarize(before))}; ${hanging.length} requests still unanswered 20 s later`);

  await within(5_000, 'healthz 200 again', async () => (await healthStatus(service.url, 1000)) === 200);
  await within(20_000, "log lines 'worker died; starting a replacement' and 'replacement worker ready'", async () =>
    service.logLines(/^worker died; starting a replacement$/).length === 1 && service.logLines(/^replacement worker ready$/).length === 1,
  );
  expect(service.logLines(/^worker died/)[0]).toMatchObject({ pid: victim, signal: 'SIGKILL' });
  const now = workerPids(service.pid);
  expect(now).toHaveLength(2);
  expect(now).toContain(survivor);
  expect(now).not.toContain(victim);
  expect(isRunning(victim!)).toBe(false);

  await expectConverges(service.url, mongo.models, couponId, stock);
  // Users cut off by the kill (or left hanging) try again, as a real client does, until everyone has an answer.
  const cutOff = users.filter((user) => hanging.includes(user) || !before.some((a) => a.user === user && a.status));
  const after = finalAnswers(await Promise.all(cutOff.map((user) => claimLikeAClient(service.url, couponId, user, tokens.get(user)!))));
  expect(after.filter((a) => !a.status)).toEqual([]);
  const docs = await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, stock, [...before, ...after]);
  expect(docs).toHaveLength(stock);
  await expectConverges(service.url, mongo.models, couponId, stock);
  expect({ unansweredAfter20s: hanging }).toEqual({ unansweredAfter20s: [] });
}, 120_000);

test('SIGTERM to the primary stops every worker gracefully and the primary exits 0 within 15 s', async () => {
  const service = await startWorkers(2);
  const pids = workerPids(service.pid);
  expect(pids).toHaveLength(2);
  const { couponId, users, tokens } = await drop(service, 'workers-term', 100, 300);

  // Stopped while claims are in flight: whatever was answered ISSUED is in MongoDB.
  let answered = 0;
  const claims = Promise.all(users.map((user) => claimLikeAClient(service.url, couponId, user, tokens.get(user)!, { onAnswer: () => (answered += 1) })));
  await within(20_000, '20 answers', async () => answered >= 20, 2);
  const sent = performance.now();
  const exit = await service.stop();
  const stopMs = performance.now() - sent;
  console.log(`workers SIGTERM: primary exited ${JSON.stringify(exit)} after ${stopMs.toFixed(0)} ms; slow stop steps: ${JSON.stringify(service.logLines(/graceful stop: a slow step/))}`);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(stopMs).toBeLessThan(15_000);
  expect(pids.filter(isRunning)).toEqual([]);
  // Both workers ran their own graceful stop, each logging under its cluster worker id.
  const workerIds = service.logLines(/^stopped$/).map((line) => line.worker).filter((id) => id !== undefined);
  expect(new Set(workerIds).size).toBe(2);
  expect(service.logLines(/worker died/)).toEqual([]);

  await expectNoOversellNoDoubleNothingLost(mongo.models, couponId, 100, (await claims).flat());
});

/**
 * Worker processes of the service on `port`: processes running src/main.ts started with that PORT
 * whose parent was too (tsx's esbuild helper also inherits the environment, but runs no main.ts).
 */
function workersOnPort(port: number): number[] {
  const startedWith = (pid: number) => readProc(`/proc/${pid}/environ`).split('\0').includes(`PORT=${port}`);
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => startedWith(pid) && runsMain(pid) && isRunning(pid) && startedWith(procStat(pid)?.parent ?? 0));
}

test('a worker killed while the service starts is started again, and the start succeeds', async () => {
  const port = await freePort();
  const starting = startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, port, env: { WORKERS: '2', LOG_LEVEL: 'info' } });
  // A worker takes over a second to connect and listen; the first one seen is killed well before.
  let victim: number | undefined;
  await within(20_000, 'a worker process', async () => (victim = workersOnPort(port)[0]) !== undefined, 10);
  process.kill(victim!, 'SIGKILL');
  const service = await starting;
  started.push(service);
  await within(30_000, 'all workers ready', async () => service.logLines(/^coupon service ready$/).length === 1);
  expect(service.logLines(/^worker crashed while starting; starting it again$/)).toHaveLength(1);
  expect(workerPids(service.pid)).toHaveLength(2);
  expect(workerPids(service.pid)).not.toContain(victim);
  expect(await healthStatus(service.url)).toBe(200);
});

test('with WORKERS=2, a port already in use stops the start with one line naming PORT and a non-zero exit', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const result = await runUntilExit({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, port, env: { WORKERS: '2' } });
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    const lines = result.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(new RegExp(`^PORT: .*${port}`));
  } finally {
    blocker.close();
  }
});
