/**
 * The nemesis checker (tests/nemesis/checker.ts) on hand-made histories: each known violation of
 * guarantees 1-8 is found (so the nemesis cannot pass by finding nothing), and histories that
 * some order of events allows, races and faults included, are accepted.
 */
import { checkHistory } from '../nemesis/checker';
import type { Answer, History, IssuanceView, StockEvent, StoredIssuance } from '../nemesis/history';

const T = 1_800_000_000_000;
const C = 'c1';

/** A tiny language for histories: times are milliseconds after T. */
function history() {
  const h: History = {
    seed: 7,
    profile: 'unit',
    topology: 'single',
    startedAt: T,
    operations: [],
    faults: [],
    watchers: [],
    final: { coupons: [], issuances: [], convergence: [] },
  };
  const api = {
    h,
    coupon(total: number, id = C, endsAt: number | null = null) {
      api.op('create', id, 'operator', 0, 10, { status: 'ACTIVE', coupon: { id, totalQuantity: total } }, { totalQuantity: total });
      h.final.coupons.push({ id, totalQuantity: total, endsAt: endsAt === null ? null : T + endsAt });
      return api;
    },
    /** Sets the final totalQuantity (after updates). */
    finalTotal(total: number, id = C) {
      h.final.coupons.find((c) => c.id === id)!.totalQuantity = total;
      return api;
    },
    stored(id: string, user: string, sequence: number, issuedAt: number, more: Partial<StoredIssuance> = {}) {
      h.final.issuances.push({ id, couponId: C, userId: user, sequence, status: 'ACTIVE', issuedAt: T + issuedAt, ...more });
      return api;
    },
    op(kind: string, couponId: string, user: string, start: number, end: number, answer: Answer, request: History['operations'][number]['request'] = {}, instance = 0) {
      h.operations.push({ id: h.operations.length, kind, instance, couponId, user, request, start: T + start, end: T + end, answer });
      return api;
    },
    claim(user: string, start: number, end: number, status: string, issuance?: Partial<IssuanceView> & { id: string }, remaining?: number) {
      const doc = issuance && h.final.issuances.find((d) => d.id === issuance.id);
      const shown = issuance && { couponId: C, userId: user, sequence: doc?.sequence ?? 1, status: 'ACTIVE', orderId: null, ...issuance };
      return api.op('claim', C, user, start, end, { status, issuance: shown, remaining });
    },
    cancel(issuanceId: string, user: string, start: number, end: number, answer: Answer) {
      return api.op('cancel', C, user, start, end, answer, { issuanceId });
    },
    redeem(issuanceId: string, user: string, orderId: string, start: number, end: number, answer: Answer) {
      return api.op('redeem', C, user, start, end, answer, { issuanceId, orderId });
    },
    update(total: number, start: number, end: number, answer: Answer = { status: 'ACTIVE', coupon: { id: C, totalQuantity: total } }) {
      // An answer without `remaining` is not checked for it (the default); tests give it when it matters.
      return api.op('update', C, 'operator', start, end, answer, { totalQuantity: total });
    },
    end(start: number, end: number) {
      return api.op('end', C, 'operator', start, end, { status: 'ENDED', coupon: { id: C, totalQuantity: 0 } });
    },
    fault(kind: string, start: number, end: number, instance?: number) {
      h.faults.push({ kind, target: 'unit', instance, start: T + start, end: T + end });
      return api;
    },
    watcher(events: Array<Omit<StockEvent, 'serverTime' | 'receivedAt'> & { at: number }>, options: { start?: number; end?: number; completed?: boolean; error?: string } = {}) {
      h.watchers.push({
        id: h.watchers.length,
        couponId: C,
        instance: 0,
        start: T + (options.start ?? 0),
        end: T + (options.end ?? 20_000),
        completed: options.completed ?? false,
        error: options.error,
        events: events.map(({ at, ...event }) => ({ ...event, serverTime: T + at, receivedAt: T + at + 2 })),
      });
      return api;
    },
    /** What the instance showed once the faults ended; by default what MongoDB implies. */
    converged(remaining?: number, at = 30_000) {
      const coupon = h.final.coupons.find((c) => c.id === C)!;
      const live = h.final.issuances.filter((d) => d.couponId === C && d.status !== 'CANCELLED').length;
      h.final.convergence.push({ couponId: C, instance: 0, at: T + at, remaining: remaining ?? coupon.totalQuantity - live, totalQuantity: coupon.totalQuantity, liveInMongo: live, totalInMongo: coupon.totalQuantity });
      return api;
    },
    rules: () => checkHistory(h).map((finding) => finding.rule),
  };
  return api;
}

