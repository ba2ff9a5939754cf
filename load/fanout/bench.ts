/**
 * Fan-out benchmark for live stock (issue: subscriptions). Starts fresh embedded Redis and
 * MongoDB and the service as a separate process, connects N subscribers to one instance, runs
 * a drop through HTTP claims, and reports:
 *   - when each watcher saw SOLD_OUT after the last win was answered (the last of them, p50, p99),
 *   - delay from a claim's answer to the subscribers' update showing that stock (p50/p99);
 *     coalescing means most claims have no update of their own: the delay is measured for
 *     the stock values that were delivered,
 *   - service memory per open subscription (RSS growth / N),
 *   - service CPU during the drop.
 * Usage: npm run bench:fanout -- [subscribers=1000,10000] [stock=500]
 * SERVICE_CPU_PROF=<dir> writes the service's CPU profile there (node --cpu-prof) when it stops.
 *
 * Each watcher speaks the graphql-transport-ws protocol over a `ws` socket of its own and notes
 * the time its message arrived, before anything else is done with it; the protocol's few steps
 * are all a watcher needs, without a client library's reconnection and bookkeeping.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';
import { freePort, startMongoServer, startRedisServer } from '../../src/infra/embedded';
import { Authenticator } from '../../src/access/auth';
import { cpuSecondsBetween, cpuSecondsOfTree } from '../support/process-cpu';
import { createCoupon } from '../support/service-process';

const SECRET = 'fanout-bench-secret-0123456789abcdef';
const auth = new Authenticator(SECRET);
const root = path.join(__dirname, '..', '..');

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
/** Sends the claims 50 at a time from a worker thread; returns, per remaining value, when its ISSUED answer arrived (epoch ms). */
function claimInWorker(url: string, couponId: string, tokens: string[]): Promise<Map<number, number>> {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true });
    const { url, couponId, tokens } = workerData;
    const query = 'mutation($c: ID!) { claimCoupon(couponId: $c) { status remaining } }';
    const post = (token) => new Promise((resolve, reject) => {
      const body = JSON.stringify({ query, variables: { c: couponId } });
      const req = http.request(url + '/graphql', { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer ' + token } }, (res) => {
        const chunks = []; res.on('data', (c) => chunks.push(c)); res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
      });
      req.on('error', reject); req.end(body);
    });
    const answered = [];
    let next = 0;
    Promise.all(Array.from({ length: 50 }, async () => {
      while (next < tokens.length) {
        const token = tokens[next++];
        let reply = await post(token);
        // As the drop page does: a claim refused with SERVICE_UNAVAILABLE (admission control) is sent again.
        for (let retry = 0; retry < 20 && reply.errors && reply.errors.some((e) => e.extensions && e.extensions.code === 'SERVICE_UNAVAILABLE'); retry++) {
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
          reply = await post(token);
        }
        const claim = reply.data && reply.data.claimCoupon;
        if (claim && claim.status === 'ISSUED') answered.push([claim.remaining, performance.timeOrigin + performance.now()]);
      }
    })).then(() => { agent.destroy(); parentPort.postMessage(answered); });
  `;
  const worker = new Worker(source, { eval: true, workerData: { url, couponId, tokens } });
  return new Promise((resolve, reject) => {
    worker.once('message', (answered: Array<[number, number]>) => resolve(new Map(answered)));
    worker.once('error', reject);
  });
}

const STOCK_SUBSCRIPTION = 'subscription($c: ID!) { stockChanged(couponId: $c) { remaining status } }';

interface StockPayload {
  data?: { stockChanged: { remaining: number } };
  errors?: Array<{ extensions?: { code?: string } }>;
}

/**
 * One watcher: a socket of its own speaking graphql-transport-ws (connection_init, then one
 * subscribe), handing each `next` payload over with the time its message arrived;
 * `subscribeAgain` sends the subscribe again under a new id.
 */
function watchStock(url: string, couponId: string, onNext: (payload: StockPayload, at: number, subscribeAgain: () => void) => void): WebSocket {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  let id = 0;
  const subscribe = () => socket.send(JSON.stringify({ id: String(++id), type: 'subscribe', payload: { query: STOCK_SUBSCRIPTION, variables: { c: couponId } } }));
  socket.on('open', () => socket.send('{"type":"connection_init"}'));
  socket.on('message', (data) => {
    const at = performance.now();
    const message = JSON.parse(String(data)) as { type: string; payload?: unknown };
    if (message.type === 'next') onNext(message.payload as StockPayload, at, subscribe);
    else if (message.type === 'connection_ack') subscribe();
    else if (message.type === 'ping') socket.send('{"type":"pong"}');
    else if (message.type === 'error') console.error('subscription error', JSON.stringify(message.payload));
  });
  socket.on('error', (error) => console.error('watcher socket error', error.message));
  return socket;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function run(subscribers: number, stock: number): Promise<void> {
  const [redis, mongo] = await Promise.all([startRedisServer(), startMongoServer({ database: 'fanout' })]);
  const port = await freePort();
  const service = spawn(process.execPath, [...(process.env.SERVICE_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.SERVICE_CPU_PROF] : []), '--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, REDIS_URL: redis.url, MONGODB_URI: mongo.url, JWT_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', CLAIM_RATE_PER_USER: '0', CLAIM_RATE_PER_IP: '0', READ_COST_PER_IP: '0', NEW_DOCUMENTS_PER_IP: '0', WS_MAX_CONNECTIONS_PER_IP: '0', WS_SUBSCRIBE_RATE_PER_IP: '0' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false);
      if (ok) break;
      if (i > 200) throw new Error('service did not become healthy');
      await new Promise((r) => setTimeout(r, 100));
    }
    await drop({ url, port, service: service.pid!, subscribers, stock });
  } finally {
    service.kill('SIGTERM');
    await new Promise((r) => service.once('exit', r));
    await Promise.all([redis.stop(), mongo.stop()]);
  }
}

interface DropOptions {
  url: string;
  port: number;
  /** The service's process id. */
  service: number;
  subscribers: number;
  stock: number;
}

/** One drop of `stock` units watched by `subscribers` watchers of its own; prints its figures. */
async function drop({ url, port, service, subscribers, stock }: DropOptions): Promise<void> {
  const sockets: WebSocket[] = [];
  try {
    const couponId = await createCoupon({ url, auth }, { name: 'Fan-out', totalQuantity: stock });
    const rssBefore = rssBytes(service);
    const subscribeCpuBefore = cpuSecondsOfTree(service);
    const subscribeStarted = performance.now();

    // Receive times per remaining value, per subscriber.
    const received: Array<Map<number, number>> = [];
    let finished = 0;
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    let ready = 0;
    let resubscribed = 0;
    let allReady!: () => void;
    const readyP = new Promise<void>((r) => (allReady = r));
    for (let i = 0; i < subscribers; i++) {
      const seen = new Map<number, number>();
      received.push(seen);
      let first = true;
      sockets.push(
        watchStock(`ws://127.0.0.1:${port}/graphql`, couponId, ({ data, errors }, at, subscribeAgain) => {
          if (!data) {
            // A subscribe refused (SERVICE_UNAVAILABLE while the machine is crowded) is sent again, as a page would.
            if (!errors?.some((e) => e.extensions?.code === 'SERVICE_UNAVAILABLE')) throw new Error(`subscription failed: ${JSON.stringify(errors)}`);
            resubscribed += 1;
            setTimeout(subscribeAgain, 200 + Math.random() * 300);
            return;
          }
          const remaining = data.stockChanged.remaining;
          if (!seen.has(remaining)) seen.set(remaining, at);
          if (first && ++ready === subscribers) allReady();
          first = false;
          if (remaining === 0 && ++finished === subscribers) allDone();
        }),
      );
      // Pace connection set-up so the accept queue is not the thing being measured.
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 20));
    }
    await readyP;
    const subscribeMs = performance.now() - subscribeStarted;
    const subscribeCpuSeconds = cpuSecondsBetween(subscribeCpuBefore, cpuSecondsOfTree(service)).total;
    await new Promise((r) => setTimeout(r, 500));
    const rssConnected = rssBytes(service);

    const tokens = await Promise.all(Array.from({ length: stock }, (_, i) => auth.issue(`fan-${i}`)));
    const cpuBefore = cpuSecondsOfTree(service);
    const benchCpuBefore = process.cpuUsage();
    const dropStarted = performance.now();
    // Claims run on their own thread, so busy subscribers here do not delay the claim answers.
    const answeredAt = await claimInWorker(url, couponId, tokens);
    const claimsMs = performance.now() - dropStarted;
    const timeout = setTimeout(() => allDone(), 15_000);
    await done;
    clearTimeout(timeout);
    const { total: cpuSeconds, kernel: kernelSeconds } = cpuSecondsBetween(cpuBefore, cpuSecondsOfTree(service));
    const benchCpu = process.cpuUsage(benchCpuBefore);
    const dropMs = performance.now() - dropStarted;
    // Claims refused while the subscribers were served (admission control sheds on event-loop lag).
    const shed = (await (await fetch(`${url}/metrics`)).text())
      .split('\n')
      .filter((line) => line.startsWith('coupon_requests_shed_total'))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);

    const delays: number[] = [];
    let events = 0;
    for (const seen of received) {
      for (let [remaining, at] of seen) {
        events += 1;
        const answered = answeredAt.get(remaining);
        at = performance.timeOrigin + at;
        if (answered !== undefined && remaining < stock) delays.push(at - answered);
      }
    }
    delays.sort((a, b) => a - b);
    // The figure watchers care about: from the last win's answer to each watcher seeing SOLD_OUT.
    const lastWin = answeredAt.get(0);
    const toSoldOut = received
      .map((seen) => seen.get(0))
      .filter((at): at is number => at !== undefined && lastWin !== undefined)
      .map((at) => performance.timeOrigin + at - lastWin!)
      .sort((a, b) => a - b);
    console.log(
      [
        `subscribers ${subscribers}, stock ${stock}: all ${finished}/${subscribers} saw SOLD_OUT`,
        `  claims answered in ${claimsMs.toFixed(0)} ms (${answeredAt.size} ISSUED, ${shed} refusals by admission control, each retried); last subscriber saw 0 after ${dropMs.toFixed(0)} ms`,
        `  SOLD_OUT seen after the last win was answered: last of ${toSoldOut.length} watchers ${toSoldOut.at(-1)?.toFixed(0)} ms, p50 ${pct(toSoldOut, 50).toFixed(0)} ms, p99 ${pct(toSoldOut, 99).toFixed(0)} ms`,
        `  events delivered ${events} (${(events / subscribers).toFixed(1)} per subscriber for ${stock} claims)`,
        // Negative: the update beat the claim's own answer (stock is published when Redis decides; the answer waits for MongoDB).
        `  update time minus claim answer time: p50 ${pct(delays, 50).toFixed(1)} ms, p99 ${pct(delays, 99).toFixed(1)} ms, max ${delays.at(-1)?.toFixed(1)} ms`,
        `  subscribing: all ${subscribers} had their first event after ${subscribeMs.toFixed(0)} ms (connections paced: 200 per 20 ms; ${resubscribed} subscribes refused and sent again), service CPU ${((subscribeCpuSeconds * 1e6) / subscribers).toFixed(0)} µs per subscription`,
        `  service RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB -> ${(rssConnected / 2 ** 20).toFixed(0)} MiB connected: ${((rssConnected - rssBefore) / subscribers / 1024).toFixed(1)} KiB per subscription`,
        `  service CPU during the drop: ${cpuSeconds.toFixed(2)} s over ${(dropMs / 1000).toFixed(2)} s wall (${((cpuSeconds * 1000 * 100) / dropMs).toFixed(0)}% of one core), ${kernelSeconds.toFixed(2)} s of it in the kernel`,
        // The watchers and the claims' thread live in this process: when it is near a whole core, the figures above include its own queueing.
        `  this bench's own CPU meanwhile (watchers and claims): ${((benchCpu.user + benchCpu.system) / 1e6).toFixed(2)} s (${(((benchCpu.user + benchCpu.system) / 1e3) * 100 / dropMs).toFixed(0)}% of one core)`,
      ].join('\n'),
    );
  } finally {
    sockets.forEach((socket) => socket.terminate());
  }
}

async function main() {
  const counts = (process.argv[2] ?? '1000,10000').split(',').map(Number);
  const stock = Number(process.argv[3] ?? 500);
  for (const subscribers of counts) await run(subscribers, stock);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
