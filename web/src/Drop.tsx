/**
 * One coupon's drop: live stock, a countdown on the server's clock, and the claim button with the
 * retry etiquette of lib/claim-policy.ts. A coupon with an opening draw says so honestly: entries,
 * not a race, in its first openingDrawMs; a press then is held until the draw; the outcome says
 * whether the draw chose you; and the page shows how anyone checks the draw (commitment, seed).
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import { useClient, useQuery, useSubscription } from 'urql';
import { attemptOf } from './api';
import type { CouponStatus } from './gql/graphql';
import { createClaimer, type ClaimEnd, type Decision } from './lib/claim-policy';
import { drawPhase, windowWords, type DrawPhase } from './lib/draw';
import { formatRemaining, ServerClock } from './lib/server-clock';
import { DRAW_OUTCOME_WORDS, errorWords, OUTCOME_WORDS, RETRY_WORDS } from './lib/words';
import { ClaimMutation, CouponQuery, StockSubscription } from './operations';

interface Won {
  sequence: number;
  issuedAt: string;
}

type ClaimView =
  | { kind: 'idle' }
  /** `entry`: pressed while the draw's window was open, so the answer waits for the draw. */
  | { kind: 'sending'; entry: boolean }
  | { kind: 'waiting'; until: number; why: string }
  | { kind: 'done'; end: ClaimEnd<Won | undefined>; entry: boolean };

export function Drop({ couponId, user, onClaimed }: { couponId: string; user: string | undefined; onClaimed: () => void }) {
  const signedIn = Boolean(user);
  const client = useClient();
  const [{ data, error }, reread] = useQuery({ query: CouponQuery, variables: { id: couponId } });
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
  const coupon = data?.coupon;
  // The server's word that the coupon has opened beats this page's estimate of its clock, which can
  // be a few ms behind when the push arrives.
  const opened = (live?.status ?? coupon?.status ?? 'SCHEDULED') !== 'SCHEDULED';
  const phaseAt = (at: number): DrawPhase => {
    if (!coupon) return 'none';
    const startsAt = Date.parse(coupon.startsAt);
    return drawPhase(startsAt, coupon.openingDrawMs, opened ? Math.max(at, startsAt) : at);
  };
  const phase = phaseAt(now);
  // The seed is revealed once the draw is done, shortly after the window closes: read the coupon
  // again until it is there (every second; nothing is pushed for it), for a minute at most (the
  // draw answers its entrants within 3 s; later, the section says it is still to come).
  const closesAt = coupon ? Date.parse(coupon.startsAt) + coupon.openingDrawMs : 0;
  const awaitingSeed = phase === 'closed' && !coupon?.drawSeed && now < closesAt + SEED_WAIT_MS;
  useEffect(() => {
    if (!awaitingSeed) return;
    const read = () => reread({ requestPolicy: 'network-only' });
    const timer = setInterval(read, 1000);
    return () => clearInterval(timer);
  }, [awaitingSeed, reread]);

  // A coupon read that failed for a passing reason (busy, rate-limited, no connection) is tried
  // again after 2 to 3 s, rather than leaving the page on the error for good.
  const readFailed = Boolean(error && !data) && TRANSIENT.has((error?.graphQLErrors[0]?.extensions?.code as string | undefined) ?? 'NETWORK');
  useEffect(() => {
    if (!readFailed) return;
    const timer = setTimeout(() => reread({ requestPolicy: 'network-only' }), 2000 + Math.random() * 1000);
    return () => clearTimeout(timer);
  }, [readFailed, error, reread]);

  const press = async () => {
    if (claimer.busy) return;
    // On the server's clock: a press in the window is an entry, and its request is held until the draw.
    // Read the clock now, not at the last tick (up to 250 ms old).
    const entry = phaseAt(clock.now()) === 'open';
    setClaim({ kind: 'sending', entry });
    const end = await claimer.claim();
    setClaim({ kind: 'done', end, entry });
    if (end.decision.kind === 'won') onClaimed();
  };

  if (error && !data) return <section className="card error">{errorWords((error.graphQLErrors[0]?.extensions?.code as string) ?? 'NETWORK')}</section>;
  if (!data) return <section className="card muted">Loading…</section>;
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
        {statusLine(status, phase)}
      </p>
      {phase !== 'none' ? <DrawNote phase={phase} startsAt={startsAt} openingDrawMs={coupon.openingDrawMs} /> : null}
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
        {buttonLabel(signedIn, status, claim, now, phase)}
      </button>
      <ClaimMessage claim={claim} now={now} drawAt={startsAt + coupon.openingDrawMs} />
      {phase !== 'none' ? <DrawCheck coupon={coupon} user={user} /> : null}
      {stock.error ? <p className="muted">Live updates interrupted; reconnecting…</p> : null}
    </section>
  );
}

/** Failures of the coupon's read that another read may not meet. */
const TRANSIENT = new Set(['SERVICE_UNAVAILABLE', 'RATE_LIMITED', 'NETWORK', 'INTERNAL_SERVER_ERROR']);

/** How long after the draw's window the page keeps reading the coupon for the revealed seed. */
const SEED_WAIT_MS = 60_000;

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

function statusLine(status: CouponStatus, phase: DrawPhase): string {
  if (phase === 'open' && status === 'ACTIVE') return 'Entries open: the draw decides';
  if (phase === 'closed' && status === 'ACTIVE') return 'Open now: first come, first served after the draw';
  return STATUS_LINE[status];
}

