/**
 * An open-model claim generator with no dependency beyond Node and the service's own token code:
 * users arrive at the times given (whatever the service's pace, as people do in a drop), each a
 * distinct user with a token signed in advance, each claims once over a pool of keep-alive
 * connections (as a load balancer holds them), and a share press again a moment after their
 * answer. Latency runs from the user's arrival, so a wait for a pooled connection counts, as an
 * overloaded service's backlog does in a load balancer's queue (no coordinated omission).
 *
 * Used by load:compare (the drop), load:smoke and load:capacity. Traffic goes only to `url`.
 */
import http from 'node:http';
import type { Authenticator } from '../../src/access/auth';

const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id sequence } } }';

export interface ClaimRecord {
  /** ms since the run's zero: when the user pressed, and when the answer came (null: none within the client timeout). */
  sent: number;
  answered: number | null;
  /** A ClaimStatus, `error.<CODE>`, `http_<status>`, `timeout` or `transport.<code>`. */
  outcome: string;
  httpStatus: number | null;
  /** The second press of a user. */
  again: boolean;
}

export interface OpenModelRun {
  url: string;
  couponId: string;
  auth: Authenticator;
  /** Arrival offsets in ms from the run's zero, one per distinct user. */
  arrivals: number[];
  /** Percent of users who press again `againAfterMs` after their first answer. */
  retryPercent?: number;
  againAfterMs?: number;
  /** Pooled keep-alive connections. */
  connections?: number;
  /** Client timeout per claim. */
  timeoutMs?: number;
  /** Prefix of the generated user ids. */
  userPrefix?: string;
  /**
   * Claims sent before the run's zero on another coupon, over the same pooled connections: a
   * service in production is warm (code compiled, connections open) when a drop begins.
   */
  warmup?: { couponId: string; claims: number };
}

/** Evenly spaced arrivals: `users` within `seconds`, starting at `fromMs`. */
export function evenArrivals(users: number, seconds: number, fromMs = 0): number[] {
  return Array.from({ length: users }, (_, i) => fromMs + (i * seconds * 1000) / users);
}

export async function runOpenModel(run: OpenModelRun): Promise<ClaimRecord[]> {
  const connections = run.connections ?? 100;
  const timeoutMs = run.timeoutMs ?? 10_000;
  const retryPercent = run.retryPercent ?? 0;
  const againAfterMs = run.againAfterMs ?? 500;
  const prefix = run.userPrefix ?? `load-${Date.now().toString(36)}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const target = new URL('/graphql', run.url);
  // Signed before the clock starts: signing is the user's device's work, not the drop's.
  const tokens = await Promise.all(run.arrivals.map((_, i) => run.auth.issue(`${prefix}-${i}`, { expiresInSeconds: 3600 })));
  const bodyFor = (couponId: string) => JSON.stringify({ query: CLAIM, variables: { couponId }, operationName: 'Claim' });
  const body = bodyFor(run.couponId);
  if (run.warmup) await warmUp(target, agent, run.auth, bodyFor(run.warmup.couponId), run.warmup.claims, connections, prefix);
  const records: ClaimRecord[] = [];
  const inFlight = new Set<Promise<void>>();
  // A fixed share of users, spread over the run, press again.
  const pressesAgain = (i: number) => retryPercent > 0 && (i * retryPercent) % 100 < retryPercent;

  const zero = performance.now() + 50;
  const now = () => performance.now() - zero;
  const claim = (token: string, sent: number, again: boolean): Promise<ClaimRecord> =>
    new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: string, httpStatus: number | null, answered: number | null) => {
        if (settled) return;
        settled = true;
        const record = { sent, answered, outcome, httpStatus, again };
        records.push(record);
        resolve(record);
      };
      const request = http.request(target, {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) },
      });
      // From the user's press: waiting for a pooled connection is part of the wait.
      const timer = setTimeout(() => {
        finish('timeout', null, null);
        request.destroy();
      }, Math.max(1, timeoutMs - (now() - sent)));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          clearTimeout(timer);
          finish(outcomeOf(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')), response.statusCode ?? null, now());
        });
        response.on('error', () => undefined);
      });
      request.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        finish(`transport.${error.code ?? 'error'}`, null, now());
      });
      request.end(body);
    });

  const user = async (i: number) => {
    const first = await claim(tokens[i]!, run.arrivals[i]!, false);
    if (!pressesAgain(i) || first.answered === null) return;
    await new Promise((resolve) => setTimeout(resolve, againAfterMs));
    await claim(tokens[i]!, now(), true);
  };

  // One scheduler tick every few ms starts every user whose time has come.
  const order = run.arrivals.map((_, i) => i).sort((a, b) => run.arrivals[a]! - run.arrivals[b]!);
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const t = now();
      while (next < order.length && run.arrivals[order[next]!]! <= t) {
        const started = user(order[next]!);
        inFlight.add(started);
        void started.finally(() => inFlight.delete(started));
        next += 1;
      }
      if (next < order.length) setTimeout(tick, 2);
      else resolve();
    };
    setTimeout(tick, Math.max(0, -now()));
  });
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  agent.destroy();
  return records;
}

/** `claims` claims by distinct users, `connections` at a time, answers ignored. */
async function warmUp(target: URL, agent: http.Agent, auth: Authenticator, body: string, claims: number, connections: number, prefix: string): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < claims) {
      const token = auth.issue(`${prefix}-warmup-${next++}`, { expiresInSeconds: 3600 });
      await new Promise<void>((resolve) => {
        const request = http.request(target, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) },
        });
        request.setTimeout(10_000, () => request.destroy());
        request.on('response', (response) => {
          response.resume();
          response.on('end', resolve);
          response.on('error', () => resolve());
        });
        request.on('error', () => resolve());
        request.end(body);
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, claims) }, worker));
}

function outcomeOf(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { data?: { claimCoupon?: { status?: string } }; errors?: Array<{ extensions?: { code?: string } }> };
    const claimed = body.data?.claimCoupon?.status;
    if (claimed) return claimed;
    const code = body.errors?.[0]?.extensions?.code;
    if (code) return `error.${code}`;
  } catch {
    // not JSON: named by its HTTP status below
  }
  return `http_${status}`;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);
  return { p50: at(50), p95: at(95), p99: at(99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

/** Latency of an answered claim, from the user's press. */
export const latencyOf = (r: ClaimRecord): number | null => (r.answered === null ? null : r.answered - r.sent);

export function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}
