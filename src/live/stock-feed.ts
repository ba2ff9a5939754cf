/**
 * Live stock for subscribers, on every instance that shares the Redis.
 *
 * Publishing: claims call `changed(couponId)`. Per coupon, at most one message per interval
 * goes out on Redis pub/sub, carrying the stock read at send time (so always the latest),
 * and a change is never left unsent: the trailing send covers the last one, and a graceful
 * stop sends what is still waiting for its interval (see `stop` and `flush`). The claim that
 * takes the last unit is published at once, and a final state (SOLD_OUT, ENDED) is delivered
 * at once on receipt: neither waits for a coalescing window.
 *
 * Receiving: one Redis subscription per coupon per instance, however many clients watch it,
 * dropped when the last one leaves. Messages carry the coupon's stock position (epoch,
 * version); an instance never forwards a position older than one it already forwarded, and forwards at most one
 * update per interval per coupon to its local subscribers, a slice of subscribers per turn of
 * the event loop (see DELIVERY_SLICE).
 *
 * Rechecking: delivery must not hang on the timer of the instance that made the change (it may
 * be killed inside its coalescing window), nor on a publish at all (a rebuild from MongoDB changes
 * stock without a claim). So every RECHECK_MS each instance reads the stock of the coupons its own
 * subscribers watch, one read-only script call per coupon, and forwards it when its position is
 * newer than what it forwarded: whatever changed reaches every watcher within RECHECK_MS plus one
 * interval, whichever instance changed it and whether or not that instance is still there.
 *
 * Status by the clock: a coupon turns ACTIVE at `startsAt` and ENDED at `endsAt` with no claim and
 * no stock change, so the same stock position can carry a later status. Snapshots are ordered by
 * (epoch, version, phase), phase being SCHEDULED < ACTIVE/SOLD_OUT < ENDED. Each instance keeps one
 * status timer per watched coupon (not per subscriber), armed for the coupon's next boundary; when
 * it fires, the instance re-reads the coupon and forwards the new status. The recheck re-arms it
 * and is the backstop when the read at the boundary fails. A subscriber handed ENDED is completed.
 * When a coupon's definition changes (updateCoupon, endCoupon), call `statusMayHaveChanged`.
 */
import type { Logger } from 'pino';
import { notFound } from '../errors';
import type { StockPublisher, StockSubscriber } from '../redis/pubsub';
import { couponIdOfStockChannel, stockChannel } from '../redis/scripts';
import { assertCouponId, type CouponCatalog } from '../coupons/coupon-catalog';
import { isNewerStock, type CouponDefinition, type CouponStatus, type StockSnapshot } from '../coupons/coupon-model';
import type { CouponReader } from './coupon-reader';
import { LatestValueStream } from './latest-value-stream';

/**
 * Subscribers handed an update per turn of the event loop. Each costs about 15 µs of CPU, two
 * thirds of it the socket write; the slice shares one GraphQL execution and one serialization per
 * document (src/http/shared-subscription.ts). Ten thousand in one turn would hold the loop for
 * over 100 ms, long enough for admission control to shed claims for event-loop lag; in slices,
 * claims are read and answered between them.
 */
export const DELIVERY_SLICE = 200;

/**
 * How often an instance re-reads the stock of the coupons its subscribers watch. With the 100 ms
 * interval, a change nobody published reaches watchers within about 0.6 s (bound: 1 s).
 */
export const RECHECK_MS = 500;

/**
 * A status timer fires this long after the boundary: the status is derived with `now < startsAt`
 * and `now >= endsAt`, and Node may fire a timer a millisecond early.
 */
export const STATUS_TIMER_SLACK_MS = 5;

