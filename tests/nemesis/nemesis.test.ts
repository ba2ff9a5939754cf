/**
 * The nemesis's short profile, run by `npm test`: two instances on one Redis and the
 * MongoDB-compatible server, every operation kind drawn by seeded clients, every fault of a single
 * Redis injected once, and the whole history checked against MongoDB (tests/nemesis/checker.ts).
 * NEMESIS_SEED=<n> replays a seed; long histories: `npm run nemesis -- --minutes N --seed S`.
 */
import { formatFindings } from './checker';
import { PROFILES, runHistory } from './run';

const seed = Number(process.env.NEMESIS_SEED ?? 19);

test(`a short seeded history (seed ${seed}) of claims, cancels, redeems, updates, ends and subscriptions under every fault of one Redis: every answer is one some order of events allows`, async () => {
  const { history, findings, stats } = await runHistory(PROFILES.short!, seed);
  console.log(`nemesis seed ${seed}: ${history.operations.length} operations ${JSON.stringify(stats.operations)}; faults ${JSON.stringify(stats.faults)}; ${stats.watchers} watchers, ${stats.events} events; ${findings.length} findings`);
  // The history exercised what it claims to: every kind of operation and every fault.
  for (const kind of ['create', 'claim', 'cancel', 'redeem', 'update', 'end', 'subscribe']) expect(history.operations.some((op) => op.kind === kind)).toBe(true);
  expect(history.operations.some((op) => op.kind === 'claim' && op.answer.status === 'ISSUED')).toBe(true);
  expect(history.faults.length).toBeGreaterThan(0);
  expect(formatFindings(history, findings)).toBe('');
}, 120_000);
