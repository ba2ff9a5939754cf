/**
 * Artillery hooks shared by the scenarios: a distinct user (its own HS256 token, signed with the
 * JWT_SECRET the runner passes) for every virtual user, claim outcomes counted as metrics, and a
 * graphql-ws subscriber that watches a coupon's stock the way a coupon page does.
 *
 * Environment: JWT_SECRET (the service's), COUPON_ID (the coupon under load),
 * WATCH_MAX_SECONDS (how long a subscriber waits for SOLD_OUT; default 30), LOAD_EPOCH_MS
 * (a common zero for `timeline.*` times across workers; default: when this module loaded).
 */
import { randomUUID } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

/** Answers later than this break the contract ("within 3 s"), whatever the client's own timeout. */
const CONTRACT_ANSWER_MS = 3000;

const secret = process.env.JWT_SECRET;
if (!secret) throw new Error('JWT_SECRET must be set to the service\'s token key');
const key = new TextEncoder().encode(secret);
const epoch = Number(process.env.LOAD_EPOCH_MS ?? Date.now());
/** Milliseconds since the run's zero: the arrival and answer timelines give the real rates. */
const sinceEpoch = () => Date.now() - epoch;

const STOCK_CHANGED = `subscription Stock($couponId: ID!) {
  stockChanged(couponId: $couponId) { couponId remaining totalQuantity status }
}`;

/** beforeScenario: this virtual user is a new person with a token of its own. */
export async function signUserToken(context, events) {
  const sub = `load-${randomUUID()}`;
  context.vars.userId = sub;
  context.vars.couponId = process.env.COUPON_ID;
  context.vars.token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(key);
  events.emit('histogram', 'timeline.arrival_ms', sinceEpoch());
}

/**
 * afterResponse of a claim: counts `claim.<STATUS>` or `claim.error.<CODE>` with its latency
 * (`claim.latency_ms.<outcome>`), and answers over 3 s.
 */
export function recordClaimOutcome(request, response, context, events, next) {
  events.emit('histogram', 'timeline.answer_ms', sinceEpoch());
  const total = response.timings?.phases?.total;
  if (typeof total === 'number' && total > CONTRACT_ANSWER_MS) events.emit('counter', 'claim.answered_after_3s', 1);
  let body;
  try {
    body = typeof response.body === 'string' ? JSON.parse(response.body) : response.body;
  } catch {
    events.emit('counter', 'claim.error.unparseable_body', 1);
    return next();
  }
  const status = body?.data?.claimCoupon?.status;
  const outcome = status ?? `error.${body?.errors?.[0]?.extensions?.code ?? `http_${response.statusCode}`}`;
  events.emit('counter', `claim.${outcome}`, 1);
  // From the virtual user's send, including any wait for a pooled connection (where an overloaded
  // service's backlog shows, as in a load balancer's queue); Artillery's http.response_time leaves
  // that wait out. Per outcome too: a win waits for MongoDB, a SOLD_OUT does not.
  if (typeof total === 'number') {
    events.emit('histogram', 'claim.latency_ms', total);
    events.emit('histogram', `claim.latency_ms.${outcome}`, total);
  }
  return next();
}

/**
 * A function step: subscribes to `stockChanged(couponId)` and stays until SOLD_OUT arrives (or
 * WATCH_MAX_SECONDS pass). Counts updates, times the first event (the contract sends the current
 * state at once) and the wait for SOLD_OUT, and flags a `remaining` that went back up.
 */
export async function watchStockUntilSoldOut(context, events) {
  const url = `${context.vars.target.replace(/^http/, 'ws')}/graphql`;
  const maxMs = Number(process.env.WATCH_MAX_SECONDS ?? 30) * 1000;
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  const started = performance.now();
  let first = true;
  let lastRemaining = Infinity;
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        events.emit('counter', 'stock.watch_timed_out', 1);
        stop();
        resolve();
      }, maxMs);
      const stop = client.subscribe(
        { query: STOCK_CHANGED, variables: { couponId: process.env.COUPON_ID } },
        {
          next: ({ data, errors }) => {
            if (errors?.length) events.emit('counter', `stock.error.${errors[0].extensions?.code ?? 'unknown'}`, 1);
            const update = data?.stockChanged;
            if (!update) return;
            events.emit('counter', 'stock.updates', 1);
            if (first) {
              first = false;
              events.emit('histogram', 'stock.first_event_ms', performance.now() - started);
            }
            if (update.remaining > lastRemaining) events.emit('counter', 'stock.remaining_went_up', 1);
            lastRemaining = update.remaining;
            if (update.status === 'SOLD_OUT') {
              events.emit('counter', 'stock.sold_out_seen', 1);
              events.emit('histogram', 'stock.watched_until_sold_out_ms', performance.now() - started);
              clearTimeout(timer);
              stop();
              resolve();
            }
          },
          error: (error) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(`subscription failed: ${JSON.stringify(error)}`));
          },
          complete: () => {
            clearTimeout(timer);
            resolve();
          },
        },
      );
    });
  } catch (error) {
    events.emit('counter', 'stock.error.subscription', 1);
    throw error;
  } finally {
    await client.dispose();
  }
}