/** setTimeout's longest delay (about 24.8 days); a later boundary is reached by re-arming. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When the coupon's status next changes by the clock alone (ms since the epoch), or undefined. */
export function nextStatusChange(definition: Pick<CouponDefinition, 'startsAt' | 'endsAt'>, now: number): number | undefined {
  const startsAt = definition.startsAt.getTime();
  if (now < startsAt) return startsAt;
  const endsAt = definition.endsAt?.getTime();
  if (endsAt !== undefined && now < endsAt) return endsAt;
  return undefined;
}

/** The order in which the clock moves a coupon's status (SOLD_OUT and ACTIVE differ by stock, not time). */
const PHASE: Record<CouponStatus, number> = { SCHEDULED: 0, ACTIVE: 1, SOLD_OUT: 1, ENDED: 2 };

/**
 * Whether `a` is a later state than `b`: a newer stock position, or the same position with a status
 * the clock reaches later (SCHEDULED, then ACTIVE or SOLD_OUT, then ENDED).
 */
export function supersedes(a: StockSnapshot, b: StockPosition): boolean {
  if (isNewerStock(a, b)) return true;
  if (isNewerStock(b, a)) return false;
  return PHASE[a.status] > (b.status === undefined ? -1 : PHASE[b.status]);
}

export interface StockFeedOptions {
  /** Minimum gap between two updates of one coupon, both when publishing and delivering. */
  intervalMs: number;
  /** Re-read of watched coupons (default RECHECK_MS); 0 turns it off. */
  recheckMs?: number;
  onSubscribersChanged?: (open: number) => void;
}

/** Leading-and-trailing throttle per key: fires at once, then at most once per interval. */
class KeyedThrottle {
  private readonly last = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly intervalMs: number,
    private readonly fire: (key: string) => void,
  ) {}

  touch(key: string): void {
    if (this.timers.has(key)) return;
    const wait = (this.last.get(key) ?? -Infinity) + this.intervalMs - Date.now();
    if (wait <= 0) return this.run(key);
    this.timers.set(key, setTimeout(() => this.run(key), wait));
  }

  /** Fires now, whether or not the interval has passed (a waiting fire is replaced by this one). */
  now(key: string): void {
    clearTimeout(this.timers.get(key));
    this.run(key);
  }

  /** Fires now every key that waits for its interval. */
  flush(): void {
    for (const [key, timer] of [...this.timers]) {
      clearTimeout(timer);
      this.run(key);
    }
  }

  clear(): void {
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
  }

  forget(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.last.delete(key);
  }

  private run(key: string): void {
    this.timers.delete(key);
    this.last.set(key, Date.now());
    this.fire(key);
  }
}

/** A state with nothing after it but the end: no unit left to claim, or the coupon over. */
const isFinal = (snapshot: StockSnapshot) => snapshot.status === 'SOLD_OUT' || snapshot.status === 'ENDED';

type StockPosition = Pick<StockSnapshot, 'epoch' | 'version'> & { status?: CouponStatus };

/** Older than any stock position. */
const NOTHING_YET: StockPosition = { epoch: 0, version: 0 };

interface Watched {
  /** Each local subscriber with the newest position it was sent. */
  streams: Map<LatestValueStream<StockSnapshot>, StockPosition>;
  /** Newest snapshot forwarded to local subscribers. */
  forwarded?: StockSnapshot;
  /** Newest snapshot received and not yet forwarded. */
  pending?: StockSnapshot;
  /** A pass over the subscribers is under way; it hands each the newest `forwarded`. */
  delivering: boolean;
  /** The Redis subscription of the coupon's channel; the entry is removed if it fails. */
  subscribed: Promise<void>;
  /** The status timer, and the boundary (ms since the epoch) it is armed for. */
  statusTimer?: NodeJS.Timeout;
  statusTimerAt?: number;
}

export class StockFeed {
  private readonly watched = new Map<string, Watched>();
  private readonly publishThrottle: KeyedThrottle;
  private readonly deliverThrottle: KeyedThrottle;
  private open = 0;
  private stopped = false;
  /** No more publishing: the connections are about to close. */
  private closed = false;
  /** Publishes under way, for `flush` to wait for. */
  private readonly publishing = new Set<Promise<void>>();
  private readonly recheckTimer: NodeJS.Timeout | undefined;
  /** Coupons whose recheck read is under way (a slow read is not started again). */
  private readonly rechecking = new Set<string>();

