/**
 * Runs a coupon's opening draw, exactly once in effect however many instances try and whichever
 * of them dies or stalls half-way:
 *
 * 1. draw-close-4.lua closes the entries and gives this runner a lease with a fencing token; the
 *    first close fixes the units shared out and the sequences they take. Others answer BUSY.
 * 2. MongoDB is the arbiter: the coupon's `drawFence` is raised to this token only while
 *    `drawDone` is false and no newer runner claimed it.
 * 3. The first k entrants in ranking order (k = units) are written through the group commit, as
 *    deterministic issuances (ranking.ts): a re-run writes the very same documents.
 * 4. draw-apply-4.lua, fenced, puts them in the gate as durable winners and marks the draw applied:
 *    from then on held claims are answered and the coupon is first come, first served.
 * 5. The entrants are stored in ranking order (draw_entrants) for the audit, the lease renewed
 *    as it goes; then `drawDone: false -> true` reveals the seed and the count. That conditional
 *    update succeeds once.
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { DependencyError } from '../errors';
import type { Models } from '../mongo/models';
import type { RedisClient } from '../redis/client';
import { couponKeys, encodeWinner } from '../redis/scripts';
import { applyArgs, closeArgs, drawKeys, parseApplyReply, parseCloseReply, renewArgs, type AppliedWinner, type CloseReply } from '../redis/draw-scripts';
import type { CouponGate } from '../claims/coupon-gate';
import { isDuplicateKey, type IssuanceWriter } from '../claims/issuance-writer';
import type { CouponDefinition, IssuanceRecord } from '../coupons/coupon-model';
import type { DrawEntrantModel } from './draw-entrants';
import { drawIssuanceId, parseMember, sequencesFor } from './ranking';

/** A runner's lease: longer than a normal draw takes, short enough that a dead runner is replaced quickly. */
export const LEASE_MS = 3000;
const APPLY_CHUNK = 1000;
const ENTRANTS_PAGE = 5000;

export type RunResult = 'done' | 'applied' | 'busy' | 'early' | 'superseded';

export interface DrawRunnerDeps {
  redis: RedisClient;
  gate: Pick<CouponGate, 'ensureLoaded'>;
  writer: Pick<IssuanceWriter, 'write'>;
  models: Models;
  entrants: DrawEntrantModel;
  /** The seed's bytes (read with +drawSecret and checked against the commitment). */
  seedOf: (coupon: CouponDefinition) => Promise<Buffer>;
  logger: Logger;
  /** The draw is finished: every instance should re-read the coupon (seed and entrants public). */
  onFinished: (couponId: string) => void;
}

export const windowEndOf = (coupon: CouponDefinition) => coupon.startsAt.getTime() + (coupon.openingDrawMs ?? 0);

export class DrawRunner {
  constructor(private readonly deps: DrawRunnerDeps) {}

  async run(coupon: CouponDefinition): Promise<RunResult> {
    const { redis, gate, logger } = this.deps;
    const gateKeys = couponKeys(coupon.id);
    const keys = drawKeys(coupon.id);
    const token = randomUUID();
    const windowEnd = windowEndOf(coupon);
    const close = async () => parseCloseReply(await redis.drawClose(...closeArgs(gateKeys, keys, token, windowEnd, LEASE_MS)));
    let lease = await close();
    if (lease.status === 'NOT_LOADED') {
      await gate.ensureLoaded(coupon);
      lease = await close();
    }
    switch (lease.status) {
      case 'DONE':
        return 'done';
      case 'BUSY':
        return 'busy';
      case 'EARLY':
        return 'early';
      case 'NOT_LOADED':
        throw new DependencyError('redis', `coupon ${coupon.id} state vanished right after loading`);
      case 'OK':
        break;
    }
    const started = performance.now();
    const winners = lease.applied ? 0 : await this.writeAndApply(coupon, lease, windowEnd);
    if (winners < 0) return 'superseded';
    const finished = await this.finish(coupon, lease, token);
    if (finished) {
      logger.info({ couponId: coupon.id, entrants: lease.entrants, units: lease.units, fence: lease.fence, ms: Math.round(performance.now() - started) }, 'opening draw done');
      this.deps.onFinished(coupon.id);
    }
    return finished ? 'done' : 'applied';
  }

