/**
 * Sends the pending deliveries, on every instance, without sending one twice in the normal case.
 *
 * Leasing: each instance picks a few due deliveries of a webhook, then stamps them in one
 * updateMany with its own random `leaseToken` and `leaseUntil` (now + the lease), on the condition
 * that they are still pending and unleased; it then reads back those that carry its token. MongoDB
 * applies the update document by document, atomically, so each delivery is won by one instance.
 * The lease outlasts an attempt (the 10 s limit and some margin); the outcome is written on the
 * condition that the token is still this instance's, and clears it. An instance killed mid-attempt
 * leaves a lease that expires, and another instance sends the event again: at least once.
 *
 * Bounds: at most `concurrency` attempts in flight per webhook on this instance, so a slow
 * receiver ties up its own slots and no other's, and deliveries use their own MongoDB pool.
 *
 * Order: the final event of an issuance (REDEEMED or CANCELLED) is not sent while its ISSUED
 * delivery to the same webhook is pending; it waits for it, and is given up on with it.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { issuanceEventId } from './event-model';
import { deliveryId, type DeliveryDocument, type EventModels, type WebhookDocument } from './event-store';
import { nextAttemptAt } from './retry-schedule';
import type { AttemptOutcome, AttemptResult, HttpSender } from './http-sender';

const EPOCH = new Date(0);
const WEBHOOK_CACHE_MS = 1000;
/** A final event whose ISSUED is still pending looks again after this long at the least. */
const ORDER_WAIT_MS = 1000;

export interface DeliveryWorkerOptions {
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  retryDelaysMs: readonly number[];
  onAttempt?: (outcome: AttemptOutcome, seconds: number) => void;
  /** Seconds from the event to its acknowledgement. */
  onDelivered?: (lagSeconds: number) => void;
  onGivenUp?: () => void;
  /**
   * True while claims are busy (a drop): deliveries then keep to one attempt in flight per
   * webhook, so their MongoDB and CPU work cannot crowd out claims; they catch up afterwards.
   */
  yieldToClaims?: () => boolean;
  /**
   * Wraps one attempt: the place for a tracing span around a webhook delivery (the attempt's
   * webhook, event and outcome are at hand). Default: the attempt itself.
   */
  around?: <T>(info: { webhookId: string; eventId: string; type: string; attempt: number }, send: () => Promise<T>) => Promise<T>;
}

