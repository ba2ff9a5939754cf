/**
 * The signed-in user's coupons (myIssuances), newest first: each with its number, when it was
 * won, its own lifecycle status (ready to use, used, cancelled) and the drop's status.
 */
import { useEffect } from 'react';
import { useQuery } from 'urql';
import { errorWords } from './lib/words';
import { MyCouponsQuery } from './operations';

export function MyCoupons({ refresh }: { refresh: number }) {
  const [{ data, error, fetching }, reexecute] = useQuery({ query: MyCouponsQuery });
  useEffect(() => {
    if (refresh > 0) reexecute({ requestPolicy: 'network-only' });
  }, [refresh, reexecute]);

  return (
    <section className="card" data-testid="my-coupons">
      <h2>My coupons</h2>
      {error ? <p className="error">{errorWords((error.graphQLErrors[0]?.extensions?.code as string) ?? 'NETWORK')}</p> : null}
      {data && data.myIssuances.length === 0 ? <p className="muted">None yet.</p> : null}
      {data && data.myIssuances.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>Coupon</th>
              <th>No.</th>
              <th>Won at</th>
              <th>Coupon status</th>
              <th>Drop</th>
            </tr>
          </thead>
          <tbody>
            {data.myIssuances.map((issuance) => (
              <tr key={issuance.id}>
                <td>
                  <a href={`/drop/${issuance.coupon.id}`}>{issuance.coupon.name}</a>
                </td>
                <td>#{issuance.sequence}</td>
                <td>{new Date(issuance.issuedAt).toLocaleString()}</td>
                <td data-testid="issuance-status">{lifecycleWords(issuance)}</td>
                <td>{STATUS_WORDS[issuance.coupon.status]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {fetching && !data ? <p className="muted">Loading…</p> : null}
    </section>
  );
}

const STATUS_WORDS: Record<string, string> = { SCHEDULED: 'not started', ACTIVE: 'open', SOLD_OUT: 'sold out', ENDED: 'ended' };

function lifecycleWords(issuance: { status: string; redeemedAt?: unknown; cancelledAt?: unknown }): string {
  if (issuance.status === 'REDEEMED') return `used ${new Date(String(issuance.redeemedAt)).toLocaleString()}`;
  if (issuance.status === 'CANCELLED') return `cancelled ${new Date(String(issuance.cancelledAt)).toLocaleString()}`;
  return 'ready to use';
}
