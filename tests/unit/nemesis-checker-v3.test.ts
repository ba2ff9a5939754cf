/**
 * The nemesis checker's rules for the opening draw and for webhooks (tests/nemesis/checker-v3.ts)
 * on hand-made histories: a legal history of each is accepted, and each history breaking one rule
 * is reported under that rule (so the rules cannot pass by finding nothing).
 */
import { checkDraws, checkWebhook, rankKey, sha256Hex } from '../nemesis/checker-v3';
import type { History, Operation, StoredDraw, WebhookRequest } from '../nemesis/history';

const T = 1_800_000_000_000;
const C = 'c0000000000000000000000d';
const SEED = '11'.repeat(32);
const USERS = ['u1', 'u2', 'u3', 'u4', 'u5'];
const id24 = (n: number) => n.toString(16).padStart(24, '0');

/** A legal drawn coupon: 3 units, window [T+1000, T+1500), five entrants, the three lowest keys won. */
function drawHistory() {
  const ranked = [...USERS].sort((a, b) => (rankKey(SEED, a) < rankKey(SEED, b) ? -1 : 1));
  const draw: StoredDraw = {
    couponId: C,
    startsAt: T + 1000,
    openingDrawMs: 500,
    drawCommitment: sha256Hex(SEED),
    drawSeed: SEED,
    drawDone: true,
    entrants: ranked.map((userId, i) => ({ rank: i + 1, userId, rankKey: rankKey(SEED, userId), won: i < 3, sequence: i < 3 ? i + 1 : null })),
  };
  const h: History = {
    seed: 1,
    profile: 'unit',
    topology: 'single',
    startedAt: T,
    operations: [],
    faults: [],
    watchers: [],
    final: { coupons: [{ id: C, totalQuantity: 3, endsAt: null }], issuances: [], convergence: [], draws: [draw] },
  };
  const op = (user: string, start: number, end: number, answer: Operation['answer']) =>
    h.operations.push({ id: h.operations.length, kind: 'drawClaim', instance: 0, couponId: C, user, request: {}, start: T + start, end: T + end, answer });
  ranked.slice(0, 3).forEach((user, i) => h.final.issuances.push({ id: id24(i + 1), couponId: C, userId: user, sequence: i + 1, status: 'ACTIVE', issuedAt: T + 1510 }));
  const issuance = (i: number) => ({ id: id24(i + 1), couponId: C, userId: ranked[i]!, sequence: i + 1, status: 'ACTIVE' });
  op('u1', 700, 720, { status: 'NOT_STARTED' }); // before startsAt
  // Held claims in the window, answered when the draw is done.
  ranked.forEach((user, i) => op(user, 1100 + i * 50, 1600, i < 3 ? { status: 'ISSUED', remaining: 0, issuance: issuance(i) } : { status: 'SOLD_OUT', remaining: 0 }));
  op(ranked[0]!, 3000, 3020, { status: 'ALREADY_ISSUED', remaining: 0, issuance: issuance(0) }); // a winner after the draw
  op(ranked[4]!, 3000, 3020, { status: 'SOLD_OUT', remaining: 0 });
  return { h, draw, ranked };
}

const rules = (h: History) => checkDraws(h, 1000).map((f) => f.rule);

