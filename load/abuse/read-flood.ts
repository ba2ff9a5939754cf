/**
 * Real users' claims under a flood of cheap anonymous reads from one address: 200 loops, each
 * sending never-seen documents of 15 aliased `coupon(id:)` lookups of random unknown ids, as fast
 * as the service answers. Claims come at a steady rate from other addresses (TRUSTED_PROXIES =
 * loopback, each claim with its own X-Forwarded-For), each a new user winning a unit.
 *
 * Two service processes on their own servers, measured in alternating rounds in one run:
 * - `limited`: the read limits at their defaults (READ_COST_PER_IP, READ_COST_PER_USER,
 *   NEW_DOCUMENTS_PER_IP), as a public deployment runs;
 * - `unlimited`: the same with the read limits off (0), the reference.
 * Each round has a quiet phase (claims alone) and a flood phase (claims during the flood). The
 * flood runs in a child process of its own so that its sending does not slow the claims' clock.
 * Printed: the claims' p50/p99/max and outcomes, the flood's answers per second by status, and
 * the service's CPU (from /proc) per phase; the quiet phases compared give the limit's own cost.
 * The flood process runs at the lowest CPU priority (nice 19): a real attacker sends from other
 * machines, and on one machine its sending would otherwise take the service's CPU.
 *
 *   npm run bench:read-flood [-- --seconds 8 --rounds 2 --claims-per-second 20]
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createCoupon, startServiceProcess, type ServiceProcess } from '../support/service-process';

const FLOOD_LOOPS = 200;
const ALIASES = 15;
const FLOOD_ADDRESS = '203.0.113.7';

/** The flood itself, in its own process: `--flood <url> <ms>`; prints its counts as JSON on exit. */
async function flood(url: string, ms: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: FLOOD_LOOPS });
  const counts: Record<string, number> = {};
  const randomId = () => Array.from({ length: 24 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
  const until = Date.now() + ms;
  const loop = async () => {
    while (Date.now() < until) {
      const query = `query { ${Array.from({ length: ALIASES }, (_, i) => `c${i}: coupon(id: "${randomId()}") { id name remaining status }`).join(' ')} }`;
      const status = await post(url, JSON.stringify({ query }), { 'x-forwarded-for': FLOOD_ADDRESS }, agent).then(
        (reply) => String(reply.status),
        () => 'error',
      );
      counts[status] = (counts[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: FLOOD_LOOPS }, loop));
  agent.destroy();
  process.send?.(counts);
}

function post(url: string, body: string, headers: Record<string, string>, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU seconds the process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface ClaimStats {
  latencies: number[];
  outcomes: Record<string, number>;
}

const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id sequence } } }';

