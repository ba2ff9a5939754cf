/**
 * Background repair of drift between Redis and MongoDB, on start-up and periodically.
 * Today it settles reservations whose MongoDB write was never confirmed (the service crashed,
 * or MongoDB failed and the client was told SERVICE_UNAVAILABLE): each one is written to
 * MongoDB (or settled in MongoDB's favour), so stock is never silently lost.
 */
import type { Logger } from 'pino';
import type { ClaimService } from './claim-service';
import type { CouponCatalog } from './coupon-catalog';
import type { CouponGate } from './coupon-gate';

const RECENTLY_ENDED_MS = 24 * 60 * 60 * 1000;

export interface ReconcilerOptions {
  intervalMs: number;
  /** A reservation younger than this may still be in its claim's own write; leave it alone. */
  pendingGraceMs: number;
  onRepair?: (kind: string, count: number) => void;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly catalog: CouponCatalog,
    private readonly gate: CouponGate,
    private readonly claims: ClaimService,
    private readonly logger: Logger,
    private readonly options: ReconcilerOptions,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.runOnce()
        .catch((error: Error) => this.logger.warn({ err: error.message }, 'reconciliation pass failed; will retry'))
        .finally(() => {
          this.running = undefined;
          if (this.timer) this.timer = setTimeout(tick, this.options.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every coupon that takes claims or did within the last day. */
  async runOnce(): Promise<void> {
    for (const coupon of await this.catalog.listEndingAfter(new Date(Date.now() - RECENTLY_ENDED_MS))) {
      await this.gate.ensureLoaded(coupon);
      const pending = await this.gate.pendingWinners(coupon.id, this.options.pendingGraceMs);
      if (pending.length === 0) continue;
      const kinds = { durable: 0, adopted: 0, revoked: 0 };
      for (const { userId, winner } of pending) {
        const settlement = await this.claims.settle(coupon, userId, winner);
        kinds[settlement.kind] += 1;
      }
      this.logger.warn({ couponId: coupon.id, ...kinds }, 'settled reservations whose mongodb write was unconfirmed');
      for (const [kind, count] of Object.entries(kinds)) if (count) this.options.onRepair?.(`pending_${kind}`, count);
    }
  }
}