export class DeliveryWorker {
  private readonly inFlight = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private webhooks: { at: number; list: WebhookDocument[] } = { at: 0, list: [] };
  private passing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(
    private readonly events: EventModels,
    private readonly sender: HttpSender,
    private readonly logger: Logger,
    private readonly options: DeliveryWorkerOptions,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.options.pollIntervalMs).unref();
    this.wake();
  }

  /** Stops leasing, waits for the attempts in flight (at most the attempt time limit). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.passing;
    await Promise.all([...this.running]);
  }

  /** Looks for due deliveries now (new events published, a slot freed). */
  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (error) {
          this.logger.warn({ err: (error as Error).message }, 'webhook delivery pass failed; will retry');
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.passing = undefined));
  }

  /** Attempts in flight on this instance (for tests and metrics). */
  busy(): number {
    return [...this.inFlight.values()].reduce((sum, n) => sum + n, 0);
  }

  private async pass(): Promise<void> {
    for (const webhook of await this.currentWebhooks()) {
      if (this.stopped) return;
      const id = webhook._id.toHexString();
      const limit = this.options.yieldToClaims?.() ? 1 : this.options.concurrency;
      const free = limit - (this.inFlight.get(id) ?? 0);
      if (free <= 0) continue;
      for (const delivery of await this.lease(webhook, free)) this.run(webhook, delivery);
    }
  }

  private async currentWebhooks(): Promise<WebhookDocument[]> {
    if (Date.now() - this.webhooks.at > WEBHOOK_CACHE_MS) {
      this.webhooks = { at: Date.now(), list: await this.events.Webhook.find().lean<WebhookDocument[]>() };
    }
    return this.webhooks.list;
  }

  private async lease(webhook: WebhookDocument, count: number): Promise<DeliveryDocument[]> {
    const now = this.clock();
    const due = await this.events.Delivery.find(
      { webhookId: webhook._id, state: 'pending', nextAttemptAt: { $lte: now }, leaseUntil: { $lte: now } },
      { _id: 1 },
    )
      .sort({ nextAttemptAt: 1, stage: 1 })
      .limit(count)
      .lean();
    if (due.length === 0) return [];
    const ids = due.map((d) => d._id);
    const token = randomUUID();
    await this.events.Delivery.updateMany(
      { _id: { $in: ids }, state: 'pending', leaseUntil: { $lte: now } },
      { $set: { leaseToken: token, leaseUntil: new Date(now.getTime() + this.options.leaseMs) } },
    );
    return this.events.Delivery.find({ _id: { $in: ids }, leaseToken: token }).lean<DeliveryDocument[]>();
  }

  private run(webhook: WebhookDocument, delivery: DeliveryDocument): void {
    const id = webhook._id.toHexString();
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    const attempt = this.attempt(webhook, delivery)
      .catch((error: Error) => this.logger.warn({ err: error.message, eventId: delivery.eventId }, 'webhook delivery attempt not recorded; its lease will expire and it is sent again'))
      .finally(() => {
        this.running.delete(attempt);
        const left = (this.inFlight.get(id) ?? 1) - 1;
        if (left > 0) this.inFlight.set(id, left);
        else this.inFlight.delete(id);
        // Refill once half the slots are free: leases go out in groups, not one query per event.
        if (left <= this.options.concurrency / 2) this.wake();
      });
    this.running.add(attempt);
  }

  private async attempt(webhook: WebhookDocument, delivery: DeliveryDocument): Promise<void> {
    const webhookId = webhook._id.toHexString();
    const mine = { _id: delivery._id, leaseToken: delivery.leaseToken };
    if (delivery.stage === 2) {
      const earlier = await this.events.Delivery.findById(deliveryId(webhookId, issuanceEventId(delivery.subject, 'ISSUANCE_ISSUED')), { state: 1, nextAttemptAt: 1 }).lean();
      if (earlier?.state === 'pending') {
        const after = Math.max(earlier.nextAttemptAt.getTime(), this.clock().getTime() + ORDER_WAIT_MS);
        await this.events.Delivery.updateOne(mine, { $set: { leaseToken: null, leaseUntil: EPOCH, nextAttemptAt: new Date(after) } });
        return;
      }
      if (earlier?.state === 'failed') {
        await this.events.Delivery.updateOne(mine, { $set: { state: 'failed', leaseToken: null, leaseUntil: EPOCH, lastError: 'the issuance was given up on at an earlier event' } });
        this.options.onGivenUp?.();
        return;
      }
    }

    const started = performance.now();
    const info = { webhookId, eventId: delivery.eventId, type: delivery.type, attempt: delivery.attempts + 1 };
    const send = () => this.sender.send({ id: webhookId, url: webhook.url, secret: webhook.secret }, { eventId: delivery.eventId, body: delivery.body });
    const result: AttemptResult = this.options.around ? await this.options.around(info, send) : await send();
    this.options.onAttempt?.(result.outcome, (performance.now() - started) / 1000);
    const now = this.clock();

    if (result.outcome === 'delivered') {
      await this.events.Delivery.updateOne(mine, { $set: { state: 'delivered', deliveredAt: now, leaseToken: null, lastError: null }, $inc: { attempts: 1 } });
      this.options.onDelivered?.((now.getTime() - delivery.occurredAt.getTime()) / 1000);
      if (delivery.stage === 1 && (webhook.events.includes('ISSUANCE_REDEEMED') || webhook.events.includes('ISSUANCE_CANCELLED'))) {
        // The issuance's final event, if it waits for this one, may go now.
        const next = ['ISSUANCE_REDEEMED', 'ISSUANCE_CANCELLED'] as const;
        await this.events.Delivery.updateMany(
          { _id: { $in: next.map((type) => deliveryId(webhookId, issuanceEventId(delivery.subject, type))) }, state: 'pending', leaseToken: null },
          { $set: { nextAttemptAt: now } },
        );
      }
      return;
    }
    const failures = delivery.attempts + 1;
    const next = nextAttemptAt(failures, now, this.options.retryDelaysMs);
    this.logger.debug({ webhookId, eventId: delivery.eventId, attempt: failures, outcome: result.outcome, detail: result.detail }, 'webhook delivery failed');
    if (next) {
      await this.events.Delivery.updateOne(mine, { $set: { nextAttemptAt: next, leaseToken: null, leaseUntil: EPOCH, lastError: result.detail }, $inc: { attempts: 1 } });
    } else {
      await this.events.Delivery.updateOne(mine, { $set: { state: 'failed', leaseToken: null, leaseUntil: EPOCH, lastError: result.detail }, $inc: { attempts: 1 } });
      this.options.onGivenUp?.();
      this.logger.warn({ webhookId, eventId: delivery.eventId, attempts: failures, detail: result.detail }, 'webhook delivery given up after the retry period');
    }
  }
}
