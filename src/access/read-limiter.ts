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
 * Counted in this instance's memory (rate-limiter-flexible's RateLimiterMemory), not in Redis: a
 * read must not cost a Redis round trip to be counted, and a flood is refused on the instance it
 * reaches. With N instances behind a balancer an address may spend up to N budgets; the defaults
 * allow for that (docs/operations.md).
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { addressKey } from './rate-limiter';

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

const WINDOW_SECONDS = 1;

export class ReadLimiter {
  private readonly perIp?: RateLimiterMemory;
  private readonly perUser?: RateLimiterMemory;
  private readonly newDocuments?: RateLimiterMemory;

  constructor(options: ReadLimiterOptions) {
    if (options.costPerIp > 0) this.perIp = new RateLimiterMemory({ keyPrefix: 'read:ip', points: options.costPerIp, duration: WINDOW_SECONDS });
    if (options.costPerUser > 0) this.perUser = new RateLimiterMemory({ keyPrefix: 'read:user', points: options.costPerUser, duration: WINDOW_SECONDS });
    if (options.newDocumentsPerIp > 0) {
      this.newDocuments = new RateLimiterMemory({ keyPrefix: 'read:new', points: options.newDocumentsPerIp, duration: WINDOW_SECONDS });
    }
  }

  get enabled(): boolean {
    return Boolean(this.perIp || this.perUser || this.newDocuments);
  }

  /** Before anything of a request is read: refused when its address has spent this second's budget. Charges nothing. */
  async spent(clientIp: string): Promise<Refusal> {
    if (!this.perIp) return undefined;
    const state = await this.perIp.get(addressKey(clientIp));
    return state && state.consumedPoints > this.perIp.points ? Math.max(1, state.msBeforeNext) : undefined;
  }

  /** Charges one request's cost to its address and user; refused when either budget is past. */
  async charge(clientIp: string, userId: string | undefined, cost: number): Promise<Refusal> {
    const points = Math.max(1, Math.ceil(cost));
    const [ip, user] = await Promise.all([consume(this.perIp, addressKey(clientIp), points), userId === undefined ? undefined : consume(this.perUser, userId, points)]);
    return ip === undefined && user === undefined ? undefined : Math.max(ip ?? 0, user ?? 0);
  }

  /** A document this instance has not parsed before, from `clientIp`: refused past the address's budget of new documents. */
  async newDocument(clientIp: string): Promise<Refusal> {
    const key = addressKey(clientIp);
    const refused = await consume(this.newDocuments, key, 1);
    if (refused !== undefined) await consume(this.perIp, key, NEW_DOCUMENT_COST);
    return refused;
  }
}

async function consume(limiter: RateLimiterMemory | undefined, key: string, points: number): Promise<Refusal> {
  if (!limiter) return undefined;
  try {
    await limiter.consume(key, points);
    return undefined;
  } catch (error) {
    if (error instanceof RateLimiterRes) return Math.max(1, error.msBeforeNext);
    throw error;
  }
}