  constructor(
    private readonly publisher: StockPublisher,
    private readonly subscriber: StockSubscriber,
    private readonly catalog: CouponCatalog,
    private readonly reader: CouponReader,
    private readonly logger: Logger,
    private readonly options: StockFeedOptions,
  ) {
    this.publishThrottle = new KeyedThrottle(options.intervalMs, (couponId) => this.track(this.publish(couponId)));
    this.deliverThrottle = new KeyedThrottle(options.intervalMs, (couponId) => this.deliver(couponId));
    subscriber.on('message', (channel: string, message: string) => this.receive(channel, message));
    // Messages sent while the subscriber was disconnected are gone: re-read the stock instead.
    subscriber.on('ready', () => this.watched.forEach((_, couponId) => void this.refresh(couponId)));
    const recheckMs = options.recheckMs ?? RECHECK_MS;
    if (recheckMs > 0) this.recheckTimer = setInterval(() => this.recheckWatched(), recheckMs).unref();
  }

  /**
   * A claim changed the coupon's stock; `remaining` is the stock the claim left, when known. The
   * last unit (0) is published at once, not at the end of the interval: the final state is what
   * every watcher waits for, and nothing newer can come to coalesce with it.
   */
  changed(couponId: string, remaining?: number): void {
    if (this.closed) return;
    if (remaining === 0) this.publishThrottle.now(couponId);
    else this.publishThrottle.touch(couponId);
  }

  /**
   * The coupon's definition changed (updateCoupon, endCoupon): its status may be another now, and
   * its status timer may be armed for the wrong moment. Publishes the current state to every
   * instance and re-reads it here, which re-arms the timer. Call it once the catalog has the new
   * definition; other instances' timers are re-armed by their recheck, once their catalog has it.
   */
  statusMayHaveChanged(couponId: string): void {
    this.changed(couponId);
    if (this.watched.has(couponId) && !this.stopped) void this.refresh(couponId, { level: 'warn', msg: 'stock refresh after a definition change failed' });
  }

  /** Current state first, then coalesced updates, until the client leaves or the feed stops. */
  async watch(couponId: string): Promise<AsyncIterableIterator<StockSnapshot>> {
    assertCouponId(couponId);
    const coupon = await this.catalog.find(couponId);
    if (!coupon) throw notFound('coupon');
    let entry = this.watched.get(couponId);
    if (!entry) {
      const created: Watched = { streams: new Map(), delivering: false, subscribed: Promise.resolve() };
      created.subscribed = this.subscriber.subscribe(stockChannel(couponId)).then(
        () => undefined,
        (error: unknown) => {
          // No subscription, so no entry: the next watcher subscribes again instead of relying on
          // a subscription that never was (and the recheck does not read a coupon nobody watches).
          if (this.watched.get(couponId) === created) {
            this.watched.delete(couponId);
            clearTimeout(created.statusTimer);
            this.deliverThrottle.forget(couponId);
          }
          throw error;
        },
      );
      entry = created;
      this.watched.set(couponId, entry);
    }
    // Every watcher of a new entry waits for its subscription, and fails with it.
    await entry.subscribed;
    // The last watcher may have left while this one waited: start over with a new subscription.
    if (this.watched.get(couponId) !== entry) return this.watch(couponId);
    const watched = entry;
    const stream: LatestValueStream<StockSnapshot> = new LatestValueStream(() => this.leave(couponId, stream));
    watched.streams.set(stream, NOTHING_YET);
    this.countSubscribers(+1);
    try {
      const current = await this.reader.snapshot(coupon);
      watched.streams.set(stream, current);
      stream.push(current);
      if (current.status === 'ENDED') {
        stream.end();
        return stream;
      }
      // Newer than what the others have seen: they get it too, through the throttle.
      this.offer(couponId, watched, current);
      this.armStatusTimer(couponId, watched, coupon);
    } catch (error) {
      stream.end();
      throw error;
    }
    return stream;
  }