const clockTime = (ms: number) => new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** What the draw is, in words: before the opening, while entries are open, after. */
function DrawNote({ phase, startsAt, openingDrawMs }: { phase: DrawPhase; startsAt: number; openingDrawMs: number }) {
  const closesAt = startsAt + openingDrawMs;
  const text =
    phase === 'before'
      ? `Entries open at ${clockTime(startsAt)}; the draw decides among everyone who presses in ${windowWords(openingDrawMs)}. It is not a race: when you press within that window does not matter, and pressing twice is one entry.`
      : phase === 'open'
        ? `Entries are open until ${clockTime(closesAt)}: press now to enter. The draw decides among everyone who pressed in ${windowWords(openingDrawMs)}.`
        : `The draw among everyone who pressed in ${windowWords(openingDrawMs)} closed at ${clockTime(closesAt)}; what it left goes first come, first served.`;
  return (
    <p className="draw-note" data-testid="draw-note" data-phase={phase}>
      {text} <a href="#check-draw">How to check this draw</a>
    </p>
  );
}

/** How anyone checks the draw: the commitment (public before), the seed (public after), the commands. */
function DrawCheck({ coupon, user }: { coupon: { id: string; drawCommitment?: string | null; drawSeed?: string | null; drawEntrants?: number | null }; user: string | undefined }) {
  const seed = coupon.drawSeed ?? '<drawSeed>';
  const who = user ?? '<your user id>';
  return (
    <section className="draw-check" id="check-draw" data-testid="draw-check">
      <h2>How to check this draw</h2>
      <p>
        The draw's secret seed was fixed before the drop, and its SHA-256, the commitment, was published then, so nobody could pick
        the seed after seeing who entered. Each entrant's rank key is HMAC-SHA256(key = the seed, message = the user id), in lowercase
        hex; the lowest keys win.
      </p>
      <dl>
        <dt>Commitment</dt>
        <dd>
          <code data-testid="draw-commitment">{coupon.drawCommitment ?? '—'}</code>
        </dd>
        <dt>Seed</dt>
        <dd>
          {coupon.drawSeed ? <code data-testid="draw-seed">{coupon.drawSeed}</code> : <span data-testid="draw-seed-pending">revealed once the draw is done</span>}
        </dd>
        {coupon.drawEntrants != null ? (
          <>
            <dt>Entrants</dt>
            <dd data-testid="draw-entrants">{coupon.drawEntrants}</dd>
          </>
        ) : null}
      </dl>
      <p>Your own rank key, and the seed against the commitment, in the service's repository or with OpenSSL alone:</p>
      <pre data-testid="draw-commands">
        {`npm run draw:verify -- --key ${seed} ${who}\n`}
        {`printf '%s' '${who}' | openssl dgst -sha256 -mac HMAC -macopt hexkey:${seed}\n`}
        {`printf '%s' '${seed}' | xxd -r -p | sha256sum   # must print the commitment`}
      </pre>
      <p className="muted">
        Auditors download every entrant in ranking order (admin: /admin/coupons/{coupon.id}/draw.csv) and check it all with{' '}
        <code>npm run draw:verify -- draw.csv &lt;seed&gt; &lt;commitment&gt;</code>; the repository's docs/fairness.md explains each step.
      </p>
    </section>
  );
}

function buttonLabel(signedIn: boolean, status: CouponStatus, claim: ClaimView, now: number, phase: DrawPhase): string {
  if (claim.kind === 'sending') return claim.entry ? 'Entered: waiting for the draw…' : 'Claiming…';
  if (claim.kind === 'waiting') return `Retrying in ${formatRemaining(claim.until - now)}`;
  if (claim.kind === 'done' && claim.end.decision.kind === 'won') return 'It\u2019s yours';
  if (status === 'SOLD_OUT') return 'Sold out';
  if (status === 'ENDED') return 'Ended';
  if (status === 'SCHEDULED') return 'Not open yet';
  if (!signedIn) return phase === 'before' || phase === 'open' ? 'Sign in to enter' : 'Sign in to claim';
  if (phase === 'open') return 'Enter the draw';
  return 'Claim';
}

function ClaimMessage({ claim, now, drawAt }: { claim: ClaimView; now: number; drawAt: number }) {
  if (claim.kind === 'sending' && claim.entry) {
    return (
      <p className="message" data-testid="claim-message" data-outcome="ENTERED">
        Entered: the draw decides at {clockTime(drawAt)}. Keep this page open; the answer comes by itself.
      </p>
    );
  }
  if (claim.kind === 'waiting') return <p className="message" data-testid="claim-message">{RETRY_WORDS[claim.why]} in {formatRemaining(claim.until - now)}…</p>;
  if (claim.kind !== 'done') return null;
  const decision: Decision = claim.end.decision;
  const text = decision.kind === 'stop' ? errorWords(decision.code) : claim.entry ? (DRAW_OUTCOME_WORDS[decision.status] ?? OUTCOME_WORDS[decision.status]) : OUTCOME_WORDS[decision.status];
  const won = claim.end.value;
  return (
    <p className={`message message-${decision.kind}`} data-testid="claim-message" data-outcome={decision.kind === 'stop' ? decision.code : decision.status}>
      {text}
      {won ? ` Coupon #${won.sequence}, won at ${new Date(won.issuedAt).toLocaleTimeString()}.` : ''}
      {claim.entry && decision.kind !== 'stop' ? (
        <>
          {' '}
          <a href="#check-draw" data-testid="check-draw-link">
            How to check this draw
          </a>
        </>
      ) : null}
    </p>
  );
}
