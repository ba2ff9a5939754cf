/**
 * The signed-in user's coupons (myIssuances), newest first. The issuance's own lifecycle status
 * (ACTIVE, REDEEMED, CANCELLED) is a v2 field not yet in this schema: until then each row shows
 * its sequence, when it was won, and the coupon's status.
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
