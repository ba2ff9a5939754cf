/**
 * Webhook delivery under a drop, on this machine, in one run; each drop on a fresh service process
 * with its own Redis and MongoDB:
 *
 * 1. Drops of `wins` units won by as many users, alternately without and with a webhook
 *    registered (ISSUANCE_ISSUED and COUPON_SOLD_OUT) to a receiver in this process: claim
 *    latency in both (delivery must not slow claims), events per second delivered, and the time
 *    from the last ISSUED answer to the last event acknowledged.
 * 2. A receiver that answers 500 for `outage` seconds from the start of a drop, then recovers:
 *    how long until the backlog is gone (from the recovery and from the start of the outage).
 *
 *   npm run bench:webhooks -- [--wins 2000] [--rounds 1] [--outage 60] [--outage-wins 2000] [--concurrency 64]
 *
 * The service's retry schedule is shortened for this bench only (WEBHOOK_RETRY_DELAYS_MS below):
 * with the production schedule (5 s, 5 min, ...) scenario 2 ends about 5 minutes after the
 * outage began, when each event's third attempt comes; the shortened one shows the mechanism
 * in a minute and a half. Scenario 1 makes no retries.
 */
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startReceiver, type Receiver } from '../../tests/support/webhook-receiver';
import { createCoupon, ROOT, startServiceProcess, type ServiceProcess } from '../support/service-process';

const { values } = parseArgs({
  options: {
    wins: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '1' },
    outage: { type: 'string', default: '60' },
    'outage-wins': { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '64' },
  },
});
const WINS = Number(values.wins);
const ROUNDS = Number(values.rounds);
const OUTAGE_MS = Number(values.outage) * 1000;
const OUTAGE_WINS = Number(values['outage-wins']);
const CONCURRENCY = Number(values.concurrency);
const RETRY_DELAYS = '5000,10000,20000,40000,60000';

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

function post(url: string, query: string, variables: Record<string, unknown>, token: string): Promise<any> {
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const CLAIM = 'mutation($c: ID!) { claimCoupon(couponId: $c) { status } }';
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))] ?? NaN;
const admin = (service: ServiceProcess) => service.auth.issue('bench-operator', { admin: true, expiresInSeconds: 3600 });

async function register(service: ServiceProcess, url: string): Promise<string> {
  const reply = await post(service.url, 'mutation($u: String!, $e: [EventType!]!) { createWebhook(url: $u, events: $e) { id } }', { u: url, e: ['ISSUANCE_ISSUED', 'COUPON_SOLD_OUT'] }, admin(service));
  if (!reply.data?.createWebhook) throw new Error(`createWebhook failed: ${JSON.stringify(reply.errors)}`);
  return reply.data.createWebhook.id;
}
const unregister = (service: ServiceProcess, id: string) => post(service.url, 'mutation($i: ID!) { deleteWebhook(id: $i) }', { i: id }, admin(service));

/** Every user claims once (retrying SERVICE_UNAVAILABLE as a page does); returns latencies and the last ISSUED answer's time. */
async function drop(service: ServiceProcess, name: string, units: number) {
  const couponId = await createCoupon(service, { name, totalQuantity: units });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let lastWinAt = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < units) {
        const user = `${name}-${next++}`;
        const token = service.auth.issue(user);
        for (;;) {
          const sent = performance.now();
          const reply = await post(service.url, CLAIM, { c: couponId }, token);
          const at = performance.now();
          latencies.push(at - sent);
          const status = reply.data?.claimCoupon?.status ?? reply.errors?.[0]?.extensions?.code ?? 'ERROR';
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === 'ISSUED') lastWinAt = Math.max(lastWinAt, Date.now());
          if (status !== 'SERVICE_UNAVAILABLE') break;
          await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
        }
      }
    }),
  );
  return { couponId, latencies, statuses, lastWinAt, dropMs: performance.now() - started };
}