/** Claims at a steady rate for `ms`, each from a new user at a new address. */
async function claims(service: ServiceProcess, couponId: string, ms: number, perSecond: number, tag: string): Promise<ClaimStats> {
  const agent = new http.Agent({ keepAlive: true });
  const stats: ClaimStats = { latencies: [], outcomes: {} };
  const running: Promise<void>[] = [];
  const started = Date.now();
  for (let i = 0; Date.now() - started < ms; i++) {
    const token = service.auth.issue(`user-${tag}-${i}`, { expiresInSeconds: 3600 });
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    running.push(
      (async () => {
        const sent = performance.now();
        const outcome = await post(service.url, JSON.stringify({ query: CLAIM, variables: { couponId } }), { authorization: `Bearer ${token}`, 'x-forwarded-for': address }, agent).then(
          (reply) => {
            const parsed = JSON.parse(reply.body) as { data?: { claimCoupon?: { status: string } }; errors?: Array<{ extensions?: { code?: string } }> };
            return parsed.data?.claimCoupon?.status ?? parsed.errors?.[0]?.extensions?.code ?? `HTTP ${reply.status}`;
          },
          (error: Error) => error.message,
        );
        stats.latencies.push(performance.now() - sent);
        stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1;
      })(),
    );
    const next = started + ((i + 1) * 1000) / perSecond;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
  }
  await Promise.all(running);
  agent.destroy();
  return stats;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

function describe(stats: ClaimStats): string {
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  return `claims ${sorted.length}: p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms ${JSON.stringify(stats.outcomes)}`;
}

async function phase(service: ServiceProcess, couponId: string, withFlood: boolean, options: { seconds: number; perSecond: number }, tag: string) {
  const ms = options.seconds * 1000;
  const cpuBefore = cpuSeconds(service.pid);
  const floodDone = withFlood
    ? new Promise<Record<string, number>>((resolve, reject) => {
        const child = fork(__filename, ['--flood', service.url, String(ms + 500)], { execArgv: ['--import', 'tsx'] });
        // The attacker is on other machines: on this one its sending must not take the service's CPU.
        os.setPriority(child.pid!, 19);
        child.once('message', (counts) => resolve(counts as Record<string, number>));
        child.once('error', reject);
      })
    : Promise.resolve(undefined);
  // The flood gets half a second to reach its pace before claims are measured.
  if (withFlood) await new Promise((resolve) => setTimeout(resolve, 500));
  const claimStats = await claims(service, couponId, ms, options.perSecond, tag);
  const floodCounts = await floodDone;
  const cpu = cpuSeconds(service.pid) - cpuBefore;
  const seconds = options.seconds + (withFlood ? 0.5 : 0);
  const floodLine = floodCounts
    ? ` | flood ${Object.entries(floodCounts).map(([status, n]) => `${status}: ${(n / seconds).toFixed(0)}/s`).join(', ')}`
    : '';
  return { claimStats, line: `${describe(claimStats)} | service CPU ${((cpu / seconds) * 100).toFixed(0)}% of a core${floodLine}` };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, rounds: { type: 'string', default: '2' }, 'claims-per-second': { type: 'string', default: '20' } } });
  const options = { seconds: Number(values.seconds), perSecond: Number(values['claims-per-second']) };
  const rounds = Number(values.rounds);
  const logDir = path.join(__dirname, '..', 'reports');
  const common = { TRUSTED_PROXIES: 'loopback', CLAIM_RATE_PER_USER: '10', CLAIM_RATE_PER_IP: '300', INTROSPECTION_ENABLED: 'false' };
  const services = {
    limited: await startServiceProcess({ logFile: path.join(logDir, 'read-flood-limited.log'), env: { ...common, READ_COST_PER_IP: '30000', READ_COST_PER_USER: '3000', NEW_DOCUMENTS_PER_IP: '20' } }),
    unlimited: await startServiceProcess({ logFile: path.join(logDir, 'read-flood-unlimited.log'), env: { ...common } }),
  };
  const lines: string[] = [];
  const say = (line: string) => {
    console.log(line);
    lines.push(line);
  };
  say(`read flood: ${FLOOD_LOOPS} loops of never-seen ${ALIASES}-alias unknown-id queries from one address; ${options.perSecond} claims/s from other addresses; ${options.seconds} s phases, ${rounds} alternating rounds`);
  try {
    const coupons = {
      limited: await createCoupon(services.limited, { name: 'Flood drop', totalQuantity: 1_000_000 }),
      unlimited: await createCoupon(services.unlimited, { name: 'Flood drop', totalQuantity: 1_000_000 }),
    };
    const all: Record<string, number[]> = {};
    for (let round = 1; round <= rounds; round++) {
      for (const name of ['limited', 'unlimited'] as const) {
        for (const withFlood of [false, true]) {
          const label = `${name} ${withFlood ? 'flood' : 'quiet'}`;
          const result = await phase(services[name], coupons[name], withFlood, options, `${round}-${name}-${withFlood}`);
          (all[label] ??= []).push(...result.claimStats.latencies);
          say(`round ${round} ${label.padEnd(16)} ${result.line}`);
        }
      }
    }
    say('all rounds:');
    for (const [label, latencies] of Object.entries(all)) {
      const sorted = latencies.sort((a, b) => a - b);
      say(`  ${label.padEnd(16)} p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms over ${sorted.length} claims`);
    }
  } finally {
    await Promise.all(Object.values(services).map((service) => service.stop()));
  }
  fs.writeFileSync(path.join(logDir, 'read-flood-latest.md'), `# Read flood (latest run)\n\n\`\`\`\n${lines.join('\n')}\n\`\`\`\n`);
}

const floodAt = process.argv.indexOf('--flood');
if (floodAt >= 0) {
  void flood(process.argv[floodAt + 1]!, Number(process.argv[floodAt + 2])).then(() => process.exit(0));
} else {
  main().catch((error: Error) => {
    console.error(error);
    process.exit(1);
  });
}
