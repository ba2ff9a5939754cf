/**
 * The concurrency gate: a coupon's live state in Redis (stock, winners, sequence, pending
 * writes), changed only by the Lua scripts. The state is derived from MongoDB and rebuilt from
 * it whenever it is missing, for example after Redis lost its data. A part of it lost (a
 * failover, an operator's DEL) is caught too: a meta without its fields is not loaded, a winner
 * entry is only taken for durable once MongoDB confirmed it, and a winners hash with fewer
 * entries than sequences taken sends a sold-out answer to MongoDB first (see claim-4.lua).
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import { DependencyError } from '../errors';
import { LIVE, type Models } from '../mongo/models';
import type { RedisClient } from '../redis/client';
import {
  adoptArgs,
  cancelArgs,
  claimArgs,
  confirmArgs,
  couponKeys,
  decodeWinner,
  defineArgs,
  encodeWinner,
  forgetArgs,
  inspectArgs,
  loadArgs,
  parseClaimReply,
  parseDefineReply,
  parseInspectReply,
  parseMetaDefinition,
  parseStockReply,
  retireArgs,
  revokeArgs,
  soldOutArgs,
  parseSoldOutReply,
  stockArgs,
  type DefineMode,
  type DefineOutcome,
  type GateInspection,
  type GateReply,
  type MetaDefinition,
  type SoldOutState,
  type StockReply,
  type WinnerEntry,
} from '../redis/scripts';
import { toDefinition } from '../coupons/coupon-catalog';
import type { CouponDefinition } from '../coupons/coupon-model';

/**
 * Held while one instance rebuilds a coupon. Short, so a loader killed mid-rebuild blocks the
 * coupon only briefly; a second loader after expiry is harmless (winners are rewritten with the
 * same values and load-4.lua publishes meta only once).
 */
const LOAD_LOCK_MS = 5_000;
const LOAD_CHUNK = 1000;
/** How long an ENDED answer from MongoDB stands before MongoDB is asked again (an updateCoupon may reopen it). */
const ENDED_RECHECK_MS = 1000;

export interface PendingWinner {
  userId: string;
  winner: WinnerEntry;
}

export class CouponGate {
  private readonly loading = new Map<string, Promise<boolean>>();
  /** Coupons this instance dropped on purpose (a repair): their rebuild is expected, not news. */
  private readonly dropped = new Set<string>();
  /** Repairs of a lost winners hash under way, one per coupon. */
  private readonly repairing = new Map<string, Promise<void>>();
  /** Coupons MongoDB showed ENDED, not rebuilt until then (a reopen shows within ENDED_RECHECK_MS). */
  private readonly endedSeen = new LRUCache<string, number>({ max: 10_000 });
  private readonly endedCounts = new LRUCache<string, Promise<number>>({ max: 10_000, ttl: ENDED_RECHECK_MS });

  constructor(
    private readonly redis: RedisClient,
    private readonly models: Models,
    private readonly logger: Logger,
    private readonly onRebuilt: (couponId: string) => void = () => {},
    /** A load from MongoDB set the coupon's stock: watchers must hear it (the stock feed publishes it). */
    private readonly onStockChanged: (couponId: string) => void = () => {},
  ) {}

  /** Runs the claim script, loading the coupon's state first when Redis does not have it. */
  async claim(coupon: CouponDefinition, userId: string, issuanceId: string): Promise<GateReply> {
    const keys = couponKeys(coupon.id);
    let reply = parseClaimReply(await this.redis.couponClaim(...claimArgs(keys, userId, issuanceId)));
    if (reply.status === 'NOT_LOADED') {
      // An ENDED coupon is not rebuilt: the answer comes from MongoDB (see endedReply).
      if (!(await this.ensureLoaded(coupon))) return this.endedReply(coupon, userId);
      reply = parseClaimReply(await this.redis.couponClaim(...claimArgs(keys, userId, issuanceId)));
    }
    if (reply.status === 'NOT_LOADED') throw new DependencyError('redis', `coupon ${coupon.id} state vanished right after loading`);
    return reply;
  }

  /**
   * The coupon's live stock; `loaded` false when Redis does not hold its state and `load` is
   * false (a reader of an ENDED coupon: its state is not rebuilt for a read).
   */
  async stock(coupon: CouponDefinition, options: { load?: boolean } = {}): Promise<StockReply> {
    const keys = couponKeys(coupon.id);
    let reply = parseStockReply(await this.redis.couponStock(...stockArgs(keys)));
    if (!reply.loaded && options.load !== false) {
      await this.ensureLoaded(coupon);
      reply = parseStockReply(await this.redis.couponStock(...stockArgs(keys)));
    }
    return reply;
  }

