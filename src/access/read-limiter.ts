/**
 * Budgets for every GraphQL request over HTTP, reads included, measured in cost rather than
 * count: per client address (an IPv6 /56, as for claims) and per user when a token is presented.
 *
 * - Cost is the request limits' own measure (GraphQL Armor's formula, `operationCost`): a claim
 *   about 50, one coupon with a few fields about 10, a page of 15 full coupons 210. Each request
 *   is charged its operation's cost once the document is known; an address or user past its
 *   budget for the current second is refused (RATE_LIMITED, HTTP 429) from then on, an address
 *   before its body is even read.
 * - A document the service has not parsed before (a miss of Apollo's parsed-document cache) is
 *   the expensive case: parsing and validating it costs about ten times executing a known one.
 *   Each address has a separate, small budget of new documents per second; past it, a new document
 *   is refused before it is parsed, and charged NEW_DOCUMENT_COST against the address's budget.
 *
 * Counted in this instance's memory, not in Redis: a read must not cost a Redis round trip to be
 * counted, and a flood is refused on the instance it reaches. With N instances behind a balancer
 * an address may spend up to N budgets; the defaults allow for that (docs/operations.md).
 *
 * Counts are per fixed one-second window (as the claim limits', src/access/rate-limiter.ts), in
 * one map per window that is dropped whole when the second is over. Hand-written rather than
 * rate-limiter-flexible's memory limiter (which this module used before): that one arms a timer
 * for every new key and answers through a promise and a result object, and every request (every
 * claim, with a new user each) is charged here: its check and two counts cost 6–7 µs of CPU per
 * request, these about 1.5 µs (`npx tsx load/capacity/read-limiter-cost.ts`, both measured in
 * the same run).
 */
import { addressKey, untilNextWindow, windowOf } from './rate-limiter';

/**
 * What a new document refused over its budget charges its address, in cost units: a thirtieth of
 * the default per-address budget, so an address that keeps sending new documents past its budget
 * spends the rest of its second within about 30 of them, and is then refused before its requests'
 * bodies are even read (the cheapest refusal there is).
 */
export const NEW_DOCUMENT_COST = 1000;

export interface ReadLimiterOptions {
  /** Cost units per second from one address; 0 turns the limit off. */
  costPerIp: number;
  /** Cost units per second for one user (a valid token's `sub`); 0 turns the limit off. */
  costPerUser: number;
  /** Documents not parsed before, per second from one address; 0 turns the limit off. */
  newDocumentsPerIp: number;
}

/** Milliseconds until the caller may try again; undefined when admitted. */
export type Refusal = number | undefined;

/** Points per key in fixed one-second windows (the claim limits' windows), in memory. */
class WindowCounter {
  private window = -1;
  private counts = new Map<string, number>();

  constructor(
    /** The budget per key per window. */
    readonly points: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds `points` to the key's count; refused (until the next window) once the count is past the budget. */
  consume(key: string, points: number): Refusal {
    const now = this.roll();
    const count = (this.counts.get(key) ?? 0) + points;
    this.counts.set(key, count);
    return count > this.points ? untilNextWindow(now) : undefined;
  }

  /** Refused when the key is already past its budget in this window; counts nothing. */
  spent(key: string): Refusal {
    const now = this.roll();
    return (this.counts.get(key) ?? 0) > this.points ? untilNextWindow(now) : undefined;
  }

  private roll(): number {
    const now = this.now();
    const window = windowOf(now);
    if (window !== this.window) {
      this.window = window;
      this.counts = new Map();
    }
    return now;
  }
}

export class ReadLimiter {
  private readonly perIp?: WindowCounter;
  private readonly perUser?: WindowCounter;
  private readonly newDocuments?: WindowCounter;

  constructor(options: ReadLimiterOptions, now: () => number = Date.now) {
    if (options.costPerIp > 0) this.perIp = new WindowCounter(options.costPerIp, now);
    if (options.costPerUser > 0) this.perUser = new WindowCounter(options.costPerUser, now);
    if (options.newDocumentsPerIp > 0) this.newDocuments = new WindowCounter(options.newDocumentsPerIp, now);
  }

  get enabled(): boolean {
    return Boolean(this.perIp || this.perUser || this.newDocuments);
  }

  /** Before anything of a request is read: refused when its address has spent this second's budget. Charges nothing. */
  spent(clientIp: string): Refusal {
    return this.perIp?.spent(addressKey(clientIp));
  }

  /** Charges one request's cost to its address and user; refused when either budget is past. */
  charge(clientIp: string, userId: string | undefined, cost: number): Refusal {
    const points = Math.max(1, Math.ceil(cost));
    const ip = this.perIp?.consume(addressKey(clientIp), points);
    const user = userId === undefined ? undefined : this.perUser?.consume(userId, points);
    return ip === undefined && user === undefined ? undefined : Math.max(ip ?? 0, user ?? 0);
  }

  /** A document this instance has not parsed before, from `clientIp`: refused past the address's budget of new documents. */
  newDocument(clientIp: string): Refusal {
    const key = addressKey(clientIp);
    const refused = this.newDocuments?.consume(key, 1);
    if (refused !== undefined) this.perIp?.consume(key, NEW_DOCUMENT_COST);
    return refused;
  }
}