describe('the opening draw rules', () => {
  test('a draw whose winners are the lowest rank keys, answered in time, is accepted', () => {
    expect(checkDraws(drawHistory().h, 1000)).toEqual([]);
  });

  test('a held claim answered SERVICE_UNAVAILABLE under a fault, and an entrant lost to it, are accepted', () => {
    const { h, ranked } = drawHistory();
    h.faults.push({ kind: 'kill-instance', target: 'instance 0', instance: 0, start: T + 1200, end: T + 2500 });
    h.operations.find((op) => op.user === ranked[4] && op.start < T + 1600)!.answer = { code: 'SERVICE_UNAVAILABLE' };
    expect(checkDraws(h, 1000)).toEqual([]);
  });

  test('a loser answered ISSUED is reported', () => {
    const { h, ranked } = drawHistory();
    h.operations.find((op) => op.user === ranked[3] && op.answer.status === 'SOLD_OUT')!.answer = { status: 'ISSUED', issuance: { id: id24(9), couponId: C, userId: ranked[3]!, sequence: 3 } };
    expect(rules(h)).toContain('draw-loser-issued');
  });

  test('winners that are not the lowest rank keys are reported', () => {
    const { h, draw } = drawHistory();
    draw.entrants[2]!.won = false;
    draw.entrants[3]!.won = true;
    expect(rules(h)).toContain('draw-not-lowest');
  });

  test('a seed that does not match the commitment is reported', () => {
    const { h, draw } = drawHistory();
    draw.drawCommitment = sha256Hex('22'.repeat(32));
    expect(rules(h)).toContain('draw-commitment-mismatch');
  });

  test('a draw done twice (two sets of entrants) is reported', () => {
    const { h, draw } = drawHistory();
    draw.entrants.push({ ...draw.entrants[0]!, rank: 6 });
    expect(rules(h)).toContain('draw-done-twice');
  });

  test('winners whose sequences do not follow the ranking are reported', () => {
    const { h, draw } = drawHistory();
    [draw.entrants[0]!.sequence, draw.entrants[1]!.sequence] = [2, 1];
    expect(rules(h)).toContain('draw-sequence-order');
  });

  test("a winner's claim after the draw answered ISSUED again, or with another issuance, is reported", () => {
    const { h, ranked } = drawHistory();
    h.operations.push({ ...h.operations.at(-2)!, id: h.operations.length, answer: { status: 'ISSUED', issuance: { id: id24(7), couponId: C, userId: ranked[0]!, sequence: 1 } } });
    expect(rules(h)).toEqual(expect.arrayContaining(['draw-winner-issued-again', 'draw-winner-other-issuance']));
  });

  test('someone outside the entrants issued a unit before the window closed is reported', () => {
    const { h } = drawHistory();
    h.final.issuances.push({ id: id24(8), couponId: C, userId: 'u9', sequence: 4, status: 'ACTIVE', issuedAt: T + 1200 });
    expect(rules(h)).toContain('draw-outsider-won');
  });

  test('a winner answered SOLD_OUT is reported', () => {
    const { h, ranked } = drawHistory();
    h.operations.find((op) => op.user === ranked[1] && op.answer.status === 'ISSUED')!.answer = { status: 'SOLD_OUT' };
    expect(rules(h)).toContain('draw-winner-refused');
  });

  test('claims answered in the window while the draw was never done are reported', () => {
    const { h, draw } = drawHistory();
    Object.assign(draw, { drawDone: false, drawSeed: null });
    expect(rules(h)).toContain('draw-not-done');
  });

  test('an entrant who never claimed is reported', () => {
    const { h, ranked } = drawHistory();
    h.operations = h.operations.filter((op) => op.user !== ranked[4]);
    expect(rules(h)).toContain('draw-phantom-entrant');
  });
});

// --- webhooks ---------------------------------------------------------------------------------

function hookHistory() {
  const issuance = { id: id24(1), couponId: C, userId: 'u1', sequence: 1, status: 'ACTIVE', orderId: null };
  const coupon = { id: C, totalQuantity: 1, remaining: 0, status: 'SOLD_OUT' };
  const requests: WebhookRequest[] = [];
  const send = (id: string, type: string, at: number, answer: number | 'hang', data: any, attempt = 1) =>
    requests.push({ id, type, attempt, answer, receivedAt: T + at, signatureValid: true, data });
  send(`evt_${id24(1)}_issued`, 'ISSUANCE_ISSUED', 100, 503, { issuance });
  send(`evt_${id24(1)}_issued`, 'ISSUANCE_ISSUED', 400, 204, { issuance }, 2);
  send(`evt_${C}_soldout_1_0`, 'COUPON_SOLD_OUT', 120, 204, { coupon });
  send(`evt_${id24(1)}_redeemed`, 'ISSUANCE_REDEEMED', 500, 'hang', { issuance: { ...issuance, status: 'REDEEMED', orderId: 'o1' } });
  send(`evt_${id24(1)}_redeemed`, 'ISSUANCE_REDEEMED', 1700, 204, { issuance: { ...issuance, status: 'REDEEMED', orderId: 'o1' } }, 2);
  send(`evt_${C}_ended_${T + 2000}`, 'COUPON_ENDED', 2100, 204, { coupon: { ...coupon, status: 'ENDED' } });
  const h: History = {
    seed: 1,
    profile: 'unit',
    topology: 'single',
    startedAt: T,
    operations: [
      { id: 0, kind: 'claim', instance: 0, couponId: C, user: 'u1', request: {}, start: T + 50, end: T + 90, answer: { status: 'ISSUED', remaining: 0, issuance } },
      { id: 1, kind: 'redeem', instance: 0, couponId: C, user: 'u1', request: { issuanceId: id24(1), orderId: 'o1' }, start: T + 300, end: T + 350, answer: { status: 'REDEEMED' } },
      { id: 2, kind: 'end', instance: 0, couponId: C, user: 'operator', request: {}, start: T + 2000, end: T + 2050, answer: { status: 'ENDED' } },
    ],
    faults: [],
    watchers: [],
    final: {
      coupons: [{ id: C, totalQuantity: 1, endsAt: T + 2000 }],
      issuances: [{ id: id24(1), couponId: C, userId: 'u1', sequence: 1, status: 'REDEEMED', issuedAt: T + 60, redeemedAt: T + 320, orderId: 'o1' }],
      convergence: [],
    },
    webhook: { registeredAt: T, requests, pendingAtEnd: 0, failedAtEnd: 0 },
  };
  return { h, requests };
}