  /** The coupon's stock position and, when sold out, its winners, in one read (sold-out-4.lua). */
  async soldOutState(couponId: string): Promise<SoldOutState> {
    return parseSoldOutReply(await this.redis.couponSoldOut(...soldOutArgs(couponKeys(couponId))));
  }

  /** MongoDB now holds these issuances: they no longer need the sweeper, and their entries are durable. */
  async confirm(couponId: string, confirmed: Array<{ userId: string; issuanceId: string }>): Promise<void> {
    if (confirmed.length > 0) await this.redis.couponConfirm(...confirmArgs(couponKeys(couponId), confirmed));
  }

  /**
   * The user's issuance as MongoDB holds it, for a claim the script answered from a state that
   * lost winner entries (`suspect`); null when the user holds none. A found one is put back in
   * the winners hash, and the coupon's state is rebuilt from MongoDB as soon as no write is
   * pending, so the next claims need MongoDB no more. Throws when MongoDB cannot answer.
   */
  async durableWinner(coupon: CouponDefinition, userId: string): Promise<WinnerEntry | null> {
    void this.repairLostWinners(coupon);
    const doc = await this.models.Issuance.findOne({ couponId: new Types.ObjectId(coupon.id), userId, ...LIVE }).select({ sequence: 1, issuedAt: 1 }).lean();
    if (!doc) return null;
    const entry: WinnerEntry = { sequence: doc.sequence, issuedAtMs: doc.issuedAt.getTime(), issuanceId: doc._id.toHexString(), durable: true };
    // Put back without the durable mark: it may be cancelled before this lands (see revoke-3.lua).
    await this.redis.hsetnx(couponKeys(coupon.id).winners, userId, encodeWinner({ ...entry, durable: false }));
    return entry;
  }

  /** Rebuilds the coupon from MongoDB when its winners hash has fewer entries than sequences taken. */
  private repairLostWinners(coupon: CouponDefinition): Promise<void> {
    let repair = this.repairing.get(coupon.id);
    if (!repair) {
      repair = (async () => {
        const seen = await this.inspect(coupon.id);
        // With writes pending, the reconciler settles them first and then repairs the drift.
        if (!seen.loaded || seen.pending > 0 || seen.winners >= seen.taken) return;
        if (!(await this.forgetIfUnchanged(coupon.id, seen))) return;
        await this.ensureLoaded(coupon);
        this.logger.warn({ couponId: coupon.id, redisTaken: seen.taken, redisWinners: seen.winners }, 'redis had lost winner entries; rebuilt the coupon state from mongodb');
      })()
        .catch((error: Error) => this.logger.warn({ couponId: coupon.id, err: error.message }, 'repair of lost winner entries failed; the reconciler will retry'))
        .finally(() => this.repairing.delete(coupon.id));
      this.repairing.set(coupon.id, repair);
    }
    return repair;
  }

  /** Undo a reservation for a user who already held `stored` in MongoDB; the sequence goes back to stock. */
  async adopt(couponId: string, userId: string, reserved: WinnerEntry, stored: WinnerEntry): Promise<void> {
    await this.redis.couponAdopt(...adoptArgs(couponKeys(couponId), userId, reserved, stored));
  }

  /** Drop a reservation whose sequence another user holds in MongoDB, and record that holder. */
  async revoke(couponId: string, userId: string, reservedIssuanceId: string, holderId: string, holder: WinnerEntry): Promise<void> {
    await this.redis.couponRevoke(...revokeArgs(couponKeys(couponId), userId, reservedIssuanceId, holderId, holder));
  }

  /**
   * Puts a definition into the claim state at once (define-2.lua, modes explained there): the
   * definition carries MongoDB's revision, and an older one never replaces a newer one.
   */
  async define(coupon: CouponDefinition, holdMs: number, mode: DefineMode, token = ''): Promise<DefineOutcome> {
    const outcome = parseDefineReply(await this.redis.couponDefine(...defineArgs(couponKeys(coupon.id), coupon, holdMs, mode, token)));
    // A new quantity changes `remaining`, a new window the status: watchers must hear it (a
    // hold is followed at once by its commit or undo, which they hear).
    if (outcome === 'updated' && mode !== 'hold') this.onStockChanged(coupon.id);
    return outcome;
  }

  /** The definition fields the claim state holds; null when it is not loaded. */
  async metaDefinition(couponId: string): Promise<MetaDefinition | null> {
    return parseMetaDefinition(await this.redis.hmget(couponKeys(couponId).meta, 'total', 'startsAt', 'endsAt', 'seq'));
  }

