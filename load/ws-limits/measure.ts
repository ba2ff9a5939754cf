/**
 * What the WebSocket limits cost and buy, measured on the service as its own process:
 *   1. memory per connection: N connections with one stock subscription each (limits per address
 *      off, as a load test from one machine needs), RSS and heap growth / N;
 *   2. claims answered while 10 sockets send 55 KB subscribe documents back to back;
 *   3. claims answered while 100 sockets churn subscribe/complete at ~5,000 messages a second,
 *      with the default limits.
 * Claims run 8 at a time through POST /graphql, as distinct users, in each phase and before it.
 * Usage: npx tsx load/ws-limits/measure.ts [connections=1000] [seconds=5]
 */
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';
import { startServiceProcess, type ServiceProcess } from '../support/service-process';

const CONNECTIONS = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 5);
const STOCK = 'subscription S($couponId: ID!) { stockChanged(couponId: $couponId) { remaining } }';
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function post(url: string, query: string, variables: object, token: string): Promise<{ status: number; body: any }> {
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.split(' ').at(-1));
}

async function createCoupon(service: ServiceProcess): Promise<string> {
  const admin = service.auth.issue('operator', { admin: true });
  const reply = await post(service.url, 'mutation ($input: CreateCouponInput!) { createCoupon(input: $input) { id } }', { input: { name: 'ws', totalQuantity: 10_000_000 } }, admin);
  return reply.body.data.createCoupon.id;
}

/** Claims 8 at a time for `seconds`, each by a new user: answered count, 503s, p50/p99 latency. */
async function claims(service: ServiceProcess, couponId: string, seconds: number, tag: string) {
  const tokens = Array.from({ length: 400 * seconds }, (_, i) => service.auth.issue(`${tag}-${i}`));
  const cpuBefore = await metric(service.url, 'process_cpu_seconds_total');
  const { latencies, refused } = await claimInWorker(service.url, couponId, tokens, seconds);
  const cpu = (await metric(service.url, 'process_cpu_seconds_total')) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.floor(q * (latencies.length - 1))] ?? NaN);
  return { issued: latencies.length, refused, perSecond: Math.round(latencies.length / seconds), p50: at(0.5), p99: at(0.99), serviceCpuPercent: Math.round((cpu / seconds) * 100) };
}

/** The claim driver runs on a thread of its own, so the attackers' loops do not delay it. */
function claimInWorker(url: string, couponId: string, tokens: string[], seconds: number): Promise<{ latencies: number[]; refused: number }> {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const http = require('node:http');
    const { url, couponId, tokens, seconds } = workerData;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const post = (token) => new Promise((resolve, reject) => {
      const body = JSON.stringify({ query: 'mutation ($c: ID!) { claimCoupon(couponId: $c) { status } }', variables: { c: couponId } });
      const req = http.request(url + '/graphql', { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: 'Bearer ' + token } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      req.end(body);
    });
    (async () => {
      const latencies = [];
      let refused = 0;
      let next = 0;
      const until = performance.now() + seconds * 1000;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (performance.now() < until && next < tokens.length) {
          const begin = performance.now();
          const reply = await post(tokens[next++]);
          if (reply.data && reply.data.claimCoupon && reply.data.claimCoupon.status === 'ISSUED') latencies.push(performance.now() - begin);
          else refused += 1;
        }
      }));
      agent.destroy();
      parentPort.postMessage({ latencies, refused });
    })();
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { url, couponId, tokens, seconds } });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

function raw(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    socket.once('error', reject);
    socket.once('open', () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      socket.once('message', () => resolve(socket));
    });
  });
}