async function untilAcknowledged(receiver: Receiver, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (receiver.acknowledged().length < count) {
    if (Date.now() > deadline) throw new Error(`only ${receiver.acknowledged().length} of ${count} events acknowledged after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Each drop runs on a fresh service with its own Redis and MongoDB: the embedded
 * MongoDB-compatible server's write cost grows with the collection, so a drop that followed
 * another in the same database would be slower for that reason alone, whichever came second.
 */
const startService = () =>
  startServiceProcess({
    logFile: path.join(ROOT, 'load', 'results', 'webhooks-service.log'),
    env: { WEBHOOK_RETRY_DELAYS_MS: RETRY_DELAYS, MAX_EVENT_LOOP_LAG_MS: '0' },
  });

async function main() {
  const receiver = await startReceiver(() => 204);
  const f = (ms: number) => `${ms.toFixed(0)} ms`;
  const rows: string[] = [];
  let service: ServiceProcess | undefined;
  try {
    for (let round = 1; round <= ROUNDS; round += 1) {
      // Alternating which comes first, so neither is always measured on a warmer machine.
      for (const hooked of round % 2 === 1 ? [false, true] : [true, false]) {
        service = await startService();
        await drop(service, 'warmup', Math.min(200, Math.ceil(WINS / 10)));
        receiver.requests.length = 0;
        const hookId = hooked ? await register(service, receiver.url) : undefined;
        const result = await drop(service, `r${round}-${hooked ? 'hooked' : 'plain'}`, WINS);
        let delivery = '- | - | -';
        if (hookId) {
          await untilAcknowledged(receiver, WINS + 1, 600_000);
          const acked = receiver.acknowledged();
          const first = Math.min(...acked.map((e) => e.receivedAt));
          const last = Math.max(...acked.map((e) => e.receivedAt));
          const lags = acked.filter((e) => e.type === 'ISSUANCE_ISSUED').map((e) => e.receivedAt - Date.parse(e.occurredAt));
          delivery = `${((acked.length / (last - first)) * 1000).toFixed(0)} | ${f(last - result.lastWinAt)} | ${f(percentile(lags, 50))} / ${f(percentile(lags, 99))}`;
        }
        rows.push(
          `| ${round} | ${hooked ? 'with webhook' : 'without'} | ${JSON.stringify(result.statuses)} in ${f(result.dropMs)} | ${f(percentile(result.latencies, 50))} | ${f(percentile(result.latencies, 99))} | ${f(Math.max(...result.latencies))} | ${delivery} |`,
        );
        console.log(rows.at(-1));
        await service.stop();
        service = undefined;
      }
    }

    // Scenario 2: the receiver answers 500 for OUTAGE_MS from the start of a drop.
    service = await startService();
    receiver.requests.length = 0;
    const outageStart = Date.now();
    receiver.behave = () => (Date.now() - outageStart < OUTAGE_MS ? 500 : 204);
    const hookId = await register(service, receiver.url);
    const outageDrop = await drop(service, 'outage', OUTAGE_WINS);
    await untilAcknowledged(receiver, OUTAGE_WINS + 1, OUTAGE_MS + 600_000);
    const acked = receiver.acknowledged();
    const lastAck = Math.max(...acked.map((e) => e.receivedAt));
    const failedAttempts = receiver.requests.filter((r) => r.answer === 500).length;
    await unregister(service, hookId);

    console.log(`\nwebhooks bench: ${WINS} wins per drop, ${CONCURRENCY} connections, ${ROUNDS} round(s) alternating, a fresh service process (own Redis and MongoDB) per drop, receiver in the bench process\n`);
    console.log('| round | webhook | claims | claim p50 | claim p99 | claim max | events/s delivered | last win to last event acknowledged | event lag p50 / p99 |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    rows.forEach((row) => console.log(row));
    console.log(
      `\nreceiver answering 500 for ${OUTAGE_MS / 1000} s from the start of a drop of ${OUTAGE_WINS} wins (retry delays ${RETRY_DELAYS} ms, bench only): ` +
        `drop claims p99 ${f(percentile(outageDrop.latencies, 99))}; ${failedAttempts} attempts answered 500; ` +
        `backlog gone ${((lastAck - outageStart - OUTAGE_MS) / 1000).toFixed(1)} s after the receiver recovered (${((lastAck - outageStart) / 1000).toFixed(1)} s after the outage began)`,
    );
  } finally {
    agent.destroy();
    await receiver.close();
    await service?.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
