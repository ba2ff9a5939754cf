/**
 * Held claims of an opening draw, through HTTP on one service process (src/main.ts): N users
 * claim inside a 2,000 ms window; reports how many claims per second the instance took while
 * holding them, the service's memory per held claim (RSS during the window minus before it),
 * and the time from the window's end to the last answer.
 * Usage: npm run bench:draw-held -- [entrants=2000] [units=100]
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ROOT, startServiceProcess } from '../support/service-process';

const [entrants = 2000, units = 100] = process.argv.slice(2).map(Number);
const WINDOW_MS = 2000;
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function post(url: string, body: object, token: string): Promise<any> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

async function main() {
  const service = await startServiceProcess({ logFile: path.join(ROOT, 'load', 'reports', 'draw-held-service.log'), env: { MAX_CONCURRENT_REQUESTS: '100000', MAX_QUEUED_REQUESTS: '100000', MAX_EVENT_LOOP_LAG_MS: '0' } });
  try {
    const admin = service.auth.issue('operator', { admin: true });
    const startsAt = Date.now() + 20_000;
    const created = await post(service.url, { query: 'mutation C($i: CreateCouponInput!) { createCoupon(input: $i) { id } }', variables: { i: { name: 'held', totalQuantity: units, startsAt: new Date(startsAt).toISOString(), openingDrawMs: WINDOW_MS } } }, admin);
    const couponId = created.data.createCoupon.id as string;
    const tokens = Array.from({ length: entrants }, (_, i) => service.auth.issue(`held-${i}`));
    // The people are on the page: one open connection each before the drop.
    await Promise.all(tokens.map((token) => post(service.url, { query: 'query Q($id: ID!) { coupon(id: $id) { remaining } }', variables: { id: couponId } }, token).catch(() => undefined)));
    if (Date.now() > startsAt - 3000) throw new Error('the warm-up took too long; start again on a quieter machine');
    while (Date.now() < startsAt - 200) await new Promise((r) => setTimeout(r, 20));
    const rssBefore = rssKb(service.pid);
    while (Date.now() < startsAt) await new Promise((r) => setImmediate(r));
    const sent = performance.now();
    let lastAnswerAt = 0;
    const statuses = new Map<string, number>();
    const answers = tokens.map((token) =>
      post(service.url, { query: 'mutation M($id: ID!) { claimCoupon(couponId: $id) { status } }', variables: { id: couponId } }, token).then((reply) => {
        lastAnswerAt = Date.now();
        const status = reply.data?.claimCoupon?.status ?? reply.errors?.[0]?.extensions?.code ?? 'ERROR';
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }, (error: Error) => statuses.set(`connection: ${error.message}`, (statuses.get(`connection: ${error.message}`) ?? 0) + 1)),
    );
    const sentMs = performance.now() - sent;
    while (Date.now() < startsAt + WINDOW_MS - 100) await new Promise((r) => setTimeout(r, 10));
    const rssDuring = rssKb(service.pid);
    await Promise.all(answers);
    let entered = null;
    for (let i = 0; i < 50 && entered === null; i++) {
      entered = (await post(service.url, { query: 'query Q($id: ID!) { coupon(id: $id) { drawEntrants } }', variables: { id: couponId } }, admin)).data.coupon.drawEntrants;
      if (entered === null) await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`# Held claims of an opening draw (${new Date().toISOString()}, shared machine)\n`);
    console.log(`${entrants} users, ${units} units, window ${WINDOW_MS} ms, one service process; client in another process on the same machine.`);
    console.log(`- claims sent in ${sentMs.toFixed(0)} ms; entrants recorded ${entered}; answers ${JSON.stringify(Object.fromEntries(statuses))}`);
    console.log(`- held claims taken per second (entrants / time from the window's start to the last claim sent): ${Math.round((entered ?? 0) / Math.max(sentMs / 1000, 0.001)).toLocaleString('en')}/s (bounded by the client here)`);
    console.log(`- service RSS ${(rssBefore / 1024).toFixed(0)} MB before the window, ${(rssDuring / 1024).toFixed(0)} MB while holding: ${(((rssDuring - rssBefore) * 1024) / entrants).toFixed(0)} bytes per held claim`);
    console.log(`- window end to last answer: ${lastAnswerAt - (startsAt + WINDOW_MS)} ms`);
  } finally {
    await service.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
