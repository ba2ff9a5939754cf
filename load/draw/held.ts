/**
 * Held claims of an opening draw, through HTTP: N users claim inside the draw's window, spread
 * over `instances` service processes (src/main.ts) with their default admission settings, sharing
 * one Redis and one MongoDB, as a fleet does. Each user holds one connection, opened in the last
 * seconds before the opening (as a page that loaded the drop does; the service closes connections
 * idle for longer), and writes a request prepared in advance (load/support/held-connection.ts:
 * the clients share the service's two cores, so they must cost far less than it). The users are
 * split over client processes of at most 10,000 sockets each: a process here may open at most
 * 20,000 files, and so may each service process, which is why 20,000 entrants need two instances
 * on this machine.
 *
 * Arrivals: `burst` (everyone at the opening instant, the worst case) or `spread` (uniformly over
 * the window). A user refused SERVICE_UNAVAILABLE tries again as the drop page does (web/src/lib/
 * claim-policy.ts: at least the server's retry-after, plus jitter, at most 6 attempts).
 *
 * Reports:
 * - entrants recorded by the draw, final answers, attempts refused;
 * - held claims taken per second: entrants / time from the window's start to the last entry sent;
 * - memory per held claim: the services' RSS while holding minus before the window;
 * - the slowest single request (the contract's 3 s), and the window's end to the last answer.
 *
 * Usage: npm run bench:draw-held -- [entrants=2000] [units=100] [instances=1] [burst|spread] [windowMs=1000]
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startMongoServer, startRedisServer } from '../../src/infra/embedded';
import { Authenticator } from '../../src/access/auth';
import { preparedPost, HeldConnection, type HeldAnswer } from '../support/held-connection';
import { ROOT, startServiceProcess, type ServiceProcess } from '../support/service-process';

const SOCKETS_PER_CLIENT = 10_000;

type Arrival = 'burst' | 'spread';

function post(agent: http.Agent, url: string, body: object, token: string): Promise<any> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        try {
          resolve({ ...JSON.parse(raw), retryAfter: res.headers['retry-after'] });
        } catch {
          reject(new Error(`HTTP ${res.statusCode} ${raw.slice(0, 80)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

interface ServiceCounts {
  shed: Record<string, number>;
  writes: number;
  writeSeconds: number;
}
const SHED_REASONS = ['event_loop_lag', 'queue_full', 'waited_too_long'];

/** From an instance's /metrics: requests shed by reason, and the issuance writes (the draw's winners among them). */
async function serviceCounts(url: string): Promise<ServiceCounts> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
  return {
    shed: Object.fromEntries(SHED_REASONS.map((reason) => [reason, sum(new RegExp(`^coupon_requests_shed_total\\{[^}]*reason="${reason}"`))])),
    writes: sum(/^coupon_issuance_batch_write_seconds_count/),
    writeSeconds: sum(/^coupon_issuance_batch_write_seconds_sum/),
  };
}

/** What an instance did from `before` to `after`. */
function serviceAccount(before: ServiceCounts, after: ServiceCounts): string {
  const shed = SHED_REASONS.map((reason) => `${reason} ${after.shed[reason]! - before.shed[reason]!}`).join(', ');
  const writes = after.writes - before.writes;
  return `shed ${shed}; ${writes} issuance writes, ${(((after.writeSeconds - before.writeSeconds) * 1000) / Math.max(1, writes)).toFixed(0)} ms each on average`;
}

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ClientTask {
  url: string;
  couponId: string;
  jwtSecret: string;
  users: string[];
  startsAt: number;
  windowMs: number;
  arrival: Arrival;
}
interface ClientReport {
  /** Each user's final answer. */
  statuses: Record<string, number>;
  /** Attempts answered SERVICE_UNAVAILABLE (each followed by a retry, up to the sixth). */
  refused: number;
  slowestRequestMs: number;
  lastAnswerAt: number;
  lastSentAt: number;
  /** Connections that could not be opened before the opening. */
  connectFailures: number;
  /** How long opening them took. */
  connectMs: number;
}

const MAX_ATTEMPTS = 6;

/** Opens the users' connections this long before the opening: inside the service's keep-alive and header timeouts. */
const CONNECT_BEFORE_MS = 3000;
const CONNECT_BATCH = 500;