  /**
   * A cancelled issuance leaves the claim state and its unit goes back to stock (cancel-4.lua);
   * false when Redis no longer held it (a rebuild from MongoDB already gave the unit back, or the
   * reconciler will: MongoDB's count decides).
   */
  async cancel(couponId: string, userId: string, issuanceId: string, sequence: number): Promise<boolean> {
    return (await this.redis.couponCancel(...cancelArgs(couponKeys(couponId), userId, issuanceId, sequence))) === 1;
  }

  /** Winners whose MongoDB write has not been confirmed for at least `olderThanMs`. */
  async pendingWinners(couponId: string, olderThanMs: number, limit = 500): Promise<PendingWinner[]> {
    const keys = couponKeys(couponId);
    const users = await this.redis.zrangebyscore(keys.pending, '-inf', Date.now() - olderThanMs, 'LIMIT', 0, limit);
    if (users.length === 0) return [];
    const entries = await this.redis.hmget(keys.winners, ...users);
    const found: PendingWinner[] = [];
    users.forEach((userId, i) => {
      const entry = entries[i];
      if (entry) found.push({ userId, winner: decodeWinner(entry) });
    });
    // A pending mark without a winner entry has nothing left to persist.
    const orphaned = users.filter((_, i) => !entries[i]);
    if (orphaned.length) await this.redis.zrem(keys.pending, ...orphaned);
    return found;
  }

