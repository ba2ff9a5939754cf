/**
 * The nemesis checker: pure logic over a recorded history (tests/nemesis/history.ts). It replays
 * the answers clients got against MongoDB's final state and the times of every request, fault
 * and admin change, and reports each answer that no order of events allows (contract guarantees
 * 1-8). Where timing is uncertain it assumes what excuses the service (a request may take effect
 * at any moment between its start and its end, a failed change may or may not have applied, an
 * administration, status or stock change may take the contract's 1 s to show), so that every
 * finding is a real contradiction, not a race of the harness's own.
 *
 * Unit-tested with hand-made histories in tests/unit/nemesis-checker.test.ts.
 */
import { checkDraws, checkWebhook } from './checker-v3';
import type { Answer, FaultWindow, Finding, History, Operation, StoredIssuance, WatcherRecord } from './history';

export interface CheckerOptions {
  /** The contract's 3 s for an answer, plus a margin for the test process's own event-loop lag. */
  answerWithinMs: number;
  /** The contract's allowance for administration, status and stock to show everywhere. */
  allowanceMs: number;
  /** After a fault is healed, how long SERVICE_UNAVAILABLE or no answer is still excused. */
  recoveryMs: number;
  /** How long a claim that failed (no result) may hold a reserved unit before it is written or released. */
  pendingMs: number;
}

export const DEFAULT_CHECKER_OPTIONS: CheckerOptions = {
  answerWithinMs: 3500,
  allowanceMs: 1000,
  recoveryMs: 5000,
  pendingMs: 5000,
};

/** Error codes each kind may answer without it being a finding (others, e.g. INTERNAL_SERVER_ERROR, are). */
const EXPECTED_CODES: Record<string, string[]> = {
  create: ['SERVICE_UNAVAILABLE'],
  claim: ['SERVICE_UNAVAILABLE'],
  // RATE_LIMITED: the service's own per-user limit on redeems and cancels (LIFECYCLE_RATE_PER_USER, 5/s).
  cancel: ['SERVICE_UNAVAILABLE', 'ISSUANCE_NOT_ACTIVE', 'RATE_LIMITED'],
  redeem: ['SERVICE_UNAVAILABLE', 'ISSUANCE_NOT_ACTIVE', 'ISSUANCE_EXPIRED', 'RATE_LIMITED'],
  update: ['SERVICE_UNAVAILABLE', 'BAD_USER_INPUT'],
  end: ['SERVICE_UNAVAILABLE'],
  createDraw: ['SERVICE_UNAVAILABLE'],
  drawClaim: ['SERVICE_UNAVAILABLE'],
};

const LIVE = (doc: StoredIssuance) => doc.status !== 'CANCELLED';
const isResult = (answer: Answer) => answer.status !== undefined && !answer.code && !answer.failure;
const unavailable = (answer: Answer) => answer.code === 'SERVICE_UNAVAILABLE' || answer.failure !== undefined;

export function checkHistory(history: History, options: Partial<CheckerOptions> = {}): Finding[] {
  return new Checker(history, { ...DEFAULT_CHECKER_OPTIONS, ...options }).run();
}