/** One client process: one connection per user opened just before the opening, a claim at `startsAt`, a report when all answered. */
async function client(task: ClientTask): Promise<ClientReport> {
  const auth = new Authenticator(task.jwtSecret);
  const { host, port } = new URL(task.url);
  const body = JSON.stringify({ query: 'mutation M($id: ID!) { claimCoupon(couponId: $id) { status } }', variables: { id: task.couponId } });
  const requests = task.users.map((user) => preparedPost(host, '/graphql', body, { authorization: `Bearer ${auth.issue(user)}` }));
  const connections = task.users.map(() => new HeldConnection(Number(port)));
  process.send!({ ready: true });
  while (Date.now() < task.startsAt - CONNECT_BEFORE_MS) await sleep(10);
  let connectFailures = 0;
  for (let from = 0; from < connections.length; from += CONNECT_BATCH) {
    await Promise.all(connections.slice(from, from + CONNECT_BATCH).map((connection) => connection.connect().catch(() => (connectFailures += 1))));
  }
  const connectedAt = Date.now();
  while (Date.now() < task.startsAt - 50) await sleep(10);
  while (Date.now() < task.startsAt) await new Promise((r) => setImmediate(r));
  const statuses: Record<string, number> = {};
  const count = (status: string) => (statuses[status] = (statuses[status] ?? 0) + 1);
  let lastAnswerAt = 0;
  let lastSentAt = 0;
  let refused = 0;
  let slowestRequestMs = 0;
  /** One user's press of the button: retried after SERVICE_UNAVAILABLE as the drop page does. */
  const press = async (i: number) => {
    for (let attempt = 1; ; attempt++) {
      const sent = Date.now();
      lastSentAt = Math.max(lastSentAt, sent);
      let answer: HeldAnswer;
      try {
        answer = await connections[i]!.send(requests[i]!);
      } catch (error) {
        return count(`connection: ${(error as Error).message}`);
      }
      lastAnswerAt = Date.now();
      slowestRequestMs = Math.max(slowestRequestMs, lastAnswerAt - sent);
      let reply: any;
      try {
        reply = JSON.parse(answer.body);
      } catch {
        return count(`http_${answer.status}`);
      }
      const status = reply.data?.claimCoupon?.status ?? reply.errors?.[0]?.extensions?.code ?? 'ERROR';
      if (status !== 'SERVICE_UNAVAILABLE' || attempt === MAX_ATTEMPTS) return count(status);
      refused += 1;
      // web/src/lib/claim-policy.ts: the server's hint is the floor, spread over as long again (at least the backoff).
      const backoff = Math.min(8000, 500 * 2 ** (attempt - 1));
      const floor = answer.retryAfter === undefined ? backoff : answer.retryAfter * 1000;
      await sleep(floor + Math.random() * Math.max(floor, backoff));
    }
  };
  await Promise.all(
    connections.map(async (_, i) => {
      if (task.arrival === 'spread') await sleep(Math.floor((i / connections.length) * task.windowMs));
      await press(i);
    }),
  );
  for (const connection of connections) connection.close();
  return { statuses, refused, slowestRequestMs, lastAnswerAt, lastSentAt, connectFailures, connectMs: connectedAt - (task.startsAt - CONNECT_BEFORE_MS) };
}

