/**
 * The checker's rules for the v3 operations: the opening draw (contract "Fair opening") and events
 * to webhooks (guarantee 7). Pure, like tests/nemesis/checker.ts, which calls them; unit-tested with
 * hand-made histories in tests/unit/nemesis-checker-v3.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Finding, History, Operation, StoredDraw, StoredIssuance, WebhookRequest } from './history';

const DRAW_GUARANTEE = 8;

/** The opening draw: commitment, ranking, exactly once, who won, and what later claims are told. */
export function checkDraws(history: History, allowanceMs: number): Finding[] {
  const findings: Finding[] = [];
  for (const draw of history.final.draws ?? []) findings.push(...checkDraw(history, draw, allowanceMs));
  return findings;
}

function checkDraw(history: History, draw: StoredDraw, allowanceMs: number): Finding[] {
  const findings: Finding[] = [];
  const couponId = draw.couponId;
  const report = (rule: string, message: string, operation?: number) => findings.push({ rule, guarantee: DRAW_GUARANTEE, couponId, message, ...(operation !== undefined ? { operation } : {}) });
  const closes = draw.startsAt + draw.openingDrawMs;
  const claims = history.operations.filter((op) => op.kind === 'drawClaim' && op.couponId === couponId);
  const issuances = history.final.issuances.filter((doc) => doc.couponId === couponId);
  const answeredInWindow = claims.some((op) => op.start >= draw.startsAt && op.start < closes && op.answer.status);

  if (!draw.drawDone || !draw.drawSeed) {
    if (answeredInWindow || draw.entrants.length) report('draw-not-done', `claims were answered in the window (closed ${iso(closes)}), but MongoDB shows drawDone ${draw.drawDone}, seed ${draw.drawSeed ?? 'null'}`);
    return findings;
  }
  if (!draw.drawCommitment || sha256Hex(draw.drawSeed) !== draw.drawCommitment) {
    report('draw-commitment-mismatch', `SHA-256 of the revealed seed is ${sha256Hex(draw.drawSeed)}, the commitment was ${draw.drawCommitment ?? 'null'}`);
  }

  // One set of entrants: one row per user and per rank, ranks 1..n in ascending recomputed key order.
  const users = new Set(draw.entrants.map((e) => e.userId));
  const ranks = new Set(draw.entrants.map((e) => e.rank));
  if (users.size !== draw.entrants.length || ranks.size !== draw.entrants.length) report('draw-done-twice', `${draw.entrants.length} entrant rows for ${users.size} users and ${ranks.size} ranks`);
  const ranked = [...draw.entrants]
    .map((e) => ({ ...e, key: rankKey(draw.drawSeed!, e.userId) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  ranked.forEach((e, index) => {
    if (e.key !== e.rankKey) report('draw-rank-key-wrong', `${e.userId}'s recorded rank key ${e.rankKey} is not HMAC-SHA256(seed, userId) = ${e.key}`);
    if (e.rank !== index + 1) report('draw-ranking-wrong', `${e.userId} is recorded at rank ${e.rank}, its key ranks ${index + 1}`);
  });
  const winners = ranked.filter((e) => e.won);
  const k = winners.length;
  if (ranked.slice(0, k).some((e) => !e.won)) report('draw-not-lowest', `the ${k} winners are not the ${k} lowest rank keys: ${ranked.map((e) => `${e.userId}${e.won ? '*' : ''}`).join(', ')}`);
  // Sequences follow the ranking, and each winner holds exactly that issuance in MongoDB.
  for (let i = 1; i < winners.length; i++) {
    if (!(winners[i]!.sequence! > winners[i - 1]!.sequence!)) report('draw-sequence-order', `winner ${winners[i]!.userId} (rank ${i + 1}) has sequence ${winners[i]!.sequence}, after ${winners[i - 1]!.sequence}`);
  }
  const winnerDoc = new Map<string, StoredIssuance>();
  for (const winner of winners) {
    const doc = issuances.find((d) => d.userId === winner.userId && d.sequence === winner.sequence);
    if (!doc) report('draw-winner-missing', `winner ${winner.userId} (sequence ${winner.sequence}) has no such issuance in MongoDB`);
    else winnerDoc.set(winner.userId, doc);
  }
  // Nobody outside the winners was issued a unit before the window closed (the draw's units).
  for (const doc of issuances) {
    if (doc.issuedAt < closes && !winnerDoc.has(doc.userId)) report('draw-outsider-won', `${doc.userId} was issued sequence ${doc.sequence} at ${iso(doc.issuedAt)}, before the window closed, without winning the draw`);
  }
  // Units available at the draw: k is all of them unless every entrant won.
  if (ranked.length > k && issuances.filter((d) => d.issuedAt < closes + allowanceMs && !winnerDoc.has(d.userId)).length) {
    report('draw-outsider-won', 'an issuance not of a winner was written by the draw');
  }

  const lastWin = Math.max(closes, ...[...winnerDoc.values()].map((d) => d.issuedAt));
  for (const op of claims) {
    const winner = winnerDoc.get(op.user);
    const entrant = users.has(op.user);
    const status = op.answer.status;
    if (!status) continue;
    const shown = op.answer.issuance?.id;
    if (status === 'NOT_STARTED' && op.start > draw.startsAt + allowanceMs) report('draw-not-started-late', `NOT_STARTED ${op.start - draw.startsAt} ms after startsAt`, op.id);
    if (status === 'ISSUED' || status === 'ALREADY_ISSUED') {
      if (op.end < closes) report('draw-issued-in-window', `${status} answered at ${iso(op.end)}, before the window closed at ${iso(closes)}`, op.id);
      if (entrant && !winner) report('draw-loser-issued', `${op.user} entered and lost the draw, but was answered ${status}`, op.id);
      if (winner && shown !== winner.id) report('draw-winner-other-issuance', `winner ${op.user} was shown ${shown ?? 'no issuance'}, the draw's issuance is ${winner.id}`, op.id);
      if (winner && status === 'ISSUED' && op.start > lastWin + allowanceMs) report('draw-winner-issued-again', `a claim of winner ${op.user} after the draw was answered ISSUED, not ALREADY_ISSUED`, op.id);
      if (!entrant && op.start >= draw.startsAt && op.end < closes + allowanceMs && status === 'ISSUED' && issuances.find((d) => d.id === shown)?.issuedAt! < closes) {
        report('draw-outsider-won', `${op.user} is not an entrant, but its claim in the window was answered ISSUED`, op.id);
      }
    }
    if (status === 'SOLD_OUT' && winner) report('draw-winner-refused', `winner ${op.user} was answered SOLD_OUT`, op.id);
  }
  // Every entrant claimed around the window (no entry the harness did not make).
  for (const user of users) {
    if (!claims.some((op) => op.user === user && op.start < closes && op.end >= draw.startsAt)) report('draw-phantom-entrant', `${user} is a recorded entrant, but made no claim that could have arrived in the window`);
  }
  return findings;
}

// --- webhooks: guarantee 7 --------------------------------------------------------------------

const issuanceEventId = (issuanceId: string, kind: 'issued' | 'redeemed' | 'cancelled') => `evt_${issuanceId}_${kind}`;
const acked = (r: WebhookRequest) => typeof r.answer === 'number' && r.answer >= 200 && r.answer < 300;

/** Guarantee 7 over the recorded deliveries: nothing acknowledged is lost, nothing phantom, order per issuance, signatures. */
export function checkWebhook(history: History): Finding[] {
  const record = history.webhook;
  if (!record) return [];
  const findings: Finding[] = [];
  const report = (rule: string, message: string, extra: Partial<Finding> = {}) => findings.push({ rule, guarantee: 7, message, ...extra });
  if (record.pendingAtEnd !== 0 || record.failedAtEnd > 0) report('webhook-not-drained', `pendingDeliveries ${record.pendingAtEnd}, failedDeliveries ${record.failedAtEnd} when the harness stopped waiting`);

  const firstAck = new Map<string, WebhookRequest>();
  const firstSent = new Map<string, WebhookRequest>();
  for (const r of [...record.requests].sort((a, b) => a.receivedAt - b.receivedAt)) {
    if (!firstSent.has(r.id)) firstSent.set(r.id, r);
    if (acked(r) && !firstAck.has(r.id)) firstAck.set(r.id, r);
    if (!r.signatureValid) report('webhook-bad-signature', `${r.id} attempt ${r.attempt}: the signature does not verify`);
  }
  const ackedOfType = (type: string) => [...firstAck.values()].filter((r) => r.type === type);

  // Every acknowledged change has its event (changes acknowledged after the webhook was registered).
  const after = (op: Operation) => op.start >= record.registeredAt;
  for (const op of history.operations.filter(after)) {
    const at = { operation: op.id, couponId: op.couponId };
    const issuanceId = op.answer.issuance?.id;
    if ((op.kind === 'claim' || op.kind === 'drawClaim') && op.answer.status === 'ISSUED' && issuanceId && !firstAck.has(issuanceEventId(issuanceId, 'issued'))) {
      report('webhook-event-missing', `ISSUED ${issuanceId} has no acknowledged ISSUANCE_ISSUED`, at);
    }
    if (op.kind === 'redeem' && op.answer.status === 'REDEEMED' && !firstAck.has(issuanceEventId(op.request.issuanceId!, 'redeemed'))) {
      report('webhook-event-missing', `redeem of ${op.request.issuanceId} was acknowledged, no ISSUANCE_REDEEMED`, at);
    }
    if (op.kind === 'cancel' && op.answer.status === 'CANCELLED' && !firstAck.has(issuanceEventId(op.request.issuanceId!, 'cancelled'))) {
      report('webhook-event-missing', `cancel of ${op.request.issuanceId} was acknowledged, no ISSUANCE_CANCELLED`, at);
    }
    if (op.kind === 'end' && op.answer.status && !op.answer.code && !ackedOfType('COUPON_ENDED').some((r) => r.data?.coupon?.id === op.couponId)) {
      report('webhook-event-missing', `endCoupon was acknowledged, no COUPON_ENDED`, at);
    }
  }
  // Every sell-out MongoDB implies (all units live at the end, or an ISSUED answer with remaining 0) has a COUPON_SOLD_OUT.
  const soldOut = new Set(ackedOfType('COUPON_SOLD_OUT').map((r) => r.data?.coupon?.id));
  const implied = new Map<string, string>();
  for (const coupon of history.final.coupons) {
    const live = history.final.issuances.filter((d) => d.couponId === coupon.id && d.status !== 'CANCELLED');
    const lastWin = Math.max(...live.map((d) => d.issuedAt));
    // Sold out by the last win, or by a total lowered (updateCoupon) onto the live count after it;
    // required when what caused it came after the webhook was registered.
    const updatesAfter = history.operations.filter((op) => op.kind === 'update' && op.couponId === coupon.id && op.end >= lastWin);
    const causedFrom = updatesAfter.length > 0 ? Math.min(...updatesAfter.map((op) => op.start)) : lastWin;
    if (coupon.totalQuantity > 0 && live.length === coupon.totalQuantity && causedFrom >= record.registeredAt) {
      const cause = updatesAfter.length > 0 ? `, lowered onto it by an update after the last win` : '';
      implied.set(coupon.id, `MongoDB holds ${live.length} live issuances for totalQuantity ${coupon.totalQuantity}, the last issued at ${iso(lastWin)}${cause}`);
    }
  }
  for (const op of history.operations.filter(after)) {
    if ((op.kind === 'claim' || op.kind === 'drawClaim') && op.answer.status === 'ISSUED' && op.answer.remaining === 0 && !implied.has(op.couponId)) implied.set(op.couponId, `op#${op.id} was answered ISSUED with remaining 0`);
  }
  for (const [couponId, why] of implied) if (!soldOut.has(couponId)) report('webhook-sold-out-missing', `${why}, but no COUPON_SOLD_OUT was acknowledged`, { couponId });

  // No phantom: every event is for something MongoDB holds.
  const docs = new Map(history.final.issuances.map((d) => [d.id, d]));
  const coupons = new Map(history.final.coupons.map((c) => [c.id, c]));
  for (const r of firstSent.values()) {
    const issuance = r.data?.issuance;
    const coupon = r.data?.coupon;
    if (r.type.startsWith('ISSUANCE_')) {
      const doc = issuance ? docs.get(issuance.id) : undefined;
      const wrong = !doc
        ? 'no such issuance in MongoDB'
        : doc.userId !== issuance.userId || doc.couponId !== issuance.couponId || doc.sequence !== issuance.sequence
          ? `MongoDB holds ${doc.userId}/${doc.sequence}, the event ${issuance.userId}/${issuance.sequence}`
          : r.type === 'ISSUANCE_REDEEMED' && (doc.status !== 'REDEEMED' || doc.orderId !== issuance.orderId)
            ? `MongoDB shows ${doc.status} (order ${doc.orderId ?? 'none'}), the event order ${issuance.orderId}`
            : r.type === 'ISSUANCE_CANCELLED' && doc.status !== 'CANCELLED'
              ? `MongoDB shows ${doc.status}`
              : undefined;
      if (wrong) report('webhook-phantom', `${r.type} ${r.id}: ${wrong}`, { couponId: issuance?.couponId });
    } else if (r.type === 'COUPON_ENDED' || r.type === 'COUPON_SOLD_OUT') {
      const stored = coupon ? coupons.get(coupon.id) : undefined;
      if (!stored) report('webhook-phantom', `${r.type} ${r.id}: no such coupon among the run's`, { couponId: coupon?.id });
      else if (r.type === 'COUPON_ENDED' && stored.endsAt === null) report('webhook-phantom', `COUPON_ENDED ${r.id}, but MongoDB's endsAt is null`, { couponId: stored.id });
    } else report('webhook-phantom', `unknown event type ${r.type} (${r.id})`);
  }

  // Per issuance: REDEEMED or CANCELLED is not sent before its ISSUED was acknowledged.
  for (const r of firstSent.values()) {
    const match = /^evt_([0-9a-f]{24})_(redeemed|cancelled)$/.exec(r.id);
    if (!match) continue;
    const issued = firstAck.get(issuanceEventId(match[1]!, 'issued'));
    if (!issued || issued.receivedAt > r.receivedAt) {
      report('webhook-out-of-order', `${r.id} was sent at ${iso(r.receivedAt)}, ${issued ? `before ISSUED was acknowledged at ${iso(issued.receivedAt)}` : 'and its ISSUED was never acknowledged'}`, { couponId: r.data?.issuance?.couponId });
    }
  }
  return findings;
}

export const rankKey = (seedHex: string, userId: string) => createHmac('sha256', Buffer.from(seedHex, 'hex')).update(userId, 'utf8').digest('hex');
export const sha256Hex = (seedHex: string) => createHash('sha256').update(Buffer.from(seedHex, 'hex')).digest('hex');
const iso = (ms: number) => new Date(ms).toISOString();