  /**
   * Completes every local subscription, and publishes at once the changes still waiting for
   * their interval (the other instances' watchers must not miss them). Claims still in flight
   * keep publishing until `flush`.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.recheckTimer);
    this.deliverThrottle.clear();
    for (const entry of this.watched.values()) {
      clearTimeout(entry.statusTimer);
      [...entry.streams.keys()].forEach((stream) => stream.end());
    }
    this.watched.clear();
    await this.flushPublishes();
  }

  /** The last step before the connections close: publishes what is waiting, then no more. */
  async flush(): Promise<void> {
    await this.flushPublishes();
    this.closed = true;
    this.publishThrottle.clear();
  }

  private async flushPublishes(): Promise<void> {
    this.publishThrottle.flush();
    await Promise.all([...this.publishing]);
  }

  private track(publish: Promise<void>): void {
    this.publishing.add(publish);
    void publish.finally(() => this.publishing.delete(publish));
  }

  /** Coupons with a Redis subscription on this instance (for tests and metrics). */
  subscribedCoupons(): string[] {
    return [...this.watched.keys()];
  }

  private leave(couponId: string, stream: LatestValueStream<StockSnapshot>): void {
    const entry = this.watched.get(couponId);
    if (!entry?.streams.delete(stream)) return;
    this.countSubscribers(-1);
    if (entry.streams.size > 0) return;
    this.watched.delete(couponId);
    clearTimeout(entry.statusTimer);
    this.deliverThrottle.forget(couponId);
    if (!this.stopped) {
      this.subscriber.unsubscribe(stockChannel(couponId)).catch((error: Error) => this.logger.warn({ couponId, err: error.message }, 'stock unsubscribe failed'));
    }
  }

  private async publish(couponId: string): Promise<void> {
    try {
      const coupon = await this.catalog.find(couponId);
      if (!coupon) return;
      const snapshot = await this.reader.snapshot(coupon);
      await this.publisher.publish(stockChannel(couponId), JSON.stringify(snapshot));
    } catch (error) {
      // Retry later so the last change is still delivered once Redis answers again.
      this.logger.warn({ couponId, err: (error as Error).message }, 'stock update not published; retrying');
      if (!this.stopped) setTimeout(() => this.changed(couponId), this.options.intervalMs).unref();
    }
  }

  private receive(channel: string, message: string): void {
    const couponId = couponIdOfStockChannel(channel);
    const entry = couponId && this.watched.get(couponId);
    if (!couponId || !entry) return;
    let snapshot: StockSnapshot;
    try {
      snapshot = JSON.parse(message) as StockSnapshot;
    } catch {
      this.logger.warn({ couponId }, 'malformed stock message ignored');
      return;
    }
    this.offer(couponId, entry, snapshot);
  }

  /**
   * Queues a newer snapshot for delivery. A final one (SOLD_OUT, ENDED) goes out at once instead
   * of at the end of the interval: the order stays (only a snapshot newer than everything
   * forwarded is queued, and each subscriber is only ever handed a newer one than it has), and
   * coalescing has nothing left to save once the stock is gone.
   */
  private offer(couponId: string, entry: Watched, snapshot: StockSnapshot): void {
    if (!supersedes(snapshot, entry.pending ?? entry.forwarded ?? NOTHING_YET)) return;
    entry.pending = snapshot;
    if (isFinal(snapshot)) this.deliverThrottle.now(couponId);
    else this.deliverThrottle.touch(couponId);
  }