describe('the nemesis checker finds each answer no order of events allows', () => {
  test('ISSUED whose issuance is not in MongoDB (guarantee 3)', () => {
    const run = history().coupon(3).claim('u1', 100, 200, 'ISSUED', { id: 'i1', sequence: 1 }).converged();
    expect(run.rules()).toContain('issued-not-stored');
  });

  test('ISSUED stored for another sequence than answered', () => {
    const run = history().coupon(3).stored('i1', 'u1', 2, 150).claim('u1', 100, 200, 'ISSUED', { id: 'i1', sequence: 1 }).converged();
    expect(run.rules()).toContain('issued-not-stored');
  });

  test('ALREADY_ISSUED with an issuance whose cancel was acknowledged before the claim was sent (guarantee 8)', () => {
    const run = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150, { status: 'CANCELLED', cancelledAt: T + 1050 })
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .cancel('i1', 'u1', 1000, 1100, { status: 'CANCELLED' })
      .claim('u1', 1500, 1600, 'ALREADY_ISSUED', { id: 'i1' })
      .converged();
    expect(run.rules()).toEqual(['already-issued-not-live']);
  });

  test('ALREADY_ISSUED showing a CANCELLED issuance, even during the cancel', () => {
    const run = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150, { status: 'CANCELLED', cancelledAt: T + 1050 })
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .cancel('i1', 'u1', 1000, 1100, { status: 'CANCELLED' })
      .claim('u1', 1020, 1200, 'ALREADY_ISSUED', { id: 'i1', status: 'CANCELLED' })
      .converged();
    expect(run.rules()).toEqual(['already-issued-not-live']);
  });

  test('a claim that shows an issuance ACTIVE after its redeem was acknowledged', () => {
    const run = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150, { status: 'REDEEMED', redeemedAt: T + 1050, orderId: 'o1' })
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .redeem('i1', 'u1', 'o1', 1000, 1100, { status: 'REDEEMED' })
      .claim('u1', 1500, 1600, 'ALREADY_ISSUED', { id: 'i1' })
      .converged();
    expect(run.rules()).toEqual(['stale-lifecycle']);
  });

  test('two live issuances of one user, more live issuances than totalQuantity, a duplicate live sequence (guarantees 1 and 2)', () => {
    const run = history().coupon(2).stored('i1', 'u1', 1, 100).stored('i2', 'u1', 2, 200).stored('i3', 'u2', 2, 300).converged(0);
    expect(run.rules()).toEqual(expect.arrayContaining(['oversell', 'duplicate-sequence', 'two-live-per-user', 'not-converged']));
  });

  test('a live sequence above a lowered totalQuantity', () => {
    const run = history().coupon(4).stored('i1', 'u1', 3, 100).update(2, 500, 600).finalTotal(2).converged();
    expect(run.rules()).toEqual(['sequence-out-of-range']);
  });

  test('SOLD_OUT while, throughout the request and the second before it, a unit was free', () => {
    const run = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150)
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .claim('u2', 3000, 3100, 'SOLD_OUT', undefined, 0)
      .converged();
    expect(run.rules()).toEqual(expect.arrayContaining(['sold-out-while-free']));
  });

  test('SOLD_OUT more than a second after a raise was acknowledged', () => {
    const run = history()
      .coupon(1)
      .stored('i1', 'u1', 1, 150)
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .update(2, 1000, 1100)
      .finalTotal(2)
      .claim('u2', 2500, 2600, 'SOLD_OUT', undefined, 0)
      .converged();
    expect(run.rules()).toEqual(expect.arrayContaining(['sold-out-while-free']));
  });

  test('an update raising the stock that answers SOLD_OUT with nothing remaining', () => {
    const run = history()
      .coupon(1)
      .stored('i1', 'u1', 1, 150)
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .update(3, 1000, 1100, { status: 'SOLD_OUT', remaining: 0, coupon: { id: C, totalQuantity: 3 } })
      .finalTotal(3)
      .converged();
    expect(run.rules()).toEqual(['update-answer-untrue']);
  });

  test('SOLD_OUT to a user who holds a live issuance', () => {
    const run = history().coupon(1).stored('i1', 'u1', 1, 150).claim('u1', 100, 200, 'ISSUED', { id: 'i1' }).claim('u1', 1000, 1100, 'SOLD_OUT', undefined, 0).converged();
    expect(run.rules()).toEqual(['sold-out-to-holder']);
  });

  test('a redeem answered REDEEMED for two orders, and a cancelled REDEEMED issuance (guarantee 6)', () => {
    const twice = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150, { status: 'REDEEMED', redeemedAt: T + 1000, orderId: 'o1' })
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .redeem('i1', 'u1', 'o1', 1000, 1100, { status: 'REDEEMED' })
      .redeem('i1', 'u1', 'o2', 1000, 1100, { status: 'REDEEMED' })
      .converged();
    expect(twice.rules()).toEqual(expect.arrayContaining(['redeemed-twice', 'redeem-not-stored']));
    const cancelled = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150, { status: 'CANCELLED', cancelledAt: T + 1200 })
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .redeem('i1', 'u1', 'o1', 1000, 1100, { status: 'REDEEMED' })
      .cancel('i1', 'u1', 1150, 1250, { status: 'CANCELLED' })
      .converged();
    expect(cancelled.rules()).toEqual(['redeemed-then-cancelled']);
  });

  test('a request with no answer in 3 s, and SERVICE_UNAVAILABLE with no fault near (guarantee 5)', () => {
    const run = history()
      .coupon(3)
      .op('claim', C, 'u1', 100, 3900, { code: 'SERVICE_UNAVAILABLE' })
      .op('claim', C, 'u2', 20_000, 20_100, { failure: 'socket hang up' })
      .fault('mongodb-stall', 0, 2000)
      .converged();
    expect(run.rules()).toEqual(['no-answer-in-3s', 'unavailable-without-fault']);
  });

  test('an INTERNAL_SERVER_ERROR answer', () => {
    expect(history().coupon(3).op('claim', C, 'u1', 100, 200, { code: 'INTERNAL_SERVER_ERROR' }).converged().rules()).toEqual(['unexpected-error']);
  });

  test('remaining not converging to totalQuantity minus the live issuances after the faults (guarantee 4)', () => {
    const run = history().coupon(3).stored('i1', 'u1', 1, 150).claim('u1', 100, 200, 'ISSUED', { id: 'i1' }).converged(1);
    expect(run.rules()).toEqual(['not-converged']);
  });

  test('an end undone, an update lost, and a win more than a second after the end was answered', () => {
    const run = history()
      .coupon(3, C, null)
      .update(5, 100, 200)
      .end(300, 400)
      .stored('i1', 'u1', 1, 2000)
      .claim('u1', 1900, 2100, 'ISSUED', { id: 'i1' })
      .converged();
    expect(run.rules()).toEqual(expect.arrayContaining(['issued-after-end', 'end-undone', 'update-lost']));
  });

  test('a watcher that sees an older remaining after a newer one, or a value the stock never had', () => {
    const back = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150)
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .watcher([
        { at: 50, remaining: 3, totalQuantity: 3, status: 'ACTIVE' },
        { at: 300, remaining: 2, totalQuantity: 3, status: 'ACTIVE' },
        { at: 5000, remaining: 3, totalQuantity: 3, status: 'ACTIVE' },
      ])
      .converged();
    expect(back.rules()).toEqual(expect.arrayContaining(['older-after-newer', 'remaining-implausible', 'subscription-stuck']));
  });

  test('a watcher not completed after the end, and events after ENDED', () => {
    const run = history()
      .coupon(3, C, 500)
      .end(400, 500)
      .watcher([
        { at: 50, remaining: 3, totalQuantity: 3, status: 'ACTIVE' },
        { at: 600, remaining: 3, totalQuantity: 3, status: 'ENDED' },
        { at: 700, remaining: 3, totalQuantity: 3, status: 'ENDED' },
      ])
      .converged();
    expect(run.rules()).toEqual(expect.arrayContaining(['event-after-ended', 'ended-not-completed']));
  });
});

