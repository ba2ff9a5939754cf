/**
 * The services graph: every service built once, wired to the metrics, in dependency order.
 * The claim strategy decides which claim service and which stock source are used.
 */
import type { Logger } from 'pino';
import type { Services } from '../context';
import { watchHealth } from '../http/health';
import { createMetrics, type Metrics } from '../metrics';
import { stockPublisher, stockSubscriber } from '../redis/pubsub';
import { AuditLog } from '../access/audit-log';
import { Authenticator } from '../access/auth';
import { CouponAdmin } from '../admin/coupon-admin';
import { CouponChanges } from '../coupons/coupon-changes';
import { CouponDirectory } from '../admin/coupon-directory';
import { IssuanceLifecycle } from '../lifecycle/issuance-lifecycle';
import { ClaimService, type ClaimServiceOptions } from '../claims/claim-service';
import { CouponCatalog } from '../coupons/coupon-catalog';
import { CouponGate } from '../claims/coupon-gate';
import { CouponReader } from '../live/coupon-reader';
import { DbAtomicClaims, DbCounterStock, type DbCounterClaims } from '../claims/strategies/db-atomic-claims';
import { DbLockClaims } from '../claims/strategies/db-lock-claims';
import { IssuanceWriter } from '../claims/issuance-writer';
import { ClaimRateLimiter } from '../access/rate-limiter';
import { ReadLimiter } from '../access/read-limiter';
import { EndedStates } from '../claims/ended-states';
import { Reconciler } from '../claims/reconciler';
import { SoldOutMemory } from '../claims/sold-out-memory';
import { RedisDoubt, watchForLostWrites } from '../claims/redis-doubt';
import { StockFeed } from '../live/stock-feed';
import { OpeningDraw } from '../draw/opening-draw';
import type { CouponDefinition } from '../coupons/coupon-model';
import type { ServiceSettings } from './settings';
import type { Connections } from './connections';
import { buildEvents } from './events';

/** The contract's coalescing interval for stock updates. */
const STOCK_UPDATE_INTERVAL_MS = 100;

export interface ServiceGraph {
  services: Services;
  metrics: Metrics;
  stockFeed: StockFeed;
  writer: IssuanceWriter;
  reconciler: Reconciler;
  /** Set only with CLAIM_STRATEGY=db-lock or db-atomic (load comparison). */
  dbClaims?: DbCounterClaims;
  /** Starts the strategy's background repairs: Redis reconciliation, or the db counter's. */
  startBackground(): void;
  /** Stops them at their next safe point. */
  stopBackground(): Promise<void>;
}

