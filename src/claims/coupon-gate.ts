/**
 * The concurrency gate: a coupon's live state in Redis (stock, winners, sequence, pending
 * writes), changed only by the Lua scripts. The state is derived from MongoDB and rebuilt from
 * it whenever it is missing, for example after Redis lost its data. A part of it lost (a
 * failover, an operator's DEL) is caught too: a meta without its fields is not loaded, a winner
 * entry is only taken for durable once MongoDB confirmed it, and a winners hash with fewer
 * entries than sequences taken sends a sold-out answer to MongoDB first (see claim-4.lua).
 */
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { Logger } from 'pino';
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

export interface PendingWinner {
  userId: string;
  winner: WinnerEntry;
}

export class CouponGate {
  private readonly loading = new Map<string, Promise<void>>();
  /** Coupons this instance dropped on purpose (a repair): their rebuild is expected, not news. */
  private readonly dropped = new Set<string>();
  /** Repairs of a lost winners hash under way, one per coupon. */
  private readonly repairing = new Map<string, Promise<void>>();

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
      await this.ensureLoaded(coupon);
      reply = parseClaimReply(await this.redis.couponClaim(...claimArgs(keys, userId, issuanceId)));
    }
    if (reply.status === 'NOT_LOADED') throw new Error(`coupon ${coupon.id} state vanished right after loading`);
    return reply;
  }

  async stock(coupon: CouponDefinition): Promise<StockReply> {
    const keys = couponKeys(coupon.id);
    let reply = parseStockReply(await this.redis.couponStock(...stockArgs(keys)));
    if (!reply.loaded) {
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
   * Puts a changed definition into the claim state at once (define-2.lua): 'admin' refuses a
   * total below the sequences taken and holds the definition against the reconciler for `holdMs`
   * while MongoDB is written; 'repair' sets MongoDB's definition unless such a hold is in force.
   */
  async define(coupon: CouponDefinition, holdMs: number, mode: DefineMode): Promise<DefineOutcome> {
    const outcome = parseDefineReply(await this.redis.couponDefine(...defineArgs(couponKeys(coupon.id), coupon, holdMs, mode)));
    // A new quantity changes `remaining`, a new window the status: watchers must hear it.
    if (outcome === 'updated') this.onStockChanged(coupon.id);
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

  /** Rebuilds the coupon's Redis state from MongoDB unless it is there; one load at a time. */
  ensureLoaded(coupon: CouponDefinition): Promise<void> {
    let load = this.loading.get(coupon.id);
    if (!load) {
      load = this.loadOnce(coupon).finally(() => this.loading.delete(coupon.id));
      this.loading.set(coupon.id, load);
    }
    return load;
  }

  private async loadOnce(coupon: CouponDefinition): Promise<void> {
    const keys = couponKeys(coupon.id);
    const lockKey = `coupon:{${coupon.id}}:loading`;
    const token = randomUUID();
    // Across instances, one loader at a time; the others wait for meta to appear.
    const started = Date.now();
    while ((await this.redis.set(lockKey, token, 'PX', LOAD_LOCK_MS, 'NX')) !== 'OK') {
      if (await this.isLoaded(keys)) return;
      if (Date.now() - started > 2000) throw new Error(`coupon ${coupon.id} is being loaded by another instance`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    try {
      if (await this.isLoaded(keys)) return;
      // The definition as MongoDB holds it now, not as this instance cached it: an updateCoupon
      // may have changed the window or the quantity moments ago.
      const stored = await this.models.Coupon.findById(new Types.ObjectId(coupon.id)).lean();
      const definition = stored ? toDefinition(stored) : coupon;
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
