/**
 * Whether Redis may have lost acknowledged claim writes, so that its "no unit is yours" answers
 * (SOLD_OUT, ENDED) must be checked in MongoDB before a client hears them.
 *
 * Redis replicates asynchronously: a replica promoted by a failover (Cluster or Sentinel), or a
 * server restarted from an older snapshot, can lack the last wins it acknowledged. Those winners'
 * issuances are in MongoDB, but Redis no longer lists them, and once the lost units have been
 * handed out again its state reads "sold out": a lost winner who claims again would hear SOLD_OUT
 * while holding a live coupon. The script cannot see it (its state is consistent, just older), so
 * the service watches for the events that can lose writes: any connection to Redis lost and made
 * again, a cluster node failing or leaving the slot map.
 *
 * From such an event until the reconciler has compared every open coupon with MongoDB and found
 * it in agreement (or rebuilt it), the claim path treats every SOLD_OUT and ENDED reply as
 * suspect: one indexed MongoDB read by (coupon, user), and ALREADY_ISSUED when MongoDB holds the
 * user's issuance; a SOLD_OUT also has its coupon reconciled at once (Reconciler#checkNow), so a
 * lost raise or returned unit is restored from MongoDB before the claim is answered. The doubt is
 * per service, not per coupon: the events do not say which shard lost what, and the cost is one
 * read per such answer, and one reconciliation per coupon per 250 ms, for a few reconciler intervals.
 */
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/client';

export class RedisDoubt {
  /** When the latest event that may have lost writes happened (ms); 0 while Redis is trusted. */
  private since = 0;

  constructor(private readonly logger: Logger) {}

  /** Whether SOLD_OUT and ENDED replies from Redis must be checked in MongoDB now. */
  get active(): boolean {
    return this.since > 0;
  }

  /** Redis may have lost writes just now (a reconnection, a failover). */
  raise(reason: string): void {
    if (this.since === 0) this.logger.warn({ reason }, 'redis may have lost acknowledged writes: sold-out and ended answers are checked in mongodb until the reconciler agrees');
    this.since = Date.now();
  }

  /**
   * A reconciler pass that began at `startedAt` found every open coupon in agreement with MongoDB
   * (or rebuilt it from MongoDB). It clears only a doubt raised before the pass began.
   */
  verified(startedAt: number): void {
    if (this.since === 0 || startedAt <= this.since) return;
    this.since = 0;
    this.logger.warn('redis agrees with mongodb again: sold-out and ended answers come from redis alone');
  }
}

/** Raises the doubt on the client's events that can mean lost writes. */
export function watchForLostWrites(client: RedisClient, doubt: RedisDoubt): void {
  // A standalone or Sentinel connection: lost, then made again (to a restarted or promoted server).
  client.on('reconnecting', () => doubt.raise('reconnecting'));
  // A cluster: a node failing (its replica may be promoted), or leaving the slot map.
  client.on('node error', () => doubt.raise('cluster node error'));
  client.on('-node', () => doubt.raise('cluster node removed'));
}