function runClient(task: ClientTask, onReady: () => void): Promise<ClientReport> {
  const child = fork(__filename, ['--client'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send(task);
  return new Promise((resolve, reject) => {
    child.on('message', (message: any) => (message.ready ? onReady() : resolve(message)));
    child.on('exit', (code) => code !== 0 && reject(new Error(`client exited with ${code}`)));
  });
}

async function main() {
  const [entrants = 2000, units = 100, instances = 1] = process.argv.slice(2, 5).map(Number);
  const arrival: Arrival = process.argv[5] === 'spread' ? 'spread' : 'burst';
  const windowMs = Number(process.argv[6] ?? 1000);
  const [redis, mongo] = await Promise.all([startRedisServer(), startMongoServer({ database: 'load' })]);
  const jwtSecret = randomBytes(32).toString('base64url');
  const services: ServiceProcess[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      services.push(await startServiceProcess({ logFile: path.join(ROOT, 'load', 'reports', `draw-held-service-${i}.log`), shared: { redisEnv: { REDIS_URL: redis.url }, mongoUri: mongo.url, jwtSecret } }));
    }
    const first = services[0]!;
    const admin = first.auth.issue('operator', { admin: true });
    const startsAt = Date.now() + 10_000 + Math.ceil(entrants / 1000) * 500;
    const created = await post(new http.Agent(), first.url, { query: 'mutation C($i: CreateCouponInput!) { createCoupon(input: $i) { id } }', variables: { i: { name: 'held', totalQuantity: units, startsAt: new Date(startsAt).toISOString(), openingDrawMs: windowMs } } }, admin);
    const couponId = created.data.createCoupon.id as string;

    // Users in slices of at most SOCKETS_PER_CLIENT, dealt to the instances in turn.
    const tasks: ClientTask[] = [];
    const perInstance = Math.ceil(entrants / instances);
    for (let i = 0; i < instances; i++) {
      const users = Array.from({ length: Math.min(perInstance, entrants - i * perInstance) }, (_, k) => `held-${i * perInstance + k}`);
      for (let from = 0; from < users.length; from += SOCKETS_PER_CLIENT) {
        tasks.push({ url: services[i]!.url, couponId, jwtSecret, users: users.slice(from, from + SOCKETS_PER_CLIENT), startsAt, windowMs, arrival });
      }
    }
    let ready = 0;
    const reports = tasks.map((task) => runClient(task, () => (ready += 1)));
    while (ready < tasks.length && Date.now() < startsAt - CONNECT_BEFORE_MS) await sleep(20);
    if (ready < tasks.length) throw new Error('the clients were not ready before the opening; start again on a quieter machine');
    while (Date.now() < startsAt - 200) await sleep(20);
    const rss = () => services.reduce((sum, s) => sum + rssKb(s.pid), 0);
    const rssBefore = rss();
    const countsBefore = await Promise.all(services.map((s) => serviceCounts(s.url)));
    while (Date.now() < startsAt + windowMs - 100) await sleep(10);
    const rssDuring = rss();
    const done = await Promise.all(reports);

    let entered: number | null = null;
    for (let i = 0; i < 300 && entered === null; i++) {
      // The service may still refuse at capacity (its answers are still going out): ask again.
      entered = (await post(new http.Agent(), first.url, { query: 'query Q($id: ID!) { coupon(id: $id) { drawEntrants } }', variables: { id: couponId } }, admin)).data?.coupon?.drawEntrants ?? null;
      if (entered === null) await sleep(100);
    }
    const statuses: Record<string, number> = {};
    for (const report of done) for (const [status, n] of Object.entries(report.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
    const lastSentAt = Math.max(...done.map((r) => r.lastSentAt));
    const lastAnswerAt = Math.max(...done.map((r) => r.lastAnswerAt));
    const entryMs = Math.max(1, Math.min(lastSentAt, startsAt + windowMs) - startsAt);
    console.log(`# Held claims of an opening draw (${new Date().toISOString()})\n`);
    console.log(`${entrants} users arriving ${arrival === 'burst' ? 'all at the opening instant' : 'uniformly over the window'}, ${units} units, window ${windowMs} ms, ${instances} service process(es) with default admission sharing one Redis and one MongoDB; ${tasks.length} client process(es) on the same machine.`);
    console.log(`- entrants recorded ${entered}; final answers ${JSON.stringify(statuses)}; attempts refused SERVICE_UNAVAILABLE (then retried) ${done.reduce((s, r) => s + r.refused, 0)}; connections not opened ${done.reduce((s, r) => s + r.connectFailures, 0)} (opening them took up to ${Math.max(...done.map((r) => r.connectMs))} ms)`);
    console.log(`- held claims taken per second (entrants / time from the window's start to the last entry sent): ${Math.round(((entered ?? 0) * 1000) / entryMs).toLocaleString('en')}/s (bounded by the clients here)`);
    console.log(`- services' RSS ${(rssBefore / 1024).toFixed(0)} MB before the window, ${(rssDuring / 1024).toFixed(0)} MB while holding: ${(((rssDuring - rssBefore) * 1024) / Math.max(1, entered ?? 0)).toFixed(0)} bytes per held claim`);
    console.log(`- slowest single request: ${Math.max(...done.map((r) => r.slowestRequestMs))} ms; window end to last answer: ${lastAnswerAt - (startsAt + windowMs)} ms`);
    const countsAfter = await Promise.all(services.map((s) => serviceCounts(s.url)));
    console.log(`- each service's own account of the drop: ${countsAfter.map((after, i) => serviceAccount(countsBefore[i]!, after)).join('; ')}`);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    await Promise.all([redis.stop(), mongo.stop()]);
  }
}

if (process.argv.includes('--client')) {
  process.once('message', (task: ClientTask) => {
    void client(task).then((report) => {
      process.send!(report, () => process.exit(0));
    });
  });
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
