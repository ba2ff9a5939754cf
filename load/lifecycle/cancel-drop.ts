/**
 * A drop in which 5% of the winners cancel while it runs, beside a drop without cancels, in the
 * same run on the same service: how long until every returned unit is won again, and what the
 * cancels cost the claims' latency.
 *
 *   npm run bench:cancel-drop -- [--total 500] [--users 1500] [--concurrency 64]
 *
 * Each drop: `users` distinct users claim once through `concurrency` keep-alive connections;
 * in the second drop every 20th winner cancels the moment it hears ISSUED. Then newcomers keep
 * claiming (as people arriving late would) until each returned unit is won again. A unit's
 * re-win time runs from its cancel's answer to the ISSUED answer that got its sequence.
 * The service runs as its own process on fresh embedded servers (load/support/service-process.ts).
 */
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createCoupon, ROOT, startServiceProcess, type ServiceProcess } from '../support/service-process';

const { values } = parseArgs({
  options: { total: { type: 'string', default: '500' }, users: { type: 'string', default: '1500' }, concurrency: { type: 'string', default: '64' } },
});
const TOTAL = Number(values.total);
const USERS = Number(values.users);
const CONCURRENCY = Number(values.concurrency);
const CANCEL_EVERY = 20;

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

const CLAIM = 'mutation($c: ID!) { claimCoupon(couponId: $c) { status issuance { id sequence } } }';
const CANCEL = 'mutation($i: ID!) { cancelIssuance(issuanceId: $i) { status sequence } }';

interface Claimed {
  ms: number;
  status: string;
  sequence?: number;
  issuanceId?: string;
  at: number;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function claim(service: ServiceProcess, couponId: string, user: string): Promise<Claimed> {
  const sent = performance.now();
  const reply = await post(service.url, CLAIM, { c: couponId }, service.auth.issue(user));
  const at = performance.now();
  const result = reply.data?.claimCoupon;
  return { ms: at - sent, at, status: result?.status ?? reply.errors?.[0]?.extensions?.code ?? 'ERROR', sequence: result?.issuance?.sequence, issuanceId: result?.issuance?.id };
}

async function drop(service: ServiceProcess, name: string, cancelling: boolean) {
  const couponId = await createCoupon(service, { name, totalQuantity: TOTAL });
  const users = Array.from({ length: USERS }, (_, i) => `${name}-${i}`);
  const claims: Claimed[] = [];
  const cancels: Array<Promise<{ sequence: number; at: number; ms: number }>> = [];
  let winners = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < users.length) {
        const user = users[next++]!;
        const answer = await claim(service, couponId, user);
        claims.push(answer);
        if (cancelling && answer.status === 'ISSUED' && ++winners % CANCEL_EVERY === 0) {
          const sent = performance.now();
          cancels.push(
            post(service.url, CANCEL, { i: answer.issuanceId }, service.auth.issue(user)).then((reply) => {
              if (reply.data?.cancelIssuance?.status !== 'CANCELLED') throw new Error(`cancel failed: ${JSON.stringify(reply.errors)}`);
              return { sequence: reply.data.cancelIssuance.sequence as number, at: performance.now(), ms: performance.now() - sent };
            }),
          );
        }
      }
    }),
  );
  const dropMs = performance.now() - started;
  const cancelled = await Promise.all(cancels);
  // Latecomers until every returned unit is won again (at most 30 s).
  const rewon = new Map<number, number>();
  const late: Claimed[] = [];
  const waiting = () => cancelled.some((c) => !rewon.has(c.at));
  const record = (answer: Claimed) => {
    if (answer.status !== 'ISSUED') return;
    const unit = cancelled.find((c) => c.sequence === answer.sequence && c.at < answer.at && !rewon.has(c.at));
    if (unit) rewon.set(unit.at, answer.at - unit.at);
  };
  // Units returned during the first pass may already be won again by it.
  for (const answer of claims.filter((a) => a.status === 'ISSUED').sort((a, b) => a.at - b.at)) record(answer);
  const lateStarted = performance.now();
  let newcomer = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (waiting() && performance.now() - lateStarted < 30_000) {
        const answer = await claim(service, couponId, `${name}-late-${newcomer++}`);
        late.push(answer);
        record(answer);
      }
    }),
  );
  const statuses = claims.reduce<Record<string, number>>((counts, a) => ({ ...counts, [a.status]: (counts[a.status] ?? 0) + 1 }), {});
  const latencies = claims.map((a) => a.ms);
  const rewins = [...rewon.values()];
  return {
    name,
    dropMs,
    statuses,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    cancels: cancelled.length,
    cancelP50: percentile(cancelled.map((c) => c.ms), 50),
    rewon: rewins.length,
    rewinP50: percentile(rewins, 50),
    rewinMax: Math.max(0, ...rewins),
    lateClaims: late.length,
  };
}

async function main() {
  const service = await startServiceProcess({ logFile: path.join(ROOT, 'load', 'results', 'cancel-drop-service.log') });
  try {
    // A warm-up drop, so neither measured drop pays for first compilations and connections.
    await drop(service, 'warmup', false);
    const plain = await drop(service, 'plain', false);
    const cancelling = await drop(service, 'cancelling', true);
    const f = (ms: number) => `${ms.toFixed(0)} ms`;
    console.log(`\ncancel drop: ${TOTAL} units, ${USERS} users, ${CONCURRENCY} connections, same service, same run\n`);
    console.log('| drop | claims answered | claim p50 | p95 | p99 | cancels (p50) | returned units re-won | re-win p50 | re-win max |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of [plain, cancelling]) {
      console.log(
        `| ${r.name} | ${JSON.stringify(r.statuses)} in ${f(r.dropMs)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${r.cancels}${r.cancels ? ` (${f(r.cancelP50)})` : ''} | ${r.cancels ? `${r.rewon} of ${r.cancels}` : '-'} | ${r.cancels ? f(r.rewinP50) : '-'} | ${r.cancels ? f(r.rewinMax) : '-'} |`,
      );
    }
  } finally {
    agent.destroy();
    await service.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