  /** When the oldest reservation still awaiting its MongoDB write was made (epoch ms), if any. */
  async oldestPendingAt(couponId: string): Promise<number | undefined> {
    const [, score] = await this.redis.zrange(couponKeys(couponId).pending, '0', '0', 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  /**
   * Removes an ENDED coupon's state from Redis once it ended at least `retentionMs` ago (Redis's
   * clock) and no write is pending (retire-4.lua): 'retired', 'absent' (nothing to remove, or
   * reopened) or 'later' (not ended long enough, or writes pending).
   */
  async retire(couponId: string, retentionMs: number): Promise<'retired' | 'absent' | 'later'> {
    const reply = await this.redis.couponRetire(...retireArgs(couponKeys(couponId), retentionMs));
    if (reply === 1) return 'retired';
    if (reply === 0) return 'absent';
    if (reply === -1) return 'later';
    throw new Error(`retire reply ${JSON.stringify(reply)}`);
  }

  /** Forgets the coupon's Redis state so the next access rebuilds it from MongoDB. */
  async forget(couponId: string): Promise<void> {
    const keys = couponKeys(couponId);
    await this.redis.del(keys.meta, keys.winners, keys.pending, keys.free);
  }

  /** The coupon's bookkeeping in one consistent read, for comparison with MongoDB. */
  async inspect(couponId: string): Promise<GateInspection> {
    return parseInspectReply(await this.redis.couponInspect(...inspectArgs(couponKeys(couponId))));
  }

  /**
   * Drops the coupon's state for a rebuild from MongoDB, only if it is exactly as `seen` and no
   * write is pending; false when anything moved in between (the caller looks again later).
   */
  async forgetIfUnchanged(couponId: string, seen: Pick<GateInspection, 'epoch' | 'version'>): Promise<boolean> {
    const dropped = (await this.redis.couponForget(...forgetArgs(couponKeys(couponId), seen))) === 1;
    // Recorded before any load can finish: a load needs several more round trips on this connection.
    if (dropped) this.dropped.add(couponId);
    return dropped;
  }

  /**
   * A claim of an ENDED coupon whose state Redis no longer holds (retired, or lost): what the
   * claim script would answer, from MongoDB: ALREADY_ISSUED with the user's live issuance, or
   * ENDED. `remaining` is totalQuantity minus the live issuances.
   */
  private async endedReply(coupon: CouponDefinition, userId: string): Promise<GateReply> {
    const couponId = new Types.ObjectId(coupon.id);
    let count = this.endedCounts.get(coupon.id);
    if (!count) {
      // Shared for ENDED_RECHECK_MS: a flood of claims of an ended coupon costs one count a second.
      count = this.models.Issuance.countDocuments({ couponId, ...LIVE }).exec();
      this.endedCounts.set(coupon.id, count);
      count.catch(() => this.endedCounts.delete(coupon.id));
    }
    const [doc, live] = await Promise.all([this.models.Issuance.findOne({ couponId, userId, ...LIVE }).select({ sequence: 1, issuedAt: 1 }).lean(), count]);
    const remaining = Math.max(0, coupon.totalQuantity - live);
    if (!doc) return { status: 'ENDED', remaining, version: 0, pending: false, suspect: false };
    const winner: WinnerEntry = { sequence: doc.sequence, issuedAtMs: doc.issuedAt.getTime(), issuanceId: doc._id.toHexString(), durable: true };
    return { status: 'ALREADY_ISSUED', remaining, version: 0, winner, pending: false, suspect: false };
  }

  /**
   * Rebuilds the coupon's Redis state from MongoDB unless it is there; one load at a time.
   * False, with nothing written, when MongoDB's definition has ENDED: a coupon that can no longer
   * be claimed is not rebuilt (claims of it are answered from MongoDB, reads count in MongoDB).
   */
  async ensureLoaded(coupon: CouponDefinition): Promise<boolean> {
    const endedUntil = this.endedSeen.get(coupon.id);
    if (endedUntil !== undefined && endedUntil > Date.now()) return false;
    let load = this.loading.get(coupon.id);
    if (!load) {
      load = this.loadOnce(coupon).finally(() => this.loading.delete(coupon.id));
      this.loading.set(coupon.id, load);
    }
    return load;
  }

  private async loadOnce(coupon: CouponDefinition): Promise<boolean> {
    const keys = couponKeys(coupon.id);
    const lockKey = `coupon:{${coupon.id}}:loading`;
    const token = randomUUID();
    // Across instances, one loader at a time; the others wait for meta to appear.
    const started = Date.now();
    while ((await this.redis.set(lockKey, token, 'PX', LOAD_LOCK_MS, 'NX')) !== 'OK') {
      if (await this.isLoaded(keys)) return true;
      if (Date.now() - started > 2000) throw new DependencyError('redis', `coupon ${coupon.id} is being loaded by another instance`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    try {
      if (await this.isLoaded(keys)) return true;
      // The definition as MongoDB holds it now, not as this instance cached it: an updateCoupon
      // may have changed the window or the quantity moments ago.
      const stored = await this.models.Coupon.findById(new Types.ObjectId(coupon.id)).lean();
      const definition = stored ? toDefinition(stored) : coupon;
      if (definition.endsAt && definition.endsAt.getTime() <= Date.now()) {
        // Nothing can change an ENDED coupon's claims: Redis keeps only what is live.
        this.endedSeen.set(coupon.id, Date.now() + ENDED_RECHECK_MS);
        return false;
      }
      const { highest, free, winners } = await this.copyWinners(coupon);
      const loaded = await this.redis.couponLoad(...loadArgs(keys, definition, highest, free));
      const expected = this.dropped.delete(coupon.id);
      // A new epoch, and maybe a different `remaining` (units MongoDB never got come back).
      if (loaded === 1) this.onStockChanged(coupon.id);
      if (loaded === 1 && winners > 0 && !expected) {
        // Winners existed, so Redis had lost this state (restart, flush): worth an operator's eye.
        this.logger.warn({ couponId: coupon.id, winners, highestSequence: highest, handedBack: free.length }, 'coupon state rebuilt in redis from mongodb');
        this.onRebuilt(coupon.id);
      } else if (loaded === 1) {
        this.logger.debug({ couponId: coupon.id }, 'coupon state loaded into redis');
      }
      return true;
    } finally {
      await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, lockKey, token);
    }
  }

  /** Meta with its fields: a meta that is a version alone (left by a lost meta) does not count. */
  private async isLoaded(keys: ReturnType<typeof couponKeys>): Promise<boolean> {
    const [total, seq] = await this.redis.hmget(keys.meta, 'total', 'seq');
    return total !== null && seq !== null;
  }

  /** Streams the coupon's issuances from MongoDB into the winners hash, finding unused sequences. */
  private async copyWinners(coupon: CouponDefinition): Promise<{ highest: number; free: number[]; winners: number }> {
    const keys = couponKeys(coupon.id);
    // Only live issuances: a cancelled one's user may claim again and its sequence is free.
    const cursor = this.models.Issuance.find({ couponId: new Types.ObjectId(coupon.id), ...LIVE })
      .select({ userId: 1, sequence: 1, issuedAt: 1 })
      .sort({ sequence: 1 })
      .lean()
      .cursor({ batchSize: LOAD_CHUNK });
    let highest = 0;
    let winners = 0;
    const free: number[] = [];
    let chunk: string[] = [];
    const writeChunk = async () => {
      if (chunk.length) await this.redis.hset(keys.winners, ...chunk);
      chunk = [];
    };
    for await (const doc of cursor) {
      for (let missing = highest + 1; missing < doc.sequence; missing++) free.push(missing);
      highest = doc.sequence;
      winners += 1;
      chunk.push(doc.userId, encodeWinner({ sequence: doc.sequence, issuedAtMs: doc.issuedAt.getTime(), issuanceId: doc._id.toHexString(), durable: true }));
      if (chunk.length >= LOAD_CHUNK * 2) await writeChunk();
    }
    await writeChunk();
    return { highest, free, winners };
  }
}