describe('the nemesis checker accepts what some order of events allows', () => {
  test('an update answered while a cancel is in flight still counts the cancelled unit as taken (the cancel writes MongoDB, then Redis)', () => {
    // seed 3000: the cancel's MongoDB write came 16 ms before the update, its Redis part after it.
    const updateAt = (start: number) =>
      history()
        .coupon(2)
        .stored('i1', 'u1', 1, 150)
        .stored('i2', 'u2', 2, 250, { status: 'CANCELLED', cancelledAt: T + 984 })
        .claim('u1', 100, 200, 'ISSUED', { id: 'i1' }, 1)
        .claim('u2', 200, 300, 'ISSUED', { id: 'i2' }, 0)
        .cancel('i2', 'u2', 926, 1153, { status: 'CANCELLED' })
        .update(2, start, start + 80, { status: 'SOLD_OUT', remaining: 0, coupon: { id: C, totalQuantity: 2 } })
        .converged();
    expect(checkHistory(updateAt(1000).h)).toEqual([]);
    // Once the cancel has answered, its unit is free: the same answer then is untrue.
    expect(updateAt(1200).rules()).toEqual(['update-answer-untrue']);
  });

  test('a drop with wins, repeats, a sell-out, a cancel and a new winner, redeems repeated and conflicting, and a raise', () => {
    const run = history()
      .coupon(2)
      .stored('i1', 'u1', 1, 150, { status: 'REDEEMED', redeemedAt: T + 2050, orderId: 'o1' })
      .stored('i2', 'u2', 2, 250, { status: 'CANCELLED', cancelledAt: T + 3050 })
      .stored('i3', 'u3', 2, 3600)
      .stored('i4', 'u4', 3, 5600)
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' }, 1)
      .claim('u2', 200, 300, 'ISSUED', { id: 'i2' }, 0)
      .claim('u1', 400, 500, 'ALREADY_ISSUED', { id: 'i1' }, 0)
      .claim('u3', 600, 700, 'SOLD_OUT', undefined, 0)
      .redeem('i1', 'u1', 'o1', 2000, 2100, { status: 'REDEEMED' })
      .redeem('i1', 'u1', 'o1', 2200, 2300, { status: 'REDEEMED' })
      .redeem('i1', 'u1', 'o2', 2400, 2500, { code: 'ISSUANCE_NOT_ACTIVE' })
      .cancel('i1', 'u1', 2600, 2700, { code: 'ISSUANCE_NOT_ACTIVE' })
      .cancel('i2', 'u2', 3000, 3100, { status: 'CANCELLED' })
      .cancel('i2', 'u2', 3200, 3300, { status: 'CANCELLED' })
      // Within the second a returned unit may take to show: SOLD_OUT is still true enough.
      .claim('u4', 3150, 3250, 'SOLD_OUT', undefined, 0)
      .claim('u3', 3500, 3700, 'ISSUED', { id: 'i3' }, 0)
      .update(3, 5000, 5100, { status: 'ACTIVE', remaining: 1, coupon: { id: C, totalQuantity: 3 } })
      .finalTotal(3)
      .claim('u4', 5500, 5700, 'ISSUED', { id: 'i4' }, 0)
      .update(1, 6000, 6100, { code: 'BAD_USER_INPUT' })
      .watcher([
        { at: 50, remaining: 2, totalQuantity: 2, status: 'ACTIVE' },
        { at: 260, remaining: 0, totalQuantity: 2, status: 'SOLD_OUT' },
        { at: 3060, remaining: 1, totalQuantity: 2, status: 'ACTIVE' },
        { at: 3650, remaining: 0, totalQuantity: 2, status: 'SOLD_OUT' },
        { at: 5100, remaining: 1, totalQuantity: 3, status: 'ACTIVE' },
        { at: 5650, remaining: 0, totalQuantity: 3, status: 'SOLD_OUT' },
      ])
      .converged();
    expect(checkHistory(run.h)).toEqual([]);
  });

  test('ALREADY_ISSUED racing its own cancel, shown ACTIVE: the claim came first', () => {
    const run = history()
      .coupon(3)
      .stored('i1', 'u1', 1, 150, { status: 'CANCELLED', cancelledAt: T + 1050 })
      .claim('u1', 100, 200, 'ISSUED', { id: 'i1' })
      .cancel('i1', 'u1', 1000, 1100, { status: 'CANCELLED' })
      .claim('u1', 1020, 1200, 'ALREADY_ISSUED', { id: 'i1' })
      .converged();
    expect(run.rules()).toEqual([]);
  });

  test('under a fault: SERVICE_UNAVAILABLE, no answer from a killed instance, a claim that reserved a unit and got no result, a watcher on the killed instance', () => {
    const run = history()
      .coupon(1)
      .fault('kill-instance', 1000, 4000, 1)
      .fault('redis-stall', 6000, 7000)
      .op('claim', C, 'u1', 1500, 1510, { failure: 'connect ECONNREFUSED' }, {}, 1)
      .op('claim', C, 'u2', 6100, 8100, { code: 'SERVICE_UNAVAILABLE' })
      // u2's reservation may still hold the only unit for a while: SOLD_OUT is allowed.
      .claim('u3', 8200, 8300, 'SOLD_OUT', undefined, 0)
      .watcher([{ at: 500, remaining: 1, totalQuantity: 1, status: 'ACTIVE' }], { end: 1000, error: 'socket closed 1006' })
      .watcher([
        { at: 5000, remaining: 1, totalQuantity: 1, status: 'ACTIVE' },
        { at: 6200, remaining: 0, totalQuantity: 1, status: 'SOLD_OUT' },
        { at: 12000, remaining: 1, totalQuantity: 1, status: 'ACTIVE' },
      ])
      .converged();
    expect(run.rules()).toEqual([]);
  });

  test('an end: ENDED pushed and the subscription completed; a win during the allowed second', () => {
    const run = history()
      .coupon(3, C, 400)
      .stored('i1', 'u1', 1, 800)
      .end(300, 400)
      .claim('u1', 700, 900, 'ISSUED', { id: 'i1' })
      .watcher(
        [
          { at: 50, remaining: 3, totalQuantity: 3, status: 'ACTIVE' },
          { at: 600, remaining: 3, totalQuantity: 3, status: 'ENDED' },
        ],
        { end: 600, completed: true },
      )
      .converged();
    expect(run.rules()).toEqual([]);
  });

  test('concurrent updates: MongoDB may keep either value, and a failed update may or may not have applied', () => {
    const base = () => history().coupon(3).update(5, 100, 300).update(7, 150, 250).op('update', C, 'operator', 400, 2400, { code: 'SERVICE_UNAVAILABLE' }, { totalQuantity: 9 }).fault('mongodb-stall', 400, 2000);
    for (const total of [5, 7, 9]) expect(base().finalTotal(total).converged().rules()).toEqual([]);
    expect(base().finalTotal(3).converged().rules()).toEqual(['update-lost']);
  });
});
