/**
 * The events part of the services graph (contract v3, webhooks): the registry the resolvers
 * call, the relay that turns stored changes into deliveries, and the worker that sends them, all
 * on the events' own MongoDB connection and wired to the metrics.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../metrics';
import { registerModels } from '../mongo/models';
import { DeliveryWorker } from '../events/delivery-worker';
import { EventRelay } from '../events/event-relay';
import { ensureEventIndexes, registerEventModels } from '../events/event-store';
import { HttpSender } from '../events/http-sender';
import { DEFAULT_RETRY_DELAYS_MS } from '../events/retry-schedule';
import { WebhookRegistry } from '../events/webhook-registry';
import { PeriodicTask } from '../support/periodic-task';
import type { Connections } from './connections';
import type { ServiceSettings } from './settings';

const RELAY_INTERVAL_MS = 500;
const RELAY_LEASE_MS = 10_000;
const POLL_INTERVAL_MS = 250;
const COUNT_INTERVAL_MS = 5000;

/**
 * Deliveries yield to claims while a drop is on: 20 claims in the last half second or so, or any
 * claim that took 100 ms or more (claims already slow: MongoDB or the CPU is the bottleneck, and
 * the deliveries' share of them would come out of the claims').
 */
const BUSY_CLAIMS = 20;
const SLOW_CLAIM_SECONDS = 0.1;
const BUSY_WINDOW_MS = 500;

/** Counts claims in a sliding window: whether claims are busy right now. */
class ClaimPressure {
  private counts = [0, 0];
  private slow = [false, false];
  private windowStart = Date.now();

  claimed(seconds: number): void {
    this.roll();
    this.counts[1] += 1;
    if (seconds >= SLOW_CLAIM_SECONDS) this.slow[1] = true;
  }

  busy(): boolean {
    this.roll();
    return this.counts[0]! + this.counts[1]! >= BUSY_CLAIMS || this.slow[0]! || this.slow[1]!;
  }

  private roll(): void {
    const now = Date.now();
    const windows = Math.floor((now - this.windowStart) / BUSY_WINDOW_MS);
    if (windows <= 0) return;
    this.counts = windows === 1 ? [this.counts[1]!, 0] : [0, 0];
    this.slow = windows === 1 ? [this.slow[1]!, false] : [false, false];
    this.windowStart += windows * BUSY_WINDOW_MS;
  }
}

export interface EventsPart {
  registry: WebhookRegistry;
  relay: EventRelay;
  worker: DeliveryWorker;
  /** Told of every claim answered and how long it took: deliveries yield while claims are busy. */
  claimed(seconds: number): void;
  start(): void;
  stop(): Promise<void>;
}

export function buildEvents(settings: ServiceSettings, connections: Pick<Connections, 'eventsMongo'>, metrics: Metrics, logger: Logger): EventsPart {
  const log = logger.child({ part: 'webhooks' });
  const { webhooks: options } = settings;
  const pressure = new ClaimPressure();
  const yieldToClaims = () => pressure.busy();
  const models = registerModels(connections.eventsMongo);
  const eventModels = registerEventModels(connections.eventsMongo);
  const registry = new WebhookRegistry(eventModels, { allowPrivateNetworks: options.allowPrivateNetworks });
  const sender = new HttpSender({ timeoutMs: options.attemptTimeoutMs, allowPrivateNetworks: options.allowPrivateNetworks }, options.concurrency);
  const worker = new DeliveryWorker(eventModels, sender, log, {
    concurrency: options.concurrency,
    // The attempt's own limit, and margin for writing its outcome.
    leaseMs: options.attemptTimeoutMs + 20_000,
    pollIntervalMs: POLL_INTERVAL_MS,
    retryDelaysMs: options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
    onAttempt: (outcome) => metrics.webhookAttempts.inc({ outcome }),
    onDelivered: (lagSeconds) => metrics.webhookLagSeconds.observe(Math.max(0, lagSeconds)),
    yieldToClaims,
  });
  const relay = new EventRelay(models, eventModels, log, { leaseMs: RELAY_LEASE_MS, yieldToClaims, onPublished: () => worker.wake() });
  const relayTask = new PeriodicTask(async (signal) => void (await relay.pass(signal)), log, 'event relay pass failed; will retry');
  const countTask = new PeriodicTask(
    async () => {
      const [pending, failed, oldest] = await Promise.all([
        eventModels.Delivery.countDocuments({ state: 'pending' }),
        eventModels.Delivery.countDocuments({ state: 'failed' }),
        eventModels.Delivery.findOne({ state: 'pending' }, { occurredAt: 1 }).sort({ occurredAt: 1 }).lean(),
      ]);
      metrics.webhookPending.set(pending);
      metrics.webhookFailed.set(failed);
      metrics.webhookOldestPendingSeconds.set(oldest ? Math.max(0, (Date.now() - oldest.occurredAt.getTime()) / 1000) : 0);
    },
    log,
    'webhook delivery count failed; will retry',
  );
  let indexed: Promise<void> | undefined;
  return {
    registry,
    relay,
    worker,
    claimed: (seconds) => pressure.claimed(seconds),
    start: () => {
      indexed = ensureEventIndexes(eventModels, models.Issuance, models.Coupon)
        .catch((error: Error) => log.error({ err: error.message }, 'could not create the events indexes; relaying without them'))
        .then(() => {
          relayTask.start(RELAY_INTERVAL_MS);
          worker.start();
          countTask.start(COUNT_INTERVAL_MS);
        });
    },
    stop: async () => {
      await indexed;
      await Promise.all([relayTask.stop(), worker.stop(), countTask.stop()]);
      await relay.release();
      sender.close();
    },
  };
}
