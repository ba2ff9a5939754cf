/**
 * Sold-out coupons answered from memory, so the bulk of a drop (everyone after the stock is gone)
 * costs no Redis command, scales with instances rather than with one Redis shard, and is answered
 * even while Redis is down. Every answer must stay true (contract guarantee 8): ALREADY_ISSUED only
 * with the user's live issuance, SOLD_OUT only while no unit is free and the user holds none.
 *
 * Learning, at the first SOLD_OUT from Redis: one read (sold-out-4.lua) gives the stock position
 * (epoch, version) and every winner, each marked durable or not. From then on this instance
 * answers SOLD_OUT to everyone who is not a winner (none can win: no unit is free at that
 * position), ALREADY_ISSUED to a winner MongoDB holds, and sends only winners whose write is not
 * confirmed yet to Redis (their claim makes the write durable first; they never hear SOLD_OUT).
 *
 * Learning by itself: a winner becomes durable here when this instance's group commit or
 * reconciler writes it (`durable`), and otherwise on the next check, which reads the winners again
 * (and asks MongoDB for the pending ones when Redis cannot answer). No later claim is needed.
 *
 * Staying true: every CHECK_INTERVAL_MS each remembered coupon's stock position is read from
 * Redis, and any other position (a unit back, a quantity changed, a rebuild, anything that moves a
 * winner) forgets the coupon and learns it again if it is still sold out. A change Redis never saw
 * (a cancel whose Redis step failed) is caught by MongoDB: every MONGO_CHECK_MS its live issuances
 * are counted, and any count but `totalQuantity` forgets the coupon. A failed read changes nothing
 * (while Redis is down, sold out is still sold out), but an entry that neither store confirmed for
 * MAX_UNVERIFIED_MS is not answered from. `forget` (a change this instance made or was told of)
 * bumps the coupon's generation, and a learn that started before it is thrown away, so a read
 * already under way cannot bring back the winners the change replaced.
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { LIVE, type Models } from '../mongo/models';
import type { ClaimOutcome, CouponDefinition, IssuanceRecord } from '../coupons/coupon-model';
import type { SoldOutState } from '../redis/scripts';
import { toIssuanceRecord } from './issuance-writer';
import { PeriodicTask } from '../support/periodic-task';

/** How often a remembered coupon's stock position is read from Redis: bounds how long a change goes unseen. */
export const CHECK_INTERVAL_MS = 500;
/** How often MongoDB's count of a remembered coupon's live issuances is compared with its stock. */
export const MONGO_CHECK_MS = 1000;
/** An entry no store has confirmed for this long is not answered from (both stores unreadable). */
export const MAX_UNVERIFIED_MS = 5000;
/** A MongoDB count slower than this counts as unanswered (a stalled MongoDB must not hold up learning). */
const MONGO_READ_MS = 500;
/** A coupon nobody has claimed for this long is forgotten; the next sold-out reply learns it again. */
const IDLE_MS = 60_000;
/** Winners held in memory across all coupons; beyond it, sold-out claims go to Redis as before. */
const MAX_WINNERS = 1_000_000;
/** A learn that found the coupon not sold out (or failed) is not tried again sooner than this. */
const RELEARN_AFTER_MS = 250;
/** A learn that failed (Redis did not answer) is retried by itself this many times. */
const LEARN_RETRIES = 8;

interface Position {
  epoch: number;
  version: number;
}

interface Entry {
  coupon: CouponDefinition;
  /** The stock position the winners were read at. */
  position: Position;
  /** Winners MongoDB holds: answered ALREADY_ISSUED with this issuance. */
  winners: Map<string, IssuanceRecord>;
  /** Winners whose write is not known to be durable: userId → the issuance id reserved; sent to Redis. */
  pending: Map<string, string>;
  /** When a store last confirmed the entry (the same position in Redis, or every unit in MongoDB). */
  verifiedAt: number;
  mongoCheckedAt: number;
  usedAt: number;
}

/** Where a remembered coupon's state is read: the Redis gate. */
export interface SoldOutSource {
  stock(coupon: CouponDefinition): Promise<{ remaining: number; epoch: number; version: number }>;
  soldOutState(couponId: string): Promise<SoldOutState>;
}

export class SoldOutMemory {
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every forget: a learn that started under an older generation is discarded. */
  private readonly generations = new Map<string, number>();
  private readonly learning = new Map<string, Promise<boolean>>();
  private readonly tried = new Map<string, number>();
  private winnerCount = 0;
  private readonly task: PeriodicTask;

  constructor(
    private readonly models: Models,
    private readonly source: SoldOutSource,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.task = new PeriodicTask(() => this.check(), logger, 'sold-out memory check failed; will retry');
  }

