/**
 * The opening draw on one instance (contract v3, "Fair opening"): the claims of a coupon with
 * openingDrawMs = W > 0 that arrive in [startsAt, startsAt + W) are entries, held until the draw
 * is applied and then answered (ISSUED to winners, SOLD_OUT to the others); claims after the
 * window wait for the draw too, then go first come, first served through the gate.
 *
 * Entries live in Redis, one sorted set per coupon whose members are "rankKey:userId" with score
 * 0 (draw-enter-2.lua): entering is one O(log N) command from any instance, a user's repeated
 * claims are one member, and the set's own order is the ranking, so the draw reads only its
 * first k members (ZRANGE 0 k-1) however many entered: the HMACs were computed as the entries
 * came in, spread over the window and over the instances, not at the draw's moment.
 *
 * Nobody polls from outside: a held request stays open. Inside, each instance with held claims
 * reads the draw's `applied` flag every POLL_MS after the window's end (one HGET per coupon,
 * not per claim) and tries to run the draw itself; the lease in draw-close-4.lua and MongoDB's
 * `drawDone` decide who runs it (draw-runner.ts). A sweep every second finishes draws nobody
 * claimed in, and draws whose runner died.
 */
import { Types } from 'mongoose';
import type { Logger } from 'pino';
import type { Cursor } from 'mongoose';
import { badRequest, notFound, DependencyError } from '../errors';
import type { Models } from '../mongo/models';
import type { RedisClient } from '../redis/client';
import { drawKeys, enterArgs, parseEnterReply } from '../redis/draw-scripts';
import { decodeWinner } from '../redis/scripts';
import { PeriodicTask } from '../support/periodic-task';
import { assertCouponId, toDefinition, type CouponCatalog } from '../coupons/coupon-catalog';
import type { ClaimOutcome, CouponDefinition } from '../coupons/coupon-model';
import { drawCommitmentOf, rankKeyOf } from '../coupons/opening-draw';
import { toIssuance, type OpeningDrawPort } from '../claims/claim-service';
import type { CouponGate } from '../claims/coupon-gate';
import type { IssuanceWriter } from '../claims/issuance-writer';
import { drawEntrantModel, type DrawEntrantDocument, type DrawEntrantModel } from './draw-entrants';
import { DrawRunner, windowEndOf } from './draw-runner';
import { memberOf } from './ranking';

/**
 * A held claim's budget: inside REQUEST_DEADLINE_MS (2.5 s from arrival), with room for a busy
 * machine's late timers, so that it answers SERVICE_UNAVAILABLE rather than after the contract's
 * 3 s. An entry at startsAt thus leaves the draw 2200 - openingDrawMs ms (200 ms at the longest window).
 */
export const HELD_DEADLINE_MS = 2200;
const POLL_MS = 25;
/** How often an instance with held claims retries running the draw (a busy lease answers at once). */
const RUN_RETRY_MS = 250;
/** A watcher gives up this long after the window's end; later claims start a new one. */
const WATCH_LIMIT_MS = 3000;
const SWEEP_INTERVAL_MS = 1000;
const SWEEP_HORIZON_MS = 24 * 60 * 60 * 1000;
const WARM_UP_MS = 60_000;
const COUPON_ID = /^[0-9a-f]{24}$/i;

export interface OpeningDrawOptions {
  redis: RedisClient;
  models: Models;
  catalog: CouponCatalog;
  gate: Pick<CouponGate, 'ensureLoaded' | 'stock'>;
  writer: Pick<IssuanceWriter, 'write'>;
  logger: Logger;
  /** The draw is finished: tell every instance (the coupon's definition now shows the seed). */
  onFinished: (couponId: string) => void;
  clock?: () => number;
}

export class OpeningDraw implements OpeningDrawPort {
  readonly heldDeadlineMs = HELD_DEADLINE_MS;
  readonly entrants: DrawEntrantModel;
  private readonly runner: DrawRunner;
  private readonly seeds = new Map<string, Promise<Buffer>>();
  /** Coupons whose draw this instance saw applied, with the stock left right after it. */
  private readonly settled = new Map<string, number>();
  private readonly watches = new Map<string, Promise<number>>();
  private readonly runs = new Map<string, Promise<unknown>>();
  /** Draw windows this instance knows of, from claims and from the sweep's warm-up: [startsAt, window end). */
  private readonly windows = new Map<string, { from: number; to: number }>();
  private readonly sweep: PeriodicTask;
  private readonly clock: () => number;

