/**
 * `npx tsx load/capacity/opening-second.ts [--total 100] [--concurrency 64] [--rounds 1]`: Redis
 * commands per 1,000 claims in the first second of a sell-out, on a private redis-server and
 * MongoDB-compatible server, with the real service started through its composition root (rate
 * limits on, at their defaults).
 *
 * A coupon of `total` units; distinct users claim it, `concurrency` at a time, closed loop, until
 * 1.2 s after the first SOLD_OUT answer. Every command a client sends Redis is seen with MONITOR
 * (commands a script runs inside Redis are not counted: they are part of that script's one
 * command). The window is the first second after the first SOLD_OUT answer: commands sent in it
 * per claim answered in it, by command, and how the claims in it were answered; and the same for
 * the part of that second after the claims already in flight at the first SOLD_OUT were answered
 * (what "stops sending sold-out claims to Redis" changes). Run it against a reference checkout in
 * alternating rounds: the machine's load moves both figures.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Authenticator } from '../../src/access/auth';
import { loadConfig } from '../../src/config';
import { startMongoServer, startRedisServer } from '../../src/infra/embedded';
import { createLogger } from '../../src/logger';
import { startService } from '../../src/service';

const { values: args } = parseArgs({ options: { total: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '64' }, rounds: { type: 'string', default: '1' } } });
const TOTAL = Number(args.total);
const CONCURRENCY = Number(args.concurrency);
const WINDOW_MS = 1000;
const SECRET = 'opening-second-bench-secret-0123456789';
const auth = new Authenticator(SECRET);
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function post(url: string, body: unknown, token: string): Promise<any> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), authorization: `Bearer ${token}` } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    });
    request.on('error', reject);
    request.end(data);
  });
}

const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id } } }';

async function round(n: number): Promise<{ perThousand: number; claims: number; byCommand: Record<string, number>; outcomes: Record<string, number>; laterPerThousand: number; laterClaims: number }> {
  const [redisServer, mongoServer] = await Promise.all([startRedisServer(), startMongoServer({ database: `opening${n}` })]);
  const config = loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', MAX_EVENT_LOOP_LAG_MS: '0' });
  const service = await startService({ ...config, redis: { kind: 'single', url: redisServer.url }, mongoUri: mongoServer.url, jwtSecret: SECRET }, createLogger('error'));
  const observer = new Redis(redisServer.url);
  try {
    const admin = auth.issue('operator', { admin: true });
    const created = await post(service.url, { query: 'mutation($input: CreateCouponInput!) { createCoupon(input: $input) { id } }', variables: { input: { name: 'Opening', totalQuantity: TOTAL } } }, admin);
    const couponId: string = created.data.createCoupon.id;
    // Warm up: the claim document compiled, the definition cached, the state loaded.
    for (let i = 0; i < 3; i++) await post(service.url, { query: CLAIM, variables: { couponId: '650000000000000000000000' } }, auth.issue(`warm-${i}`));
    await post(service.url, { query: 'query($id: ID!) { coupon(id: $id) { remaining } }', variables: { id: couponId } }, admin);

    const commands: Array<{ at: number; name: string }> = [];
    const monitor = await observer.monitor();
    monitor.on('monitor', (_time: string, argv: string[], source: string) => {
      if (source === 'lua') return;
      const name = argv[0]!.toLowerCase();
      if (name === 'monitor' || name === 'info' || name === 'ping') return;
      // Scripts by what they are: the claim script carries the user and the issuance id (9 arguments).
      const label = name.startsWith('eval') ? `${name} (${argv[2]} keys, ${argv.length} args)` : name;
      commands.push({ at: performance.now(), name: label });
    });
    await new Promise((resolve) => setTimeout(resolve, 100));

    const answers: Array<{ at: number; sentAt: number; status: string }> = [];
    let firstSoldOut = Infinity;
    let next = 0;
    const worker = async () => {
      while (performance.now() < firstSoldOut + WINDOW_MS + 200) {
        const user = `user-${n}-${next++}`;
        const sentAt = performance.now();
        const reply = await post(service.url, { query: CLAIM, variables: { couponId } }, auth.issue(user));
        const status: string = reply.data?.claimCoupon?.status ?? reply.errors?.[0]?.extensions?.code ?? 'ERROR';
        const at = performance.now();
        if (status === 'SOLD_OUT' && firstSoldOut === Infinity) firstSoldOut = at;
        answers.push({ at, sentAt, status });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    monitor.disconnect();

    const inWindow = <T extends { at: number }>(items: T[]) => items.filter((item) => item.at >= firstSoldOut && item.at < firstSoldOut + WINDOW_MS);
    const claims = inWindow(answers);
    const sent = inWindow(commands);
    const byCommand: Record<string, number> = {};
    for (const { name } of sent) byCommand[name] = (byCommand[name] ?? 0) + 1;
    const outcomes: Record<string, number> = {};
    for (const { status } of claims) outcomes[status] = (outcomes[status] ?? 0) + 1;
    // The same second without the claims already on their way when the first SOLD_OUT came back:
    // from the moment the last of those was answered, only claims sent after it are counted.
    const drainedAt = Math.max(...answers.filter((a) => a.sentAt < firstSoldOut).map((a) => a.at));
    const after = <T extends { at: number }>(items: T[]) => items.filter((item) => item.at >= drainedAt && item.at < firstSoldOut + WINDOW_MS);
    const laterPerThousand = (after(commands).length / Math.max(1, after(answers).length)) * 1000;
    return { perThousand: (sent.length / claims.length) * 1000, claims: claims.length, byCommand, outcomes, laterPerThousand, laterClaims: after(answers).length };
  } finally {
    observer.disconnect();
    await service.stop();
    await Promise.all([redisServer.stop(), mongoServer.stop()]);
  }
}

async function main(): Promise<void> {
  for (let n = 1; n <= Number(args.rounds); n++) {
    const result = await round(n);
    console.log(
      `round ${n}: ${result.perThousand.toFixed(0)} Redis commands per 1,000 claims in the first second after the first SOLD_OUT ` +
        `(${result.claims} claims answered in it: ${JSON.stringify(result.outcomes)}); commands: ${JSON.stringify(result.byCommand)}; ` +
        `claims sent after the first SOLD_OUT came back: ${result.laterPerThousand.toFixed(0)} commands per 1,000 (${result.laterClaims} claims)`,
    );
  }
  agent.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