  /** Steps 2 to 4; the number of winners, or -1 when a newer runner or a finished draw took over. */
  private async writeAndApply(coupon: CouponDefinition, lease: CloseReply, windowEnd: number): Promise<number> {
    const { redis, gate, writer, models, logger } = this.deps;
    const claimed = await models.Coupon.updateOne(
      { _id: new Types.ObjectId(coupon.id), drawDone: { $ne: true }, $or: [{ drawFence: { $lt: lease.fence } }, { drawFence: { $exists: false } }] },
      { $set: { drawFence: lease.fence } },
    );
    if (claimed.matchedCount === 0) return -1;

    const count = Math.min(lease.units, lease.entrants);
    const members = count > 0 ? await redis.zrange(drawKeys(coupon.id).entries, '0', String(count - 1)) : [];
    const sequences = sequencesFor(lease.baseSeq, lease.freeSeqs, members.length);
    const issuedAt = new Date(windowEnd);
    const records: IssuanceRecord[] = members.map((member, i) => {
      const { userId } = parseMember(member);
      const record: IssuanceRecord = { id: drawIssuanceId(coupon.id, userId, windowEnd), couponId: coupon.id, userId, sequence: sequences[i]!, issuedAt, status: 'ACTIVE' };
      // The draw gives out every free unit: its last winner sells the coupon out.
      if (count === lease.units && i === members.length - 1) record.lastUnit = true;
      return record;
    });
    // Durable before anyone hears ISSUED: the group commit acknowledges every winner first.
    const outcomes = await Promise.all(records.map((record) => writer.write(record)));
    const applied: AppliedWinner[] = [];
    outcomes.forEach((outcome, i) => {
      const record = records[i]!;
      if (outcome.kind === 'written') {
        applied.push({ userId: record.userId, entry: encodeWinner({ sequence: record.sequence, issuedAtMs: windowEnd, issuanceId: record.id, durable: true }), sequence: record.sequence });
      } else {
        // MongoDB disagrees (the user held another issuance, or the sequence is someone else's):
        // MongoDB decides, and the reconciler brings the gate to it.
        logger.warn({ couponId: coupon.id, userId: record.userId, sequence: record.sequence, outcome: outcome.kind }, 'opening draw winner not written as drawn; mongodb decides');
      }
    });
    const highest = sequences.length ? Math.max(lease.baseSeq, ...sequences) : lease.baseSeq;
    for (let from = 0; from === 0 || from < applied.length; from += APPLY_CHUNK) {
      const chunk = applied.slice(from, from + APPLY_CHUNK);
      const last = from + APPLY_CHUNK >= applied.length;
      const apply = async () => parseApplyReply(await redis.drawApply(...applyArgs(couponKeys(coupon.id), drawKeys(coupon.id), lease.fence, highest, last, chunk)));
      let outcome = await apply();
      if (outcome === 'not-loaded') {
        // A rebuild from MongoDB (which holds the winners now) is under way or needed.
        await gate.ensureLoaded(coupon);
        outcome = await apply();
      }
      if (outcome === 'fenced') return -1;
      if (outcome === 'not-loaded') throw new DependencyError('redis', `coupon ${coupon.id} state vanished while the draw was applied`);
    }
    return applied.length;
  }

  /** Step 5; false when another runner finished it, or holds a newer lease. */
  private async finish(coupon: CouponDefinition, lease: CloseReply, token: string): Promise<boolean> {
    const { redis, models, entrants } = this.deps;
    const keys = drawKeys(coupon.id);
    const couponId = new Types.ObjectId(coupon.id);
    const winners = Math.min(lease.units, lease.entrants);
    const sequences = sequencesFor(lease.baseSeq, lease.freeSeqs, winners);
    for (let from = 0; from < lease.entrants; from += ENTRANTS_PAGE) {
      const members = await redis.zrange(keys.entries, String(from), String(from + ENTRANTS_PAGE - 1));
      const docs = members.map((member, i) => {
        const rank = from + i + 1;
        const { rankKey, userId } = parseMember(member);
        return { couponId, rank, userId, rankKey, won: rank <= winners, sequence: rank <= winners ? sequences[rank - 1]! : null };
      });
      try {
        await entrants.insertMany(docs, { ordered: false });
      } catch (error) {
        // Ranks a replaced runner stored already: the same rows.
        if (!isDuplicateKey(error)) throw error;
      }
      if ((await redis.drawRenew(...renewArgs(keys, token, LEASE_MS))) !== 1) return false;
    }
    const seed = (await this.deps.seedOf(coupon)).toString('hex');
    const done = await models.Coupon.updateOne(
      { _id: couponId, drawDone: { $ne: true }, $or: [{ drawFence: { $lte: lease.fence } }, { drawFence: { $exists: false } }] },
      { $set: { drawDone: true, drawFence: lease.fence, drawSeed: seed, drawEntrants: lease.entrants } },
    );
    if (done.matchedCount === 0) return false;
    await redis.hset(keys.draw, 'done', 1);
    // The entries are in MongoDB now; Redis keeps them a day, then lets them go.
    await redis.pexpire(keys.entries, 86_400_000);
    await redis.pexpire(keys.draw, 86_400_000);
    return true;
  }
}