  constructor(private readonly options: OpeningDrawOptions) {
    this.clock = options.clock ?? Date.now;
    this.entrants = drawEntrantModel(options.models.Coupon.db);
    this.runner = new DrawRunner({ ...options, entrants: this.entrants, seedOf: (coupon) => this.seedOf(coupon) });
    this.sweep = new PeriodicTask(() => this.finishDue(), options.logger, 'opening draw sweep failed; will retry');
  }

  start(): void {
    this.entrants.createIndexes().catch((error: Error) => this.options.logger.error({ err: error.message }, 'could not create the draw entrants index'));
    this.sweep.start(SWEEP_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    await this.sweep.stop();
    await Promise.allSettled([...this.runs.values()]);
  }

  /** Whether some draw's window is open now, as far as this instance knows (no I/O). */
  windowOpen(): boolean {
    const now = this.clock();
    let open = false;
    for (const [couponId, window] of this.windows) {
      if (window.to <= now) this.windows.delete(couponId);
      else if (window.from <= now) open = true;
    }
    return open;
  }

  mayHold(couponId: string): boolean {
    if (!COUPON_ID.test(couponId)) return false;
    const coupon = this.options.catalog.cached(couponId);
    return !coupon || this.drawPending(coupon);
  }

  async decide(couponId: string, userId: string, firstComeFirstServed: () => Promise<ClaimOutcome>, onHeld?: () => void): Promise<ClaimOutcome> {
    const coupon = await this.options.catalog.find(couponId);
    if (!coupon) throw notFound('coupon');
    if (!this.drawPending(coupon)) return firstComeFirstServed();
    this.knowWindow(coupon);
    const notStarted: ClaimOutcome = { status: 'NOT_STARTED', issuance: null, remaining: coupon.totalQuantity };
    // Before the start by this instance's clock: the same answer the sold-out memory would give.
    if (this.clock() < coupon.startsAt.getTime()) return notStarted;
    const member = memberOf(rankKeyOf(await this.seedOf(coupon), userId), userId);
    const keys = drawKeys(coupon.id);
    const entry = parseEnterReply(await this.options.redis.drawEnter(...enterArgs(keys, member, { ...coupon, openingDrawMs: coupon.openingDrawMs ?? 0 })));
    switch (entry.status) {
      case 'NOT_STARTED':
        return notStarted;
      case 'ENDED':
        return firstComeFirstServed();
      case 'CLOSED':
        // After the window: first come, first served, once the draw's winners are in the gate.
        onHeld?.();
        await this.applied(coupon);
        return firstComeFirstServed();
      case 'ENTERED':
        // Held until the draw: the request gives back its admission slot, so that the window's
        // entrants are bounded by what the instance can read, not by MAX_CONCURRENT_REQUESTS.
        onHeld?.();
        return this.outcome(coupon, userId, entry.added, await this.applied(coupon), firstComeFirstServed);
    }
  }

  /**
   * The entrants of a finished draw in ranking order, for the audit export. NOT_FOUND for an
   * unknown coupon or one without a draw; BAD_REQUEST (HTTP 409) while the draw is not done.
   */
  async entrantsInOrder(couponId: string): Promise<Cursor<DrawEntrantDocument>> {
    assertCouponId(couponId);
    const doc = await this.options.models.Coupon.findById(new Types.ObjectId(couponId)).select({ openingDrawMs: 1, drawDone: 1 }).lean();
    if (!doc) throw notFound('coupon');
    if (!doc.openingDrawMs) throw notFound('opening draw');
    if (!doc.drawDone) throw badRequest('the opening draw is not done yet', 409);
    return this.entrants
      .find({ couponId: new Types.ObjectId(couponId) })
      .sort({ rank: 1 })
      .lean()
      .cursor({ batchSize: 1000 }) as unknown as Cursor<DrawEntrantDocument>;
  }

  /** A held entrant's answer, from the gate once the draw is applied. */
  private async outcome(coupon: CouponDefinition, userId: string, firstEntry: boolean, remaining: number, firstComeFirstServed: () => Promise<ClaimOutcome>): Promise<ClaimOutcome> {
    const held = await this.options.redis.hget(`coupon:{${coupon.id}}:winners`, userId);
    if (held?.startsWith('=')) {
      const winner = decodeWinner(held);
      // The request that made the entry hears ISSUED; the same user's other requests hear ALREADY_ISSUED.
      return firstEntry
        ? { status: 'ISSUED', issuance: toIssuance(coupon.id, userId, winner), remaining }
        : { status: 'ALREADY_ISSUED', issuance: toIssuance(coupon.id, userId, winner, true), remaining };
    }
    if (!held && remaining <= 0) return { status: 'SOLD_OUT', issuance: null, remaining: 0 };
    // Not drawn but a unit is free (or an entry the gate does not know as durable): first come, first served.
    return firstComeFirstServed();
  }

  private knowWindow(coupon: CouponDefinition): void {
    this.windows.set(coupon.id, { from: coupon.startsAt.getTime(), to: windowEndOf(coupon) });
  }

  /** Whether claims of this coupon still depend on its draw, as far as this instance knows. */
  private drawPending(coupon: CouponDefinition): boolean {
    return (coupon.openingDrawMs ?? 0) > 0 && !coupon.drawSeed && !this.settled.has(coupon.id);
  }

  /** Resolves with the stock left once the draw is applied (one watcher per coupon on this instance). */
  private applied(coupon: CouponDefinition): Promise<number> {
    const known = this.settled.get(coupon.id);
    if (known !== undefined) return Promise.resolve(known);
    let watch = this.watches.get(coupon.id);
    if (!watch) {
      watch = this.watch(coupon).finally(() => this.watches.delete(coupon.id));
      this.watches.set(coupon.id, watch);
    }
    return watch;
  }

  private async watch(coupon: CouponDefinition): Promise<number> {
    const windowEnd = windowEndOf(coupon);
    const drawKey = drawKeys(coupon.id).draw;
    let lastRun = 0;
    for (;;) {
      const now = this.clock();
      if (now < windowEnd) {
        await sleep(windowEnd - now);
        continue;
      }
      if (now - lastRun >= RUN_RETRY_MS) {
        lastRun = now;
        this.runSoon(coupon);
      }
      try {
        if ((await this.options.redis.hget(drawKey, 'applied')) === '1') {
          const { remaining } = await this.options.gate.stock(coupon);
          this.settled.set(coupon.id, remaining);
          return remaining;
        }
      } catch (error) {
        if (this.clock() > windowEnd + WATCH_LIMIT_MS) throw error;
      }
      if (this.clock() > windowEnd + WATCH_LIMIT_MS) throw new DependencyError('redis', 'the opening draw was not applied in time');
      await sleep(POLL_MS);
    }
  }

  /** Tries to run the draw on this instance, one attempt at a time per coupon. */
  private runSoon(coupon: CouponDefinition): void {
    if (this.runs.has(coupon.id)) return;
    const run = this.runner
      .run(coupon)
      .catch((error: Error) => this.options.logger.warn({ couponId: coupon.id, err: error.message }, 'opening draw run failed; another attempt follows'))
      .finally(() => this.runs.delete(coupon.id));
    this.runs.set(coupon.id, run);
  }

  /**
   * The sweep: runs the draws whose window is over and that are not done (including those nobody
   * entered, and those whose runner died), and warms up the draws about to open: their definition
   * and seed are in memory before startsAt, so the opening instant costs no MongoDB read.
   */
  private async finishDue(): Promise<void> {
    const now = this.clock();
    const due = await this.options.models.Coupon.find({
      openingDrawMs: { $gt: 0 },
      drawDone: { $ne: true },
      startsAt: { $gt: new Date(now - SWEEP_HORIZON_MS), $lte: new Date(now + WARM_UP_MS) },
    }).lean();
    for (const doc of due) {
      const coupon = toDefinition(doc);
      if (windowEndOf(coupon) <= now) {
        this.runSoon(coupon);
        continue;
      }
      this.knowWindow(coupon);
      if (!this.seeds.has(coupon.id)) {
        await this.options.catalog.find(coupon.id);
        await this.seedOf(coupon).catch((error: Error) => this.options.logger.error({ couponId: coupon.id, err: error.message }, 'opening draw seed unusable'));
      }
    }
    await Promise.allSettled([...this.runs.values()]);
  }

  /** The secret seed, read once per coupon per instance and checked against the public commitment. */
  private seedOf(coupon: CouponDefinition): Promise<Buffer> {
    let seed = this.seeds.get(coupon.id);
    if (!seed) {
      seed = this.options.models.Coupon.findById(new Types.ObjectId(coupon.id))
        .select('+drawSecret drawCommitment')
        .lean()
        .then((doc) => {
          const secret = doc?.drawSecret;
          // The error names the coupon, never the seed.
          if (!secret || !doc.drawCommitment || drawCommitmentOf(secret) !== doc.drawCommitment) throw new Error(`coupon ${coupon.id} has no draw seed matching its commitment`);
          return Buffer.from(secret, 'hex');
        });
      seed.catch(() => this.seeds.delete(coupon.id));
      this.seeds.set(coupon.id, seed);
    }
    return seed;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
