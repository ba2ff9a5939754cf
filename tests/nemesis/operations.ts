/**
 * The operations a nemesis run draws from, as a table: each kind has a weight and a `plan` that
 * builds one request from what the run knows so far (its coupons, the issuances it was given), or
 * nothing when it has nothing to act on. To add an operation (the opening draw, webhooks, ...),
 * add an entry to OPERATION_KINDS; teach tests/nemesis/checker.ts what its answers promise.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { CANCEL, END, REDEEM, UPDATE } from '../support/admin';
import { CREATE, errorCode, gql } from '../support/graphql';
import { clientAgent } from '../integration/faults/contract';
import type { Answer, StockEvent, WatcherRecord } from './history';
import type { Random } from './random';

/** The client gives up on a request after this long and records it as unanswered. */
export const CLIENT_TIMEOUT_MS = 10_000;

const ISSUANCE = 'id couponId userId sequence status orderId';
export const CLAIM_DOC = `mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { ${ISSUANCE} } } }`;
const CREATE_DRAW_DOC = `mutation Create($input: CreateCouponInput!) { createCoupon(input: $input) { id totalQuantity remaining status } }`;
/** Units of a drawn coupon: fewer than the users who enter, so that the draw has losers. */
export const DRAW_UNITS = 3;
/** drawClaims are aimed up to this long after a draw's window (claims of winners and losers afterwards). */
export const DRAW_CLAIMS_AFTER_MS = 1500;
export const STOCK_DOC = `subscription Stock($couponId: ID!) { stockChanged(couponId: $couponId) { couponId remaining totalQuantity status serverTime } }`;

export interface KnownCoupon {
  id: string;
  /** The last totalQuantity an update was answered with. */
  totalQuantity: number;
  ended: boolean;
}

/** A coupon created with an opening draw (kept apart: only drawClaim acts on it). */
export interface KnownDraw {
  id: string;
  startsAt: number;
  openingDrawMs: number;
}

export interface KnownIssuance {
  id: string;
  couponId: string;
  userId: string;
}

/** What the run knows, and how to act: shared by every operation kind. */
export interface RunModel {
  readonly rng: Random;
  readonly users: string[];
  readonly coupons: KnownCoupon[];
  readonly issuances: Map<string, KnownIssuance>;
  readonly draws: KnownDraw[];
  readonly profile: { couponsLive: number; totalQuantity: number; weights?: Record<string, number>; draws?: number };
  token(user: string): string;
  adminToken(): string;
  /** Opens a stock watcher on an instance; resolves with the first event or a failure. */
  watch(couponId: string, instance: number): Promise<Answer>;
}

export interface PlannedOperation {
  couponId: string;
  user: string;
  request: { issuanceId?: string; orderId?: string; totalQuantity?: number };
  /** Sends the request to one instance and returns what it answered. */
  send(url: string, instance: number): Promise<Answer>;
  /** Wait this long before sending (the request's start is taken after it): aims a claim at a draw's window. */
  delayMs?: number;
  /** What the run learns from the answer (new coupons, issuances, totals). */
  learn?(answer: Answer): void;
}

export interface OperationKindSpec {
  kind: string;
  weight: number;
  plan(model: RunModel): PlannedOperation | undefined;
}