  /** The answer the claim script would give, when the coupon is known sold out; else undefined (ask Redis). */
  answer(couponId: string, userId: string): ClaimOutcome | undefined {
    const entry = this.entries.get(couponId);
    if (!entry) return undefined;
    const now = this.clock();
    if (now - entry.verifiedAt > MAX_UNVERIFIED_MS) return undefined;
    // A winner whose write is not durable yet: Redis and the group commit answer it (never SOLD_OUT).
    if (entry.pending.has(userId)) return undefined;
    entry.usedAt = now;
    const issuance = entry.winners.get(userId);
    if (issuance) return { status: 'ALREADY_ISSUED', issuance, remaining: 0 };
    const { startsAt, endsAt } = entry.coupon;
    if (now < startsAt.getTime()) return undefined;
    if (endsAt && now >= endsAt.getTime()) return { status: 'ENDED', issuance: null, remaining: 0 };
    return { status: 'SOLD_OUT', issuance: null, remaining: 0 };
  }

  /** Redis answered SOLD_OUT from a consistent state: learn the coupon. Never throws. */
  soldOut(coupon: CouponDefinition): void {
    if (this.entries.has(coupon.id) || this.learning.has(coupon.id)) return;
    if ((this.tried.get(coupon.id) ?? -Infinity) + RELEARN_AFTER_MS > this.clock()) return;
    this.learnWithRetries(coupon, LEARN_RETRIES);
  }

  /**
   * MongoDB now holds this winner's issuance (the group commit or the reconciler wrote it): a
   * remembered coupon answers the winner ALREADY_ISSUED from here on, with no Redis command.
   */
  durable(couponId: string, userId: string, issuance: IssuanceRecord): void {
    const entry = this.entries.get(couponId);
    if (!entry || entry.pending.get(userId) !== issuance.id) return;
    entry.pending.delete(userId);
    entry.winners.set(userId, { ...issuance, lifecycleUnknown: true });
  }

  /**
   * Redis handed out a unit at stock version `version`. Newer than the remembered position, the
   * coupon is not sold out as remembered: forget it (and learn it again, if it sells out again).
   * An older one is a reply from before the sell-out, read late. (A win after a rebuild, with a new
   * epoch, is caught by the next check.)
   */
  won(coupon: CouponDefinition, version: number): void {
    const entry = this.entries.get(coupon.id);
    if (!entry || version <= entry.position.version) return;
    this.forget(coupon.id);
    this.learnWithRetries(coupon, LEARN_RETRIES);
  }

