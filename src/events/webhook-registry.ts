/**
 * The admin's side of webhooks: register, list, delete, and queue given-up events again. The
 * secret ("whsec_" + base64 of 32 random bytes) is shown once, in the answer to createWebhook.
 */
import { randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import { badUserInput, notFound, toClientError, withDeadline } from '../errors';
import { checkTarget, urlProblem, type Resolver } from './address-guard';
import { EVENT_TYPES, type EventType } from './event-model';
import type { EventModels, WebhookDocument } from './event-store';

const DEADLINE_MS = 2000;
const EPOCH = new Date(0);

/** A webhook as the Webhook type resolves it. */
export interface WebhookView {
  id: string;
  url: string;
  events: EventType[];
  createdAt: Date;
  /** Only in createWebhook's answer. */
  secret: string | null;
  pendingDeliveries: number;
  failedDeliveries: number;
}

export interface WebhookRegistryOptions {
  allowPrivateNetworks: boolean;
  resolve?: Resolver;
  clock?: () => Date;
}

export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export class WebhookRegistry {
  constructor(
    private readonly events: EventModels,
    private readonly options: WebhookRegistryOptions,
  ) {}

  async create(url: string, types: readonly string[]): Promise<WebhookView> {
    const problem = urlProblem(url);
    if (problem) throw badUserInput(problem, 'url');
    const events = [...new Set(types)].filter((t): t is EventType => (EVENT_TYPES as readonly string[]).includes(t));
    if (events.length === 0 || events.length !== new Set(types).size) throw badUserInput('events must name one or more event types', 'events');
    return this.guard(async () => {
      // Within the deadline: a resolver that does not answer is SERVICE_UNAVAILABLE, not a hang.
      const check = await checkTarget(new URL(url), this.options.allowPrivateNetworks, this.options.resolve);
      if (!check.ok) throw badUserInput(`url refused: ${check.reason}`, 'url');
      const doc = await this.events.Webhook.create({ url, events, secret: newSecret(), createdAt: this.options.clock?.() ?? new Date() });
      return { ...viewOf(doc.toObject() as WebhookDocument, 0, 0), secret: doc.secret };
    });
  }

  async list(): Promise<WebhookView[]> {
    return this.guard(async () => {
      const hooks = await this.events.Webhook.find().sort({ createdAt: 1 }).lean<WebhookDocument[]>();
      return Promise.all(
        hooks.map(async (hook) => {
          const [pending, failed] = await Promise.all([
            this.events.Delivery.countDocuments({ webhookId: hook._id, state: 'pending' }),
            this.events.Delivery.countDocuments({ webhookId: hook._id, state: 'failed' }),
          ]);
          return viewOf(hook, pending, failed);
        }),
      );
    });
  }

  /** Idempotent: true whether or not the webhook was still registered. Its deliveries go with it. */
  async delete(id: string): Promise<boolean> {
    const _id = webhookObjectId(id);
    return this.guard(async () => {
      await this.events.Webhook.deleteOne({ _id });
      await this.events.Delivery.deleteMany({ webhookId: _id });
      return true;
    });
  }

  /** Queues the given-up deliveries of a webhook again, from a fresh retry schedule; how many. */
  async redeliver(webhookId: string): Promise<number> {
    const _id = webhookObjectId(webhookId);
    return this.guard(async () => {
      if (!(await this.events.Webhook.exists({ _id }))) throw notFound('webhook');
      const result = await this.events.Delivery.updateMany(
        { webhookId: _id, state: 'failed' },
        { $set: { state: 'pending', attempts: 0, nextAttemptAt: this.options.clock?.() ?? new Date(), leaseUntil: EPOCH, leaseToken: null } },
      );
      return result.modifiedCount;
    });
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(work(), DEADLINE_MS, 'webhook change');
    } catch (error) {
      const clientError = toClientError(error);
      throw clientError === error ? error : Object.assign(clientError, { originalError: error });
    }
  }
}

function webhookObjectId(id: string): Types.ObjectId {
  if (!/^[0-9a-f]{24}$/i.test(id)) throw badUserInput('malformed webhook id', 'id');
  return new Types.ObjectId(id);
}

const viewOf = (hook: WebhookDocument, pending: number, failed: number): WebhookView => ({
  id: hook._id.toHexString(),
  url: hook.url,
  events: hook.events,
  createdAt: hook.createdAt,
  secret: null,
  pendingDeliveries: pending,
  failedDeliveries: failed,
});