export function buildServices(settings: ServiceSettings, connections: Connections, logger: Logger): ServiceGraph {
  const { redis, publisher, subscriber, limiterRedis, models } = connections;
  const metrics = createMetrics();
  const catalog = new CouponCatalog(models);
  // A rebuild's stock goes to watchers like a claim's (the feed is built below; loads come later).
  const gate = new CouponGate(
    redis,
    models,
    logger,
    () => metrics.repairs.inc({ kind: 'redis_rebuilt' }),
    (couponId) => stockFeed.changed(couponId),
  );
  const writer = new IssuanceWriter(models, {
    windowMs: settings.groupCommitWindowMs,
    maxBatch: settings.groupCommitMaxBatch,
    maxConcurrentBatches: settings.groupCommitMaxInFlight,
    onBatch: (size, waitedMs, durationMs, failed) => {
      metrics.batchSize.observe(size);
      metrics.batchWaitSeconds.observe(waitedMs / 1000);
      metrics.batchWriteSeconds.observe(durationMs / 1000);
      if (failed) metrics.dependencyErrors.inc({ dependency: 'mongodb' });
    },
  });
  // CLAIM_STRATEGY=db-lock or db-atomic (load comparison only): claims and stock from a MongoDB counter, not Redis.
  const dbStock = settings.claimStrategy === 'redis' ? undefined : new DbCounterStock(models);
  const reader = new CouponReader(catalog, dbStock ?? gate, models);
  const stockFeed = new StockFeed(stockPublisher(publisher), stockSubscriber(subscriber), catalog, reader, logger, {
    intervalMs: STOCK_UPDATE_INTERVAL_MS,
    onSubscribersChanged: (open) => metrics.subscriptions.set(open),
  });
  const rateLimiter = new ClaimRateLimiter(limiterRedis, {
    perUser: settings.claimRatePerUser,
    perIp: settings.claimRatePerIp,
    onFallback: () => metrics.dependencyErrors.inc({ dependency: 'redis' }),
  });
  // Webhooks: built before the claims, which tell it how busy they are (deliveries yield to a drop).
  const events = buildEvents(settings, connections, metrics, logger);
  // v3 opening draw (the gate's strategy only): a finished draw is announced to every instance,
  // whose definitions then show the seed and the entrants.
  const openingDraw = new OpeningDraw({
    redis,
    models,
    catalog,
    gate,
    writer,
    logger,
    onFinished: (couponId) => {
      // Here at once (the runner's definition is stale too), then on every other instance.
      void catalog
        .fresh(couponId)
        .catch((error: Error) => logger.warn({ couponId, err: error.message }, 'could not re-read the coupon after its draw; re-validated within 500 ms'))
        .then(() => changes.announce({ couponId, definition: true }));
    },
  });
  const claimOptions: ClaimServiceOptions = {
    deadlineMs: settings.requestTimeoutMs,
    rateLimiter,
    onStockChanged: (couponId, remaining) => stockFeed.changed(couponId, remaining),
    onClaim: (outcome, seconds) => {
      events.claimed(seconds);
      metrics.claims.add(outcome);
      metrics.claimSeconds.observe(seconds);
    },
    onAnsweredFromMemory: () => metrics.claimsFromMemory.add(),
  };
  const soldOut = new SoldOutMemory(models, gate, logger);
  const redisDoubt = new RedisDoubt(logger);
  watchForLostWrites(redis, redisDoubt);
  // The reconciler needs the claim service (to settle winners) and the claim service asks the
  // reconciler to check a coupon while Redis is in doubt: bound once both exist.
  const late: { reconciler?: Reconciler } = {};
  const recheckSoldOut = (coupon: CouponDefinition) => late.reconciler?.checkNow(coupon) ?? Promise.resolve(false);
  const claims = new ClaimService(catalog, gate, writer, logger, { ...claimOptions, openingDraw, redisDoubt, recheckSoldOut }, soldOut);
  const DbClaims = settings.claimStrategy === 'db-lock' ? DbLockClaims : DbAtomicClaims;
  const dbClaims = dbStock && new DbClaims(catalog, models, dbStock, logger, claimOptions);
  const reconciler = new Reconciler(catalog, gate, claims, models, logger, {
    intervalMs: settings.reconcileIntervalMs,
    pendingGraceMs: Math.max(settings.requestTimeoutMs * 2, 3000),
    onRepair: (kind, count) => metrics.repairs.inc({ kind }, count),
    onPass: ({ ok, oldestPendingMs }) => {
      metrics.reconcilePasses.inc({ result: ok ? 'ok' : 'failed' });
      metrics.oldestPendingSeconds.set(oldestPendingMs / 1000);
    },
    onCouponFailed: (step) => metrics.reconcileCouponFailures.inc({ step }),
    onVerified: (startedAt) => redisDoubt.verified(startedAt),
  });
  late.reconciler = reconciler;
  // Coupon changes reach every instance: a changed definition or a returned unit ends the
  // sold-out shortcut and is shown to watchers (the stock feed publishes the new figures).
  const changes = new CouponChanges(publisher, subscriber, catalog, models, logger);
  catalog.on('changed', (couponId) => {
    soldOut.forget(couponId);
    // Publishes the new figures and re-arms this instance's status timer (a new startsAt or endsAt).
    stockFeed.statusMayHaveChanged(couponId);
  });
  changes.onChange(({ couponId }) => soldOut.forget(couponId));
  const audit = new AuditLog(models, logger);
  const redisGate = dbStock ? undefined : gate;
  // Cancels and redeems have a limit of their own: a cancel moves stock, and a script repeating them must not.
  const lifecycleLimiter = new ClaimRateLimiter(limiterRedis, {
    perUser: settings.lifecycleRatePerUser,
    perIp: 0,
    keyPrefix: 'ratelimit:lifecycle',
    onFallback: () => metrics.dependencyErrors.inc({ dependency: 'redis' }),
  });
  const lifecycle = new IssuanceLifecycle(models, catalog, redisGate, audit, {
    onReturned: async (couponId) => {
      stockFeed.changed(couponId);
      await changes.announce({ couponId, definition: false });
    },
  }, logger, lifecycleLimiter);
  const services: Services = {
    authenticator: new Authenticator(settings.jwtSecret),
    catalog,
    claims: dbClaims ?? claims,
    reader,
    stockFeed,
    admin: new CouponAdmin(catalog, redisGate, changes, models, audit, logger),
    lifecycle,
    directory: new CouponDirectory(models, catalog, reader),
    audit,
    reads: new ReadLimiter({ costPerIp: settings.readCostPerIp, costPerUser: settings.readCostPerUser, newDocumentsPerIp: settings.newDocumentsPerIp }),
    webhooks: events.registry,
    openingDraw,
  };
  // Redis keeps what is live: an ENDED coupon's state goes once nothing can change it.
  const endedStates = new EndedStates(models, gate, logger, {
    retentionMs: settings.endedStateRetentionMs,
    intervalMs: Math.max(1000, Math.min(settings.endedStateRetentionMs, 60_000)),
    onRetired: (count) => metrics.repairs.inc({ kind: 'ended_state_removed' }, count),
  });

  let stopHealthWatch: (() => Promise<void>) | undefined;
  return {
    services,
    metrics,
    stockFeed,
    writer,
    reconciler,
    dbClaims,
    startBackground: () => {
      // Dependency health as gauges, for alerts that do not wait for a failing claim.
      stopHealthWatch = watchHealth(connections.redis, connections.mongo, (health) => {
        metrics.dependencyUp.set({ dependency: 'redis' }, health.redis === 'up' ? 1 : 0);
        metrics.dependencyUp.set({ dependency: 'mongodb' }, health.mongodb === 'up' ? 1 : 0);
      });
      events.start();
      // Re-validation runs from here on; the subscription is retried until it succeeds.
      changes.start().catch((error: Error) => logger.error({ err: error.message }, 'coupon changes did not start'));
      if (dbClaims) return dbClaims.start(settings.reconcileIntervalMs);
      reconciler.start();
      soldOut.start();
      endedStates.start();
      openingDraw.start();
    },
    stopBackground: async () => {
      await Promise.all([reconciler.stop(), soldOut.stop(), endedStates.stop(), changes.stop(), stopHealthWatch?.(), events.stop(), openingDraw.stop()]);
      await dbClaims?.stop();
    },
  };
}