  private deliver(couponId: string): void {
    const entry = this.watched.get(couponId);
    if (!entry?.pending) return;
    entry.forwarded = entry.pending;
    entry.pending = undefined;
    // A pass under way hands the rest the newer snapshot and then goes round again for the
    // subscribers it passed before; starting over instead would starve the last ones while
    // updates keep coming.
    if (!entry.delivering) this.deliverInSlices(couponId, entry);
  }

  private deliverInSlices(couponId: string, entry: Watched): void {
    entry.delivering = true;
    const startedWith = entry.forwarded;
    const streams = entry.streams.entries();
    const slice = () => {
      // Between turns the coupon may have lost its last subscriber, or a newer snapshot come in.
      const snapshot = entry.forwarded;
      if (!snapshot || this.stopped || this.watched.get(couponId) !== entry) return;
      // One object per slice: the slice's subscribers that sent the same document share one
      // execution of it (src/http/shared-subscription.ts), and `serverTime` is the slice's.
      const sent = { ...snapshot };
      for (let handed = 0; handed < DELIVERY_SLICE; handed++) {
        const next = streams.next();
        if (next.done) {
          entry.delivering = false;
          if (entry.forwarded !== startedWith) this.deliverInSlices(couponId, entry);
          return;
        }
        const [stream, position] = next.value;
        if (!supersedes(snapshot, position)) continue;
        entry.streams.set(stream, snapshot);
        stream.push(sent);
        // The last word on an ended coupon: the subscription completes after it.
        if (snapshot.status === 'ENDED') stream.end();
      }
      setImmediate(slice);
    };
    slice();
  }

  private async refresh(couponId: string, failure: { level: 'warn' | 'debug'; msg: string } = { level: 'warn', msg: 'stock refresh after reconnect failed' }): Promise<void> {
    try {
      const coupon = await this.catalog.find(couponId);
      const entry = this.watched.get(couponId);
      if (!coupon || !entry) return;
      const snapshot = await this.reader.snapshot(coupon);
      // The watchers may have left, or the feed stopped, during the read.
      if (this.watched.get(couponId) !== entry) return;
      this.offer(couponId, entry, snapshot);
      this.armStatusTimer(couponId, entry, coupon);
    } catch (error) {
      this.logger[failure.level]({ couponId, err: (error as Error).message }, failure.msg);
    }
  }

  /**
   * One timer per watched coupon, for its next status boundary; re-armed only when the boundary
   * moved (a changed definition) or the timer has fired. At the boundary the coupon is re-read and
   * its new status forwarded like a stock change.
   */
  private armStatusTimer(couponId: string, entry: Watched, definition: CouponDefinition): void {
    const now = Date.now();
    const at = nextStatusChange(definition, now);
    if (at === entry.statusTimerAt && (at === undefined || entry.statusTimer)) return;
    clearTimeout(entry.statusTimer);
    entry.statusTimer = undefined;
    entry.statusTimerAt = at;
    if (at === undefined || this.stopped) return;
    const delay = Math.min(at - now + STATUS_TIMER_SLACK_MS, MAX_TIMER_MS);
    entry.statusTimer = setTimeout(() => {
      entry.statusTimer = undefined;
      entry.statusTimerAt = undefined;
      void this.refresh(couponId, { level: 'warn', msg: 'stock refresh at a status boundary failed; the recheck retries' });
    }, delay).unref();
  }

  /** Reads each watched coupon's stock; offer() forwards it only when it is newer. */
  private recheckWatched(): void {
    for (const couponId of this.watched.keys()) {
      if (this.rechecking.has(couponId)) continue;
      this.rechecking.add(couponId);
      // Debug only: while Redis or MongoDB is down this fails every turn, and the outage is logged elsewhere.
      void this.refresh(couponId, { level: 'debug', msg: 'stock recheck failed' }).finally(() => this.rechecking.delete(couponId));
    }
  }

  private countSubscribers(delta: number): void {
    this.open += delta;
    this.options.onSubscribersChanged?.(this.open);
  }
}