const hookRules = (h: History) => checkWebhook(h).map((f) => f.rule);

describe('the webhook rules (guarantee 7)', () => {
  test('every acknowledged change delivered after retries, in order and signed, is accepted', () => {
    expect(checkWebhook(hookHistory().h)).toEqual([]);
  });

  test('an ISSUED answer whose event was never acknowledged is reported', () => {
    const { h, requests } = hookHistory();
    requests[1]!.answer = 500;
    expect(hookRules(h)).toContain('webhook-event-missing');
  });

  test('an acknowledged redeem or end without its event is reported', () => {
    const { h, requests } = hookHistory();
    h.webhook!.requests = requests.filter((r) => r.type !== 'ISSUANCE_REDEEMED' && r.type !== 'COUPON_ENDED');
    expect(checkWebhook(h).filter((f) => f.rule === 'webhook-event-missing').map((f) => f.operation)).toEqual([1, 2]);
  });

  test('a sell-out MongoDB implies without COUPON_SOLD_OUT is reported', () => {
    const { h, requests } = hookHistory();
    h.webhook!.requests = requests.filter((r) => r.type !== 'COUPON_SOLD_OUT');
    expect(hookRules(h)).toContain('webhook-sold-out-missing');
  });

  test('a total lowered onto the live count after the last win is a sell-out too: its COUPON_SOLD_OUT is required', () => {
    const { h, requests } = hookHistory();
    h.operations[0]!.answer.remaining = 1;
    h.operations.push({ id: 3, kind: 'update', instance: 0, couponId: C, user: 'operator', request: { totalQuantity: 1 }, start: T + 150, end: T + 200, answer: { status: 'SOLD_OUT' } });
    const lowered = requests.find((r) => r.type === 'COUPON_SOLD_OUT')!;
    lowered.id = `evt_${C}_soldout_lowered_r2`;
    expect(checkWebhook(h)).toEqual([]);
    h.webhook!.requests = requests.filter((r) => r.type !== 'COUPON_SOLD_OUT');
    expect(hookRules(h)).toContain('webhook-sold-out-missing');
    // Lowered before the webhook was registered: not required.
    h.webhook!.registeredAt = T + 160;
    expect(hookRules(h)).not.toContain('webhook-sold-out-missing');
  });

  test('an event for an issuance MongoDB does not hold is reported as a phantom', () => {
    const { h, requests } = hookHistory();
    requests.push({ ...requests[0]!, id: `evt_${id24(5)}_issued`, answer: 204, data: { issuance: { id: id24(5), couponId: C, userId: 'u2', sequence: 2 } } });
    expect(hookRules(h)).toContain('webhook-phantom');
  });

  test('REDEEMED sent before its ISSUED was acknowledged is reported', () => {
    const { h, requests } = hookHistory();
    requests[3]!.receivedAt = T + 200; // the ISSUED was acknowledged at +400
    expect(hookRules(h)).toContain('webhook-out-of-order');
  });

  test('a request whose signature does not verify is reported', () => {
    const { h, requests } = hookHistory();
    requests[2]!.signatureValid = false;
    expect(hookRules(h)).toContain('webhook-bad-signature');
  });

  test('deliveries still pending when the harness stopped waiting are reported', () => {
    const { h } = hookHistory();
    h.webhook!.pendingAtEnd = 2;
    expect(hookRules(h)).toContain('webhook-not-drained');
  });
});
