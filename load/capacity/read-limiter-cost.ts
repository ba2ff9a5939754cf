/**
 * `npx tsx load/capacity/read-limiter-cost.ts [--requests 200000] [--rounds 4]`: what the request
 * budgets (src/access/read-limiter.ts) cost per request, in CPU of this process: the check before
 * the body is read and the two charges (address and user), one address and a new user for every
 * request, as in a drop. Alternating rounds of the limiter as it is and of the same three calls
 * on rate-limiter-flexible's memory limiter (its previous implementation), so both see the same
 * machine. Budgets are set high enough that nothing is refused: the cost of counting alone.
 */
import { parseArgs } from 'node:util';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { ReadLimiter } from '../../src/access/read-limiter';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '4' } } });
const requests = Number(args.requests);
const rounds = Number(args.rounds);
const BUDGET = 1e12;
const CLAIM_COST = 50;
const ADDRESS = '203.0.113.7';

/** The same calls on rate-limiter-flexible's memory limiter, as the module made them before. */
async function flexibleRound(round: number): Promise<void> {
  const perIp = new RateLimiterMemory({ keyPrefix: 'read:ip', points: BUDGET, duration: 1 });
  const perUser = new RateLimiterMemory({ keyPrefix: 'read:user', points: BUDGET, duration: 1 });
  for (let i = 0; i < requests; i++) {
    const state = await perIp.get(ADDRESS);
    if (state && state.consumedPoints > BUDGET) throw new Error('refused');
    await Promise.all([perIp.consume(ADDRESS, CLAIM_COST), perUser.consume(`user-${round}-${i}`, CLAIM_COST)]);
  }
}

async function windowRound(round: number): Promise<void> {
  const limiter = new ReadLimiter({ costPerIp: BUDGET, costPerUser: BUDGET, newDocumentsPerIp: 0 });
  for (let i = 0; i < requests; i++) {
    if (limiter.spent(ADDRESS) !== undefined) throw new Error('refused');
    if (limiter.charge(ADDRESS, `user-${round}-${i}`, CLAIM_COST) !== undefined) throw new Error('refused');
    // As a request handler does between requests: the charge's answer is awaited.
    await undefined;
  }
}

/** CPU µs per request of one round, the timers it left behind included (they fire within its second). */
async function measure(run: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await run();
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / requests;
}

async function main(): Promise<void> {
  const flexible: number[] = [];
  const windows: number[] = [];
  // One unmeasured round each, so both are compiled by the optimiser before they are measured.
  await flexibleRound(-1);
  await windowRound(-1);
  for (let round = 0; round < rounds; round++) {
    flexible.push(await measure(() => flexibleRound(round)));
    windows.push(await measure(() => windowRound(round)));
    process.stdout.write(`round ${round + 1}: rate-limiter-flexible memory ${flexible[round]!.toFixed(2)} µs, fixed windows ${windows[round]!.toFixed(2)} µs per request\n`);
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  process.stdout.write(
    `${requests} requests per round, one address, a new user each: rate-limiter-flexible memory ${median(flexible).toFixed(2)} µs, fixed windows ${median(windows).toFixed(2)} µs of CPU per request (medians; the 1.1 s after each round, when its timers fire, counted)\n`,
  );
}

main().catch((error: Error) => {
  process.stderr.write(`read-limiter-cost failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