  /** Stock or winners may have changed: answer from Redis again until learned anew. */
  forget(couponId: string): void {
    this.generations.set(couponId, this.generation(couponId) + 1);
    this.tried.delete(couponId);
    this.drop(couponId);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Users answered from Redis for now (winners whose write is not known durable); for tests. */
  pendingOf(couponId: string): string[] {
    return [...(this.entries.get(couponId)?.pending.keys() ?? [])];
  }

  start(): void {
    this.task.start(CHECK_INTERVAL_MS);
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /**
   * Reads the coupon's winners at its current stock position and remembers them if no unit is
   * free; true when remembered. Awaited by tests; claims call soldOut. Throws when Redis fails.
   */
  learn(coupon: CouponDefinition): Promise<boolean> {
    let learning = this.learning.get(coupon.id);
    if (!learning) {
      learning = this.learnOnce(coupon).finally(() => this.learning.delete(coupon.id));
      this.learning.set(coupon.id, learning);
    }
    return learning;
  }

  /** Forgets coupons whose stock moved, confirms the others, and resolves pending winners. */
  async check(): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.checkOne(entry)));
  }

  private generation(couponId: string): number {
    return this.generations.get(couponId) ?? 0;
  }

  private drop(couponId: string): void {
    const entry = this.entries.get(couponId);
    if (!entry) return;
    this.entries.delete(couponId);
    this.winnerCount -= entry.winners.size + entry.pending.size;
  }

  private learnWithRetries(coupon: CouponDefinition, retries: number): void {
    this.tried.set(coupon.id, this.clock());
    const generation = this.generation(coupon.id);
    this.learn(coupon).catch((error: Error) => {
      this.logger.warn({ couponId: coupon.id, err: error.message, retries }, 'could not read the winners of a sold-out coupon');
      // Retried by itself (bounded): a sell-out must not wait for the next claim to be learned.
      if (retries > 0) {
        setTimeout(() => {
          if (this.generation(coupon.id) === generation && !this.entries.has(coupon.id)) this.learnWithRetries(coupon, retries - 1);
        }, RELEARN_AFTER_MS).unref();
      }
    });
  }

  private async learnOnce(coupon: CouponDefinition): Promise<boolean> {
    const generation = this.generation(coupon.id);
    const state = await this.source.soldOutState(coupon.id);
    if (!state.loaded || !state.soldOut) return false;
    if (this.winnerCount + state.winners.size > MAX_WINNERS) return false;
    const winners = new Map<string, IssuanceRecord>();
    const pending = new Map<string, string>();
    for (const [userId, winner] of state.winners) {
      if (winner.durable && !state.pending.has(userId)) {
        winners.set(userId, {
          id: winner.issuanceId,
          couponId: coupon.id,
          userId,
          sequence: winner.sequence,
          issuedAt: new Date(winner.issuedAtMs),
          status: 'ACTIVE',
          lifecycleUnknown: true,
        });
      } else {
        pending.set(userId, winner.issuanceId);
      }
    }
    // MongoDB must hold every winner Redis marks durable: fewer means one was cancelled (or lost)
    // since, and Redis is behind. More than Redis knows of (durable or pending) means Redis lost a
    // winner (a promoted replica without the master's last writes): that user must not hear
    // SOLD_OUT. Either way claims go to Redis (which checks MongoDB) until the reconciler repairs it.
    // Unreachable, MongoDB is not asked: the entry then rests on Redis's position alone.
    const live = await this.liveCount(coupon.id);
    if (live !== undefined && (live < winners.size || live > winners.size + pending.size)) return false;
    // Whatever this instance was told while reading belongs to a newer state than the one read.
    if (this.generation(coupon.id) !== generation) return false;
    const now = this.clock();
    const entry: Entry = { coupon, position: { epoch: state.epoch, version: state.version }, winners, pending, verifiedAt: now, mongoCheckedAt: now, usedAt: this.entries.get(coupon.id)?.usedAt ?? now };
    this.drop(coupon.id);
    this.entries.set(coupon.id, entry);
    this.winnerCount += winners.size + pending.size;
    if (pending.size > 0) await this.resolvePending(entry).catch(() => undefined);
    return true;
  }

  /** MongoDB's count of the coupon's live issuances; undefined when it does not answer within MONGO_READ_MS. */
  private liveCount(couponId: string): Promise<number | undefined> {
    return withinMs(Promise.resolve(this.models.Issuance.countDocuments({ couponId: new Types.ObjectId(couponId), ...LIVE })), MONGO_READ_MS);
  }

  /** Asks MongoDB whether the pending winners' issuances are stored (live, with the reserved id). */
  private async resolvePending(entry: Entry): Promise<void> {
    const ids = [...entry.pending.values()].map((id) => new Types.ObjectId(id));
    const docs = await withinMs(
      this.models.Issuance.find({ _id: { $in: ids }, ...LIVE }, { couponId: 1, userId: 1, sequence: 1, issuedAt: 1, status: 1, redeemedAt: 1, orderId: 1 }).lean(),
      MONGO_READ_MS,
    );
    if (!docs || this.entries.get(entry.coupon.id) !== entry) return;
    for (const doc of docs) this.durable(entry.coupon.id, doc.userId, toIssuanceRecord(doc));
  }

  private async checkOne(entry: Entry): Promise<void> {
    const { coupon } = entry;
    const now = this.clock();
    if (now - entry.usedAt > IDLE_MS) return this.forget(coupon.id);
    const stock = await this.source.stock(coupon).catch(() => undefined);
    if (this.entries.get(coupon.id) !== entry) return;
    if (stock) {
      if (stock.remaining > 0) return this.forget(coupon.id);
      if (stock.epoch !== entry.position.epoch || stock.version !== entry.position.version) {
        // The winners may be others now: forget them, and learn the coupon again if still sold out.
        this.forget(coupon.id);
        this.learnWithRetries(coupon, LEARN_RETRIES);
        return;
      }
      entry.verifiedAt = this.clock();
      // Same position, some writes not confirmed when read: read the winners again (confirmations
      // do not move the position), so they are learned without waiting for another claim.
      if (entry.pending.size > 0) {
        await this.learn(coupon).catch(() => undefined);
        return;
      }
    } else if (entry.pending.size > 0) {
      // Redis cannot say; MongoDB can tell which pending winners are stored.
      await this.resolvePending(entry).catch(() => undefined);
    }
    if (this.clock() - entry.mongoCheckedAt >= MONGO_CHECK_MS) await this.countInMongo(entry);
  }

  /**
   * Every durable winner is a live issuance in MongoDB (and once none is pending, every unit is),
   * unless one was cancelled since and Redis may not have heard of it: a lower count, one above the
   * winners Redis knows of (Redis lost one), or one above the stock, forgets the coupon.
   */
  private async countInMongo(entry: Entry): Promise<void> {
    const { coupon } = entry;
    const generation = this.generation(coupon.id);
    // Counted before the read: a winner made durable while it runs may not be in the count.
    const durable = entry.winners.size;
    const known = durable + entry.pending.size;
    const count = await this.liveCount(coupon.id);
    if (count === undefined || this.entries.get(coupon.id) !== entry || this.generation(coupon.id) !== generation) return;
    entry.mongoCheckedAt = this.clock();
    if (count < durable || count > known || count > coupon.totalQuantity) {
      this.logger.info({ couponId: coupon.id, live: count, durable, total: coupon.totalQuantity }, 'mongodb does not hold every winner of a sold-out coupon; answering from redis again');
      return this.forget(coupon.id);
    }
    entry.verifiedAt = entry.mongoCheckedAt;
  }
}

/**
 * The value, or undefined when it fails or takes longer than `ms`: a stalled MongoDB (no socket
 * timeout) must hold up neither learning nor the checks of the other coupons.
 */
function withinMs<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work.catch(() => undefined),
    new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms).unref())),
  ]).finally(() => clearTimeout(timer));
}