/** One line per finding, with the seed that reproduces the run. */
export function formatFindings(history: Pick<History, 'seed' | 'profile' | 'topology'>, findings: Finding[]): string {
  return findings
    .map((f) => `[seed ${history.seed} ${history.profile}/${history.topology}] guarantee ${f.guarantee} ${f.rule}${f.operation !== undefined ? ` op#${f.operation}` : ''}${f.watcher !== undefined ? ` watcher#${f.watcher}` : ''}: ${f.message}`)
    .join('\n');
}

interface TotalChange {
  value: number;
  start: number;
  end: number;
  /** Acknowledged: the change is in effect from `end` (+ the allowance) until superseded. */
  acked: boolean;
}

class Checker {
  private readonly findings: Finding[] = [];
  private readonly issuances: Map<string, StoredIssuance>;
  private readonly byCoupon = new Map<string, StoredIssuance[]>();
  private readonly opsByIssuance = new Map<string, Operation[]>();
  private readonly totals = new Map<string, TotalChange[]>();
  /** Per issuance: the start of the claim that reserved it, when a claim was answered with it as ISSUED. */
  private readonly issuedBy = new Map<string, Operation>();

  constructor(
    private readonly history: History,
    private readonly options: CheckerOptions,
  ) {
    this.issuances = new Map(history.final.issuances.map((doc) => [doc.id, doc]));
    for (const doc of history.final.issuances) this.listOf(this.byCoupon, doc.couponId).push(doc);
    for (const op of history.operations) {
      if (op.request.issuanceId) this.listOf(this.opsByIssuance, op.request.issuanceId).push(op);
      if (op.kind === 'claim' && op.answer.status === 'ISSUED' && op.answer.issuance) this.issuedBy.set(op.answer.issuance.id, op);
      const value = op.kind === 'create' ? op.answer.coupon?.totalQuantity : op.kind === 'update' ? op.request.totalQuantity : undefined;
      if (value === undefined || op.answer.code === 'BAD_USER_INPUT') continue;
      if (op.kind === 'create' && !op.answer.coupon) continue;
      this.listOf(this.totals, op.couponId).push({ value, start: op.start, end: op.end, acked: isResult(op.answer) });
    }
  }

  run(): Finding[] {
    for (const op of this.history.operations) {
      this.checkTiming(op);
      if (op.kind === 'claim') this.checkClaim(op);
      if (op.kind === 'redeem') this.checkRedeem(op);
      if (op.kind === 'cancel') this.checkCancel(op);
      if (op.kind === 'update') this.checkUpdate(op);
    }
    this.checkStored();
    this.checkAdministration();
    this.checkConvergence();
    for (const watcher of this.history.watchers) this.checkWatcher(watcher);
    this.findings.push(...checkDraws(this.history, this.options.allowanceMs), ...checkWebhook(this.history));
    return this.findings;
  }

  private listOf<K, V>(map: Map<K, V[]>, key: K): V[] {
    let list = map.get(key);
    if (!list) map.set(key, (list = []));
    return list;
  }

  private report(finding: Finding) {
    this.findings.push(finding);
  }

  private faultNear(from: number, to: number): FaultWindow | undefined {
    return this.history.faults.find((fault) => fault.start <= to && fault.end + this.options.recoveryMs >= from);
  }

  private instanceKilledNear(instance: number, from: number, to: number): boolean {
    return this.history.faults.some((f) => f.instance === instance && f.start <= to && f.end + this.options.recoveryMs >= from);
  }

  // --- every operation: guarantee 5 and the error codes -------------------------------------

  private checkTiming(op: Operation) {
    const took = op.end - op.start;
    if (took > this.options.answerWithinMs && !(op.answer.failure && this.instanceKilledNear(op.instance, op.start, op.end))) {
      this.report({ rule: 'no-answer-in-3s', guarantee: 5, operation: op.id, couponId: op.couponId, message: `${op.kind} took ${took.toFixed(0)} ms (${describe(op.answer)})` });
    }
    if (unavailable(op.answer) && !this.faultNear(op.start, op.end)) {
      this.report({ rule: 'unavailable-without-fault', guarantee: 5, operation: op.id, couponId: op.couponId, message: `${op.kind} answered ${describe(op.answer)} while no fault was active or recovering` });
    }
    const expected = EXPECTED_CODES[op.kind];
    if (op.answer.code && expected && !expected.includes(op.answer.code)) {
      this.report({ rule: 'unexpected-error', guarantee: 8, operation: op.id, couponId: op.couponId, message: `${op.kind} answered ${op.answer.code}` });
    }
  }

  // --- claims: guarantees 2, 3 and 8 ---------------------------------------------------------

  /** Acknowledged cancels of an issuance, earliest answer first. */
  private ackedCancels(issuanceId: string) {
    return (this.opsByIssuance.get(issuanceId) ?? []).filter((op) => op.kind === 'cancel' && op.answer.status === 'CANCELLED').sort((a, b) => a.end - b.end);
  }

  private ackedRedeems(issuanceId: string) {
    return (this.opsByIssuance.get(issuanceId) ?? []).filter((op) => op.kind === 'redeem' && op.answer.status === 'REDEEMED').sort((a, b) => a.end - b.end);
  }

  private endsOf(couponId: string) {
    return this.history.operations.filter((op) => op.kind === 'end' && op.couponId === couponId);
  }

  private checkClaim(op: Operation) {
    const { answer } = op;
    const at = { operation: op.id, couponId: op.couponId };
    if (answer.status === 'ISSUED' || answer.status === 'ALREADY_ISSUED') {
      const shown = answer.issuance;
      if (!shown) return this.report({ rule: 'issuance-missing', guarantee: 8, ...at, message: `${answer.status} without an issuance` });
      const doc = this.issuances.get(shown.id);
      if (!doc || doc.userId !== op.user || doc.couponId !== op.couponId || doc.sequence !== shown.sequence) {
        return this.report({
          rule: answer.status === 'ISSUED' ? 'issued-not-stored' : 'already-issued-not-stored',
          guarantee: answer.status === 'ISSUED' ? 3 : 8,
          ...at,
          message: `${answer.status} ${shown.id} (user ${op.user}, sequence ${shown.sequence}) but MongoDB holds ${doc ? `user ${doc.userId}, coupon ${doc.couponId}, sequence ${doc.sequence}` : 'no such issuance'}`,
        });
      }
      const cancels = this.ackedCancels(shown.id);
      if (answer.status === 'ISSUED' && doc.status === 'CANCELLED' && (this.opsByIssuance.get(shown.id) ?? []).every((o) => o.kind !== 'cancel')) {
        this.report({ rule: 'issued-then-cancelled-by-nobody', guarantee: 3, ...at, message: `ISSUED ${shown.id} is CANCELLED in MongoDB, but nobody cancelled it` });
      }
      if (shown.status === 'CANCELLED') {
        this.report({ rule: 'already-issued-not-live', guarantee: 8, ...at, message: `${answer.status} with a CANCELLED issuance ${shown.id}` });
      } else if (answer.status === 'ALREADY_ISSUED' && cancels[0] && cancels[0].end < op.start) {
        this.report({
          rule: 'already-issued-not-live',
          guarantee: 8,
          ...at,
          message: `ALREADY_ISSUED ${shown.id}, whose cancel (op#${cancels[0].id}) was answered CANCELLED ${(op.start - cancels[0].end).toFixed(0)} ms before this claim was sent`,
        });
      }
      const redeemed = this.ackedRedeems(shown.id)[0];
      if (redeemed && redeemed.end < op.start && (shown.status !== 'REDEEMED' || shown.orderId !== redeemed.request.orderId)) {
        this.report({
          rule: 'stale-lifecycle',
          guarantee: 8,
          ...at,
          message: `${answer.status} shows ${shown.id} as ${shown.status} with order ${shown.orderId ?? 'none'}, but its redeem for ${redeemed.request.orderId} (op#${redeemed.id}) was answered ${(op.start - redeemed.end).toFixed(0)} ms before`,
        });
      }
      if (answer.status === 'ISSUED') {
        const ended = this.endsOf(op.couponId).find((end) => isResult(end.answer) && end.end + this.options.allowanceMs < op.start);
        if (ended) this.report({ rule: 'issued-after-end', guarantee: 8, ...at, message: `ISSUED ${shown.id} although endCoupon (op#${ended.id}) was answered ${(op.start - ended.end).toFixed(0)} ms before` });
      }
    }
    if (answer.status === 'SOLD_OUT') this.checkSoldOut(op);
    if (isResult(answer) && answer.remaining !== undefined && answer.status !== 'ENDED') {
      this.checkRemaining(op.couponId, answer.remaining, op.start - this.options.allowanceMs, op.end, { operation: op.id }, `claim answered ${answer.status}`);
    }
  }

  private checkSoldOut(op: Operation) {
    const at = { operation: op.id, couponId: op.couponId };
    // A user who holds a live issuance throughout the request is ALREADY_ISSUED, never SOLD_OUT.
    const held = (this.byCoupon.get(op.couponId) ?? []).find(
      (doc) => doc.userId === op.user && this.definitelyLiveFrom(doc) < op.start && this.definitelyLiveUntil(doc) > op.end,
    );
    if (held) this.report({ rule: 'sold-out-to-holder', guarantee: 8, ...at, message: `SOLD_OUT to ${op.user}, who held live issuance ${held.id} (sequence ${held.sequence}) throughout the request` });
    // An end may answer ENDED or SOLD_OUT; skip the stock check once one was sent.
    if (this.endsOf(op.couponId).some((end) => end.start <= op.end)) return;
    const from = op.start - this.options.allowanceMs;
    const minTotal = Math.min(...this.totalCandidates(op.couponId, from, op.end));
    const maxLive = this.maxLive(op.couponId, from, op.end);
    if (minTotal - maxLive >= 1) {
      this.report({
        rule: 'sold-out-while-free',
        guarantee: 8,
        ...at,
        message: `SOLD_OUT to ${op.user} while at least ${minTotal - maxLive} unit(s) were free throughout (totalQuantity ≥ ${minTotal}, at most ${maxLive} live or reserved, 1 s allowance included)`,
      });
    }
  }

  // --- the stock over time ---------------------------------------------------------------------

  /** Every totalQuantity that may have been in effect at some moment of [from, to]. */
  totalCandidates(couponId: string, from: number, to: number): number[] {
    const changes = this.totals.get(couponId) ?? [];
    const candidates = changes
      .filter((change) => change.start <= to)
      .filter((change) => !changes.some((later) => later.acked && later.start > change.end && later.end < from))
      .map((change) => change.value);
    if (candidates.length) return candidates;
    const stored = this.history.final.coupons.find((coupon) => coupon.id === couponId);
    return stored ? [stored.totalQuantity] : [0];
  }

  /** When the issuance surely held its unit: after its ISSUED answer, or its writing by a reconciler. */
  private definitelyLiveFrom(doc: StoredIssuance): number {
    const claim = this.issuedBy.get(doc.id);
    return claim ? Math.min(claim.end, doc.issuedAt + this.options.pendingMs) : doc.issuedAt + this.options.pendingMs;
  }

  /** Until when it surely held its unit: its cancellation, or the first cancel sent for it. */
  private definitelyLiveUntil(doc: StoredIssuance): number {
    const cancels = (this.opsByIssuance.get(doc.id) ?? []).filter((op) => op.kind === 'cancel');
    return Math.min(doc.cancelledAt ?? Infinity, ...cancels.map((op) => op.start));
  }

  /** From when it may have held a unit: its claim's start (the reservation), or well before its write. */
  private possiblyLiveFrom(doc: StoredIssuance): number {
    const claim = this.issuedBy.get(doc.id);
    return claim ? Math.min(claim.start, doc.issuedAt) : doc.issuedAt - this.options.pendingMs;
  }

  /**
   * Until when it may have held its unit. A cancel writes MongoDB (cancelledAt) and then gives the
   * unit back in Redis, so the unit may stay taken until the cancel's answer; a cancel that got
   * no result may leave it to the reconciler's next pass.
   */
  private possiblyLiveUntil(doc: StoredIssuance): number {
    if (doc.cancelledAt === undefined || doc.cancelledAt === null) return Infinity;
    const cancels = (this.opsByIssuance.get(doc.id) ?? []).filter((op) => op.kind === 'cancel' && op.start <= doc.cancelledAt!);
    return Math.max(doc.cancelledAt, ...cancels.map((op) => (unavailable(op.answer) ? op.end + this.options.pendingMs : op.end)));
  }

  /** Units that may have been taken at some moment of [from, to]: issuances and reservations of claims that got no result. */
  maxLive(couponId: string, from: number, to: number): number {
    const docs = this.byCoupon.get(couponId) ?? [];
    const stored = docs.filter((doc) => this.possiblyLiveFrom(doc) <= to && this.possiblyLiveUntil(doc) >= from).length;
    const reserving = this.history.operations.filter(
      (op) => op.kind === 'claim' && op.couponId === couponId && unavailable(op.answer) && op.start <= to && op.end + this.options.pendingMs >= from,
    ).length;
    return stored + reserving;
  }

  /** Units surely taken throughout [from, to]. */
  minLive(couponId: string, from: number, to: number): number {
    return (this.byCoupon.get(couponId) ?? []).filter((doc) => this.definitelyLiveFrom(doc) <= from && this.definitelyLiveUntil(doc) >= to).length;
  }

  /** A `remaining` told at some moment of [from, to] must be one the stock had then. */
  private checkRemaining(couponId: string, remaining: number, from: number, to: number, at: { operation?: number; watcher?: number }, what: string) {
    const totals = this.totalCandidates(couponId, from, to);
    const low = Math.max(0, Math.min(...totals) - this.maxLive(couponId, from, to));
    const high = Math.max(...totals) - this.minLive(couponId, from, to);
    if (remaining < low || remaining > high) {
      this.report({
        rule: remaining < 0 ? 'negative-remaining' : 'remaining-implausible',
        guarantee: remaining < 0 ? 1 : 8,
        couponId,
        ...at,
        message: `${what} remaining ${remaining}, but the stock was between ${low} and ${high} then (totalQuantity ${[...new Set(totals)].join('/')}, 1 s allowance included)`,
      });
    }
  }

  /** An acknowledged update's answer shows its own total (or a concurrent one's) and a stock it had. */
  private checkUpdate(op: Operation) {
    const shown = op.answer.coupon;
    if (!isResult(op.answer) || !shown || op.answer.remaining === undefined || op.answer.status === 'ENDED') return;
    const concurrent = this.history.operations.filter((other) => other.kind === 'update' && other.couponId === op.couponId && other.start <= op.end && other.end >= op.start);
    const totals = [...new Set(concurrent.map((other) => other.request.totalQuantity!))];
    const low = Math.max(0, Math.min(...totals) - this.maxLive(op.couponId, op.start, op.end));
    const high = Math.max(...totals) - this.minLive(op.couponId, op.start, op.end);
    if (!totals.includes(shown.totalQuantity) || op.answer.remaining < low || op.answer.remaining > high) {
      this.report({
        rule: 'update-answer-untrue',
        guarantee: 8,
        operation: op.id,
        couponId: op.couponId,
        message: `update to ${op.request.totalQuantity} answered totalQuantity ${shown.totalQuantity}, remaining ${op.answer.remaining} (${op.answer.status}); the stock was between ${low} and ${high} then`,
      });
    }
  }

  // --- redeem and cancel: guarantees 6 and 8 ----------------------------------------------------

  private checkRedeem(op: Operation) {
    const doc = this.issuances.get(op.request.issuanceId!);
    const at = { operation: op.id, couponId: op.couponId };
    if (op.answer.status === 'REDEEMED') {
      if (!doc || doc.status !== 'REDEEMED' || doc.orderId !== op.request.orderId) {
        this.report({
          rule: doc?.status === 'CANCELLED' ? 'redeemed-then-cancelled' : 'redeem-not-stored',
          guarantee: 6,
          ...at,
          message: `redeem for order ${op.request.orderId} answered REDEEMED, but MongoDB holds ${doc ? `${doc.status} with order ${doc.orderId ?? 'none'}` : 'no such issuance'}`,
        });
      }
    }
    if (op.answer.code === 'ISSUANCE_NOT_ACTIVE' && doc) {
      if (doc.status === 'ACTIVE') {
        this.report({ rule: 'refused-while-active', guarantee: 8, ...at, message: `redeem answered ISSUANCE_NOT_ACTIVE, but the issuance is still ACTIVE in MongoDB` });
      } else if (doc.status === 'REDEEMED' && doc.orderId === op.request.orderId && (doc.redeemedAt ?? Infinity) < op.start) {
        this.report({ rule: 'same-order-refused', guarantee: 8, ...at, message: `redeem again for the same order ${doc.orderId} answered ISSUANCE_NOT_ACTIVE instead of the issuance unchanged` });
      }
    }
  }

  private checkCancel(op: Operation) {
    const doc = this.issuances.get(op.request.issuanceId!);
    const at = { operation: op.id, couponId: op.couponId };
    if (op.answer.status === 'CANCELLED' && doc?.status !== 'CANCELLED') {
      this.report({
        rule: doc?.status === 'REDEEMED' ? 'redeemed-then-cancelled' : 'cancel-not-stored',
        guarantee: doc?.status === 'REDEEMED' ? 6 : 8,
        ...at,
        message: `cancel answered CANCELLED, but MongoDB holds ${doc ? doc.status : 'no such issuance'}`,
      });
    }
    if (op.answer.code === 'ISSUANCE_NOT_ACTIVE' && doc) {
      if (doc.status === 'ACTIVE') this.report({ rule: 'refused-while-active', guarantee: 8, ...at, message: 'cancel answered ISSUANCE_NOT_ACTIVE, but the issuance is still ACTIVE in MongoDB' });
      if (doc.status === 'CANCELLED' && (doc.cancelledAt ?? Infinity) < op.start) {
        this.report({ rule: 'cancel-not-idempotent', guarantee: 8, ...at, message: 'cancel of an issuance cancelled before answered ISSUANCE_NOT_ACTIVE instead of the issuance unchanged' });
      }
    }
  }

  // --- MongoDB's final state: guarantees 1, 2, 6 -------------------------------------------------

  private checkStored() {
    for (const coupon of this.history.final.coupons) {
      const docs = this.byCoupon.get(coupon.id) ?? [];
      const live = docs.filter(LIVE);
      const at = { couponId: coupon.id };
      if (live.length > coupon.totalQuantity) {
        this.report({ rule: 'oversell', guarantee: 1, ...at, message: `${live.length} live issuances for totalQuantity ${coupon.totalQuantity}` });
      }
      for (const [sequence, holders] of groupBy(live, (doc) => doc.sequence)) {
        if (holders.length > 1) this.report({ rule: 'duplicate-sequence', guarantee: 1, ...at, message: `sequence ${sequence} is held live by ${holders.map((d) => d.id).join(', ')}` });
        if (sequence < 1 || sequence > coupon.totalQuantity) {
          this.report({ rule: 'sequence-out-of-range', guarantee: 1, ...at, message: `live sequence ${sequence} (${holders[0]!.id}) is outside 1..${coupon.totalQuantity}` });
        }
      }
      for (const [user, held] of groupBy(live, (doc) => doc.userId)) {
        if (held.length > 1) this.report({ rule: 'two-live-per-user', guarantee: 2, ...at, message: `user ${user} holds ${held.length} live issuances: ${held.map((d) => d.id).join(', ')}` });
      }
    }
    for (const doc of this.history.final.issuances) {
      const at = { couponId: doc.couponId };
      if (doc.status === 'REDEEMED' && (!doc.orderId || doc.cancelledAt)) {
        this.report({ rule: 'redeemed-malformed', guarantee: 6, ...at, message: `REDEEMED ${doc.id} has order ${doc.orderId ?? 'none'} and cancelledAt ${doc.cancelledAt ?? 'none'}` });
      }
      if (doc.status === 'CANCELLED' && (doc.orderId || doc.redeemedAt)) {
        this.report({ rule: 'redeemed-then-cancelled', guarantee: 6, ...at, message: `CANCELLED ${doc.id} was redeemed for ${doc.orderId}` });
      }
      const orders = new Set(this.ackedRedeems(doc.id).map((op) => op.request.orderId));
      if (orders.size > 1) this.report({ rule: 'redeemed-twice', guarantee: 6, ...at, message: `${doc.id} answered REDEEMED for ${orders.size} orders: ${[...orders].join(', ')}` });
    }
  }

  // --- administration: guarantee 8 (changes are kept, ends stay) ---------------------------------

  private checkAdministration() {
    for (const coupon of this.history.final.coupons) {
      const at = { couponId: coupon.id };
      const lastEnd = this.endsOf(coupon.id).filter((op) => isResult(op.answer));
      if (lastEnd.length && (coupon.endsAt === null || coupon.endsAt > Math.max(...lastEnd.map((op) => op.end)) + this.options.allowanceMs)) {
        this.report({ rule: 'end-undone', guarantee: 8, ...at, operation: lastEnd[0]!.id, message: `endCoupon was answered, but MongoDB's endsAt is ${coupon.endsAt === null ? 'null' : new Date(coupon.endsAt).toISOString()}` });
      }
      const end = this.history.final.convergence.reduce((latest, c) => Math.max(latest, c.at), 0) || Infinity;
      const candidates = this.totalCandidates(coupon.id, end, end);
      if (!candidates.includes(coupon.totalQuantity)) {
        this.report({ rule: 'update-lost', guarantee: 8, ...at, message: `MongoDB's totalQuantity ${coupon.totalQuantity} is none of the values the last changes set (${[...new Set(candidates)].join('/')})` });
      }
    }
  }

  // --- guarantee 4: once the faults end, remaining = totalQuantity - live ------------------------

  private checkConvergence() {
    for (const seen of this.history.final.convergence) {
      const expected = seen.totalInMongo - seen.liveInMongo;
      if (seen.remaining !== expected || seen.totalQuantity !== seen.totalInMongo) {
        this.report({
          rule: 'not-converged',
          guarantee: 4,
          couponId: seen.couponId,
          message: `instance ${seen.instance} shows remaining ${seen.remaining ?? 'nothing'} of ${seen.totalQuantity ?? '?'} after the faults ended; MongoDB: ${seen.totalInMongo} - ${seen.liveInMongo} live = ${expected}`,
        });
      }
    }
  }

  // --- subscriptions: never an older value after a newer one; ENDED completes --------------------

  private checkWatcher(watcher: WatcherRecord) {
    const at = { watcher: watcher.id, couponId: watcher.couponId };
    const killed = this.instanceKilledNear(watcher.instance, watcher.start, watcher.end);
    let previous: WatcherRecord['events'][number] | undefined;
    for (const [index, event] of watcher.events.entries()) {
      if (previous?.status === 'ENDED') {
        this.report({ rule: 'event-after-ended', guarantee: 8, ...at, message: `event ${index} (${event.status}, remaining ${event.remaining}) after ENDED` });
        break;
      }
      if (previous && event.serverTime < previous.serverTime) {
        this.report({ rule: 'event-out-of-order', guarantee: 8, ...at, message: `event ${index} was sent at ${iso(event.serverTime)}, before the one received before it (${iso(previous.serverTime)})` });
      }
      if (previous && event.remaining > previous.remaining && !this.stockMayRise(watcher.couponId, previous.serverTime - this.options.allowanceMs, event.serverTime)) {
        this.report({
          rule: 'older-after-newer',
          guarantee: 8,
          ...at,
          message: `remaining went back from ${previous.remaining} to ${event.remaining} with no cancel, raise, failed claim or fault that could return a unit`,
        });
      }
      if (event.status !== 'ENDED') this.checkRemaining(watcher.couponId, event.remaining, event.serverTime - this.options.allowanceMs, event.serverTime, at, `stock event ${index}`);
      previous = event;
    }
    if (watcher.error && !killed && !this.faultNear(watcher.start, watcher.end)) {
      this.report({ rule: 'subscription-failed', guarantee: 5, ...at, message: `the subscription failed with no fault near: ${watcher.error}` });
    }
    // An end answered while the watcher was open for the second after: ENDED pushed and the
    // subscription completed (a fault around the end, which may delay the push, excuses it).
    const ended = this.endsOf(watcher.couponId).filter(
      (op) => isResult(op.answer) && op.end + this.options.allowanceMs < watcher.end && !this.faultNear(op.start, op.end + this.options.allowanceMs),
    );
    if (ended.length && !killed && !watcher.error) {
      if (!watcher.events.some((event) => event.status === 'ENDED') || !watcher.completed) {
        this.report({ rule: 'ended-not-completed', guarantee: 8, ...at, operation: ended[0]!.id, message: `the coupon was ended, but the subscription ${watcher.completed ? 'completed without an ENDED event' : 'was not completed'} (last: ${JSON.stringify(watcher.events.at(-1))})` });
      }
    }
    // Once the faults ended, a watcher still open shows what every instance converged to.
    const final = this.history.final.convergence.find((c) => c.couponId === watcher.couponId);
    const last = watcher.events.at(-1);
    if (final && last && !killed && !watcher.error && !watcher.completed && last.status !== 'ENDED') {
      const expected = final.totalInMongo - final.liveInMongo;
      if (last.remaining !== expected) {
        this.report({ rule: 'subscription-stuck', guarantee: 4, ...at, message: `the last event shows remaining ${last.remaining}; MongoDB and the instances settled on ${expected}` });
      }
    }
  }

  /** Something in [from, to] may have returned a unit: a cancel, a raise, a claim that got no result, a fault. */
  private stockMayRise(couponId: string, from: number, to: number): boolean {
    const near = (op: Operation, tail = 0) => op.couponId === couponId && op.start <= to && op.end + tail >= from;
    return (
      this.history.operations.some(
        (op) => (op.kind === 'cancel' && near(op)) || (op.kind === 'update' && near(op, this.options.allowanceMs)) || (op.kind === 'claim' && unavailable(op.answer) && near(op, this.options.pendingMs)),
      ) ||
      (this.byCoupon.get(couponId) ?? []).some((doc) => doc.cancelledAt !== undefined && doc.cancelledAt <= to + this.options.allowanceMs && doc.cancelledAt >= from - this.options.allowanceMs) ||
      this.faultNear(from, to) !== undefined
    );
  }
}

function groupBy<T, K>(items: T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

const iso = (ms: number) => new Date(ms).toISOString();

function describe(answer: Answer): string {
  return answer.failure ? `no answer: ${answer.failure}` : (answer.code ?? answer.status ?? 'nothing');
}
