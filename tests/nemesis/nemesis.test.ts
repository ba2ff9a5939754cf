/**
 * The nemesis's short profile, run by `npm test`: two instances on one Redis and the
 * MongoDB-compatible server, every operation kind drawn by seeded clients, every fault of a single
 * Redis injected once, and the whole history checked against MongoDB (tests/nemesis/checker.ts).
 * NEMESIS_SEED=<n> replays a seed; long histories: `npm run nemesis -- --minutes N --seed S`.
 */
import { formatFindings } from './checker';
import { PROFILES, runHistory } from './run';

const seed = Number(process.env.NEMESIS_SEED ?? 19);

test(`a short seeded history (seed ${seed}) of claims, cancels, redeems, updates, ends, subscriptions, an opening draw and a webhook under every fault of one Redis: every answer is one some order of events allows`, async () => {
  const { history, findings, stats } = await runHistory(PROFILES.short!, seed);
  console.log(`nemesis seed ${seed}: ${history.operations.length} operations ${JSON.stringify(stats.operations)}; faults ${JSON.stringify(stats.faults)}; ${stats.watchers} watchers, ${stats.events} events; ${findings.length} findings`);
  // The history exercised what it claims to: every kind of operation and every fault.
  for (const kind of ['create', 'claim', 'cancel', 'redeem', 'update', 'end', 'subscribe', 'createDraw', 'drawClaim']) expect(history.operations.some((op) => op.kind === kind)).toBe(true);
  expect(history.operations.some((op) => op.kind === 'claim' && op.answer.status === 'ISSUED')).toBe(true);
  expect(history.faults.length).toBeGreaterThan(0);
  // One drawn coupon whose draw was done, and a webhook that got events (some failed and retried).
  // (Its entrants may all be lost to a fault in the window; the draw is still done once.)
  expect(history.final.draws?.some((draw) => draw.drawDone)).toBe(true);
  expect(history.webhook?.requests.some((r) => r.type === 'ISSUANCE_ISSUED' && r.answer === 204)).toBe(true);
  expect(formatFindings(history, findings)).toBe('');
}, 120_000);
