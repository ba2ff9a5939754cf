/**
 * One coupon's drop: live stock, a countdown on the server's clock, and the claim button with the
 * retry etiquette of lib/claim-policy.ts.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { useClient, useQuery, useSubscription } from 'urql';
import { attemptOf } from './api';
import type { CouponStatus } from './gql/graphql';
import { createClaimer, type ClaimEnd, type Decision } from './lib/claim-policy';
import { formatRemaining, ServerClock } from './lib/server-clock';
import { errorWords, OUTCOME_WORDS, RETRY_WORDS } from './lib/words';
import { ClaimMutation, CouponQuery, StockSubscription } from './operations';

interface Won {
  sequence: number;
  issuedAt: string;
}

type ClaimView =
  | { kind: 'idle' }
  | { kind: 'sending' }
  | { kind: 'waiting'; until: number; why: string }
  | { kind: 'done'; end: ClaimEnd<Won | undefined> };

export function Drop({ couponId, signedIn, onClaimed }: { couponId: string; signedIn: boolean; onClaimed: () => void }) {
  const client = useClient();
  const [{ data, error }] = useQuery({ query: CouponQuery, variables: { id: couponId } });
  const clock = useMemo(() => new ServerClock(), []);
  // Updates rendered: the browser tests read it to count events per second.
  const updates = useRef(0);
  const [stock] = useSubscription({ query: StockSubscription, variables: { couponId } }, (_, next) => {
    clock.observe(next.stockChanged.serverTime);
    updates.current++;
    return next;
  });
  const live = stock.data?.stockChanged;

  // The countdown's tick: four times a second is smooth enough for whole seconds.
  const [now, setNow] = useState(() => clock.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(clock.now()), 250);
    return () => clearInterval(timer);
  }, [clock]);

  const [claim, setClaim] = useState<ClaimView>({ kind: 'idle' });
  const claimer = useMemo(
    () =>
      createClaimer<Won | undefined>({
        send: async () => {
          const result = await client.mutation(ClaimMutation, { couponId }).toPromise();
          if (result.error || !result.data) return { attempt: result.error ? attemptOf(result.error) : { kind: 'error' } };
          const { status, issuance } = result.data.claimCoupon;
          return { attempt: { kind: 'outcome', status }, value: issuance ? { sequence: issuance.sequence, issuedAt: issuance.issuedAt } : undefined };
        },
        onRetry: (decision) => setClaim({ kind: 'waiting', until: Date.now() + decision.delayMs, why: decision.why }),
      }),
    [client, couponId],
  );
  const press = async () => {
    if (claimer.busy) return;
    setClaim({ kind: 'sending' });
    const end = await claimer.claim();
    setClaim({ kind: 'done', end });
    if (end.decision.kind === 'won') onClaimed();
  };

  if (error && !data) return <section className="card error">{errorWords((error.graphQLErrors[0]?.extensions?.code as string) ?? 'NETWORK')}</section>;
  if (!data) return <section className="card muted">Loading…</section>;
  const coupon = data.coupon;
  if (!coupon) return <section className="card error">{errorWords('NOT_FOUND')}</section>;

  const remaining = live?.remaining ?? coupon.remaining;
  const total = live?.totalQuantity ?? coupon.totalQuantity;
  const startsAt = Date.parse(coupon.startsAt);
  const endsAt = coupon.endsAt ? Date.parse(coupon.endsAt) : undefined;
  const status = effectiveStatus(live?.status ?? coupon.status, now, startsAt, endsAt, remaining);
  const won = claim.kind === 'done' && claim.end.decision.kind === 'won';

  return (
    <section className="card drop">
      <h1 data-testid="coupon-name">{coupon.name}</h1>
      <p className={`status status-${status.toLowerCase()}`} data-testid="status">
        {STATUS_LINE[status]}
      </p>
      {status === 'SCHEDULED' ? (
        <p className="countdown">
          Opens in <b data-testid="countdown">{formatRemaining(startsAt - now)}</b>
          <span className="muted"> · {new Date(startsAt).toLocaleString()} {clock.synced ? '(server time)' : '(this device\u2019s time until the server answers)'}</span>
        </p>
      ) : null}
      {status === 'ACTIVE' && endsAt ? (
        <p className="muted">
          Ends in <span data-testid="ends-in">{formatRemaining(endsAt - now)}</span>
        </p>
      ) : null}
      <div className="stock">
        <meter min={0} max={total} value={remaining} low={total * 0.2} optimum={total} />
        <span data-testid="stock" data-updates={updates.current}>
          {remaining} of {total} left
        </span>
      </div>
      <button type="button" className="claim" data-testid="claim-button" disabled={!signedIn || status !== 'ACTIVE' || claim.kind === 'sending' || claim.kind === 'waiting' || won} onClick={press}>
        {buttonLabel(signedIn, status, claim, now)}
      </button>
      <ClaimMessage claim={claim} now={now} />
      {stock.error ? <p className="muted">Live updates interrupted; reconnecting…</p> : null}
    </section>
  );
}

/** The pushed status, moved on by the server's clock while the push is on its way. */
function effectiveStatus(pushed: CouponStatus, now: number, startsAt: number, endsAt: number | undefined, remaining: number): CouponStatus {
  if (pushed === 'ENDED' || (endsAt !== undefined && now >= endsAt)) return 'ENDED';
  if (pushed === 'SCHEDULED' && now >= startsAt) return remaining > 0 ? 'ACTIVE' : 'SOLD_OUT';
  if (pushed === 'ACTIVE' && remaining <= 0) return 'SOLD_OUT';
  return pushed;
}

const STATUS_LINE: Record<CouponStatus, string> = {
  SCHEDULED: 'Not open yet',
  ACTIVE: 'Open now: first come, first served',
  SOLD_OUT: 'Sold out',
  ENDED: 'This drop has ended',
};

function buttonLabel(signedIn: boolean, status: CouponStatus, claim: ClaimView, now: number): string {
  if (claim.kind === 'sending') return 'Claiming…';
  if (claim.kind === 'waiting') return `Retrying in ${formatRemaining(claim.until - now)}`;
  if (claim.kind === 'done' && claim.end.decision.kind === 'won') return 'It\u2019s yours';
  if (status === 'SOLD_OUT') return 'Sold out';
  if (status === 'ENDED') return 'Ended';
  if (status === 'SCHEDULED') return 'Not open yet';
  if (!signedIn) return 'Sign in to claim';
  return 'Claim';
}

function ClaimMessage({ claim, now }: { claim: ClaimView; now: number }) {
  if (claim.kind === 'waiting') return <p className="message" data-testid="claim-message">{RETRY_WORDS[claim.why]} in {formatRemaining(claim.until - now)}…</p>;
  if (claim.kind !== 'done') return null;
  const decision: Decision = claim.end.decision;
  const text = decision.kind === 'stop' ? errorWords(decision.code) : OUTCOME_WORDS[decision.status];
  const won = claim.end.value;
  return (
    <p className={`message message-${decision.kind}`} data-testid="claim-message" data-outcome={decision.kind === 'stop' ? decision.code : decision.status}>
      {text}
      {won ? ` Coupon #${won.sequence}, won at ${new Date(won.issuedAt).toLocaleTimeString()}.` : ''}
    </p>
  );
}