async function memoryPerConnection(): Promise<void> {
  const service = await startServiceProcess({ logFile: path.join(os.tmpdir(), 'ws-limits-memory.log'), env: { WS_MAX_CONNECTIONS_PER_IP: '0', WS_SUBSCRIBE_RATE_PER_IP: '0' } });
  try {
    const couponId = await createCoupon(service);
    await sleep(1000);
    const before = { rss: await metric(service.url, 'process_resident_memory_bytes'), heap: await metric(service.url, 'nodejs_heap_size_used_bytes') };
    const clients: Client[] = [];
    for (let i = 0; i < CONNECTIONS; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, CONNECTIONS - i) }, async () => {
          const client = createClient({ url: `${service.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
          clients.push(client);
          await new Promise<void>((resolve, reject) => client.subscribe({ query: STOCK, variables: { couponId } }, { next: () => resolve(), error: reject, complete: () => undefined }));
        }),
      );
    }
    await sleep(2000);
    const after = { rss: await metric(service.url, 'process_resident_memory_bytes'), heap: await metric(service.url, 'nodejs_heap_size_used_bytes') };
    console.log(
      `memory: ${CONNECTIONS} connections x 1 subscription: RSS ${(before.rss / 2 ** 20).toFixed(0)} -> ${(after.rss / 2 ** 20).toFixed(0)} MB ` +
        `(${((after.rss - before.rss) / CONNECTIONS / 1024).toFixed(1)} KB per connection), heap ${(before.heap / 2 ** 20).toFixed(0)} -> ${(after.heap / 2 ** 20).toFixed(0)} MB ` +
        `(${((after.heap - before.heap) / CONNECTIONS / 1024).toFixed(1)} KB per connection)`,
    );
    await Promise.all(clients.map((client) => client.dispose()));
  } finally {
    await service.stop();
  }
}

async function attacks(): Promise<void> {
  // The defaults a public deployment runs with.
  const service = await startServiceProcess({ logFile: path.join(os.tmpdir(), 'ws-limits-attacks.log'), env: { WS_MAX_CONNECTIONS_PER_IP: '100', WS_SUBSCRIBE_RATE_PER_IP: '100' } });
  try {
    const couponId = await createCoupon(service);
    console.log('claims, no attack:', await claims(service, couponId, SECONDS, 'calm'));

    const heavy = (i: number) => `${STOCK}\nfragment F${i} on StockUpdate { ${'remaining '.repeat(5500)} }`;
    let sent = 0;
    let refusedAsParse = 0;
    let stop = false;
    const documentSockets = await Promise.all(Array.from({ length: 10 }, () => raw(service.url)));
    const flood = documentSockets.map(async (socket, s) => {
      const replies = new Map<string, () => void>();
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        if (message.type === 'error' && /token/.test(JSON.stringify(message.payload))) refusedAsParse += 1;
        replies.get(message.id)?.();
      });
      while (!stop) {
        const id = `${s}-${sent++}`;
        await new Promise<void>((resolve) => {
          replies.set(id, resolve);
          socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: heavy(sent), variables: { couponId } } }));
        });
      }
    });
    console.log('claims, 10 sockets sending 55 KB documents:', await claims(service, couponId, SECONDS, 'docs'), { documentsSent: sent, refusedAtTokenLimit: refusedAsParse });
    stop = true;
    await Promise.all(flood);
    documentSockets.forEach((socket) => socket.terminate());

    const churnSockets = await Promise.all(Array.from({ length: 100 }, () => raw(service.url)));
    let churned = 0;
    const churn = setInterval(() => {
      for (const socket of churnSockets) {
        const id = String(churned++);
        socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: STOCK, variables: { couponId } } }));
        socket.send(JSON.stringify({ id, type: 'complete' }));
      }
    }, 20);
    const churning = await claims(service, couponId, SECONDS, 'churn');
    clearInterval(churn);
    console.log('claims, 100 sockets churning subscribe/complete:', churning, { subscribesSent: churned, perSecond: Math.round(churned / SECONDS) });
    churnSockets.forEach((socket) => socket.terminate());
  } finally {
    await service.stop();
  }
}

void (async () => {
  await memoryPerConnection();
  await attacks();
  agent.destroy();
})();