/** A GraphQL request with the client's own timeout: no answer within CLIENT_TIMEOUT_MS is a failure. */
export async function call(url: string, query: string, variables: Record<string, unknown>, token: string | undefined, pick: (data: any) => Answer): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Answer>((resolve) => (timer = setTimeout(() => resolve({ failure: `no answer within ${CLIENT_TIMEOUT_MS} ms` }), CLIENT_TIMEOUT_MS)));
  try {
    return await Promise.race([
      gql(url, query, variables, token, clientAgent).then(
        (reply) => (reply.errors ? { code: errorCode(reply) ?? `HTTP ${reply.status}` } : pick(reply.data)),
        (error: Error) => ({ failure: error.message }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Coupons not ended (a create still in flight counts, so that no more are created meanwhile). */
const liveCoupons = (model: RunModel) => model.coupons.filter((coupon) => !coupon.ended);
/** Mostly a live coupon, sometimes an ended one (its claims must answer ENDED); only created ones. */
const someCoupon = (model: RunModel) => {
  const created = model.coupons.filter((coupon) => coupon.id);
  const live = created.filter((coupon) => !coupon.ended);
  return live.length && model.rng.chance(0.95) ? model.rng.pick(live) : created.length ? model.rng.pick(created) : undefined;
};
const issuanceAnswer = (field: string) => (data: any): Answer => ({ status: data[field].status, issuance: data[field] });
const couponAnswer = (field: string) => (data: any): Answer => ({ status: data[field].status, remaining: data[field].remaining, coupon: data[field] });

export const OPERATION_KINDS: OperationKindSpec[] = [
  {
    kind: 'create',
    weight: 1000, // drawn whenever fewer coupons are live than the profile wants; otherwise never
    plan(model) {
      if (liveCoupons(model).length >= model.profile.couponsLive) return undefined;
      const totalQuantity = model.profile.totalQuantity;
      const placeholder: KnownCoupon = { id: '', totalQuantity, ended: false };
      model.coupons.push(placeholder); // reserved at once, so that concurrent workers do not create more
      return {
        couponId: '',
        user: 'operator',
        request: { totalQuantity },
        send: (url) => call(url, CREATE, { input: { name: `nemesis ${model.coupons.length}`, totalQuantity } }, model.adminToken(), couponAnswer('createCoupon')),
        learn(answer) {
          if (answer.coupon) placeholder.id = answer.coupon.id;
          else model.coupons.splice(model.coupons.indexOf(placeholder), 1);
        },
      };
    },
  },
  {
    kind: 'claim',
    weight: 50,
    plan(model) {
      const coupon = someCoupon(model);
      if (!coupon?.id) return undefined;
      const user = model.rng.pick(model.users);
      return {
        couponId: coupon.id,
        user,
        request: {},
        send: (url) =>
          call(url, CLAIM_DOC, { couponId: coupon.id }, model.token(user), (data) => ({
            status: data.claimCoupon.status,
            remaining: data.claimCoupon.remaining,
            issuance: data.claimCoupon.issuance ?? undefined,
          })),
        learn(answer) {
          if (answer.issuance) model.issuances.set(answer.issuance.id, { id: answer.issuance.id, couponId: coupon.id, userId: user });
        },
      };
    },
  },
  {
    kind: 'cancel',
    weight: 10,
    plan(model) {
      const issuance = someIssuance(model);
      if (!issuance) return undefined;
      // Mostly its holder, sometimes the operator (an admin may cancel any issuance).
      const user = model.rng.chance(0.85) ? issuance.userId : 'operator';
      return {
        couponId: issuance.couponId,
        user,
        request: { issuanceId: issuance.id },
        send: (url) => call(url, CANCEL, { issuanceId: issuance.id }, user === 'operator' ? model.adminToken() : model.token(user), issuanceAnswer('cancelIssuance')),
      };
    },
  },
  {
    kind: 'redeem',
    weight: 10,
    plan(model) {
      const issuance = someIssuance(model);
      if (!issuance) return undefined;
      // Two possible orders per issuance: repeats of the same order and conflicting ones both happen.
      const orderId = `order-${issuance.id.slice(-6)}-${model.rng.int(0, 1)}`;
      return {
        couponId: issuance.couponId,
        user: issuance.userId,
        request: { issuanceId: issuance.id, orderId },
        send: (url) => call(url, REDEEM, { issuanceId: issuance.id, orderId }, model.token(issuance.userId), issuanceAnswer('redeemIssuance')),
      };
    },
  },
  {
    kind: 'update',
    weight: 5,
    plan(model) {
      const coupon = someCoupon(model);
      if (!coupon?.id) return undefined;
      // Raise or lower by a few units; a total below the units taken must be refused (BAD_USER_INPUT).
      const totalQuantity = Math.max(1, coupon.totalQuantity + model.rng.pick([-3, -2, -1, 1, 2, 3, 4]));
      return {
        couponId: coupon.id,
        user: 'operator',
        request: { totalQuantity },
        send: (url) => call(url, UPDATE, { id: coupon.id, input: { totalQuantity } }, model.adminToken(), couponAnswer('updateCoupon')),
        learn(answer) {
          if (answer.coupon) coupon.totalQuantity = answer.coupon.totalQuantity;
        },
      };
    },
  },
  {
    kind: 'end',
    weight: 1,
    plan(model) {
      const live = liveCoupons(model).filter((coupon) => coupon.id);
      if (!live.length) return undefined;
      const coupon = model.rng.pick(live);
      return {
        couponId: coupon.id,
        user: 'operator',
        request: {},
        send: (url) => call(url, END, { id: coupon.id }, model.adminToken(), couponAnswer('endCoupon')),
        learn(answer) {
          if (answer.status) coupon.ended = true;
        },
      };
    },
  },
  {
    // A coupon with an opening draw, a little in the future: one at a time, up to profile.draws per history.
    kind: 'createDraw',
    weight: 1000,
    plan(model) {
      const now = Date.now();
      if (model.draws.length >= (model.profile.draws ?? 0)) return undefined;
      if (model.draws.some((draw) => !draw.id || draw.startsAt + draw.openingDrawMs + DRAW_CLAIMS_AFTER_MS > now)) return undefined;
      const totalQuantity = DRAW_UNITS;
      const placeholder: KnownDraw = { id: '', startsAt: now + model.rng.int(1200, 2000), openingDrawMs: model.rng.int(300, 1000) };
      model.draws.push(placeholder);
      const input = { name: `nemesis draw ${model.draws.length}`, totalQuantity, startsAt: new Date(placeholder.startsAt).toISOString(), openingDrawMs: placeholder.openingDrawMs };
      return {
        couponId: '',
        user: 'operator',
        request: { totalQuantity },
        send: (url) => call(url, CREATE_DRAW_DOC, { input }, model.adminToken(), couponAnswer('createCoupon')),
        learn(answer) {
          if (answer.coupon) placeholder.id = answer.coupon.id;
          else model.draws.splice(model.draws.indexOf(placeholder), 1);
        },
      };
    },
  },
  {
    // A claim on a drawn coupon, aimed at an instant from just before its startsAt to a while after the window.
    kind: 'drawClaim',
    weight: 80,
    plan(model) {
      const now = Date.now();
      const open = model.draws.filter((draw) => draw.id && draw.startsAt + draw.openingDrawMs + DRAW_CLAIMS_AFTER_MS > now);
      if (!open.length) return undefined;
      const draw = model.rng.pick(open);
      // Mostly inside the window (entries), else just before it (NOT_STARTED) or after it (the outcome).
      const closes = draw.startsAt + draw.openingDrawMs;
      const where = model.rng.int(0, 9);
      const target = where < 6 ? model.rng.int(draw.startsAt, closes - 1) : where < 7 ? model.rng.int(draw.startsAt - 300, draw.startsAt - 1) : model.rng.int(closes, closes + DRAW_CLAIMS_AFTER_MS);
      const user = model.rng.pick(model.users);
      return {
        couponId: draw.id,
        user,
        request: {},
        delayMs: Math.max(0, target - now),
        send: (url) =>
          call(url, CLAIM_DOC, { couponId: draw.id }, model.token(user), (data) => ({
            status: data.claimCoupon.status,
            remaining: data.claimCoupon.remaining,
            issuance: data.claimCoupon.issuance ?? undefined,
          })),
      };
    },
  },
  {
    kind: 'subscribe',
    weight: 3,
    plan(model) {
      const coupon = someCoupon(model);
      if (!coupon?.id) return undefined;
      return { couponId: coupon.id, user: 'anonymous', request: {}, send: (_url, instance) => model.watch(coupon.id, instance) };
    },
  },
];

function someIssuance(model: RunModel): KnownIssuance | undefined {
  if (!model.issuances.size) return undefined;
  return model.rng.pick([...model.issuances.values()]);
}

/** A WebSocket client for one watcher: connects on subscribe, never retries, prints nothing. */
export function watcherClient(baseUrl: string): Client {
  return createClient({ url: `${baseUrl.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, onNonLazyError: () => undefined });
}

/**
 * One stockChanged subscription, recorded: its events with the server's time, whether it completed,
 * and any error. `first` resolves with the first event (the current state) or the failure.
 */
export function recordWatcher(client: Client, record: WatcherRecord): { first: Promise<Answer>; stop(): void } {
  let settle!: (answer: Answer) => void;
  const first = new Promise<Answer>((resolve) => (settle = resolve));
  const timer = setTimeout(() => settle({ failure: `no first event within ${CLIENT_TIMEOUT_MS} ms` }), CLIENT_TIMEOUT_MS);
  const done = (error?: string) => {
    record.end = Date.now();
    if (error) record.error = error;
    else record.completed = true;
    clearTimeout(timer);
    settle(error ? { failure: error } : { status: 'COMPLETED' });
  };
  const stop = client.subscribe<{ stockChanged: { remaining: number; totalQuantity: number; status: string; serverTime: string } }>(
    { query: STOCK_DOC, variables: { couponId: record.couponId } },
    {
      next: (result) => {
        const event = result.data?.stockChanged;
        if (result.errors) return done(result.errors.map((e) => e.extensions?.code ?? e.message).join(', '));
        if (!event) return;
        const recorded: StockEvent = { remaining: event.remaining, totalQuantity: event.totalQuantity, status: event.status, serverTime: Date.parse(event.serverTime), receivedAt: Date.now() };
        record.events.push(recorded);
        if (record.events.length === 1) {
          clearTimeout(timer);
          settle({ status: event.status, remaining: event.remaining });
        }
      },
      error: (error) => done(error instanceof Error ? error.message : JSON.stringify(error)),
      complete: () => done(),
    },
  );
  return {
    first,
    stop: () => {
      if (!record.completed && !record.error) record.end = Date.now();
      clearTimeout(timer);
      stop();
    },
  };
}
