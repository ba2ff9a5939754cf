/** /drop/ without a coupon: open one by id, or (development) create a demo drop. */
import { useState } from 'react';
import { createApi, devToken } from './api';
import { CreateDemoCoupon } from './operations';

export function Home() {
  const [id, setId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  // A demo with an opening draw: everyone who presses in its first second is in one draw.
  const [withDraw, setWithDraw] = useState(false);

  const createDemo = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const admin = await devToken('dev-admin', true);
      if (!admin) throw new Error('This service issues no development tokens: ask an operator for a coupon id.');
      const api = createApi(admin);
      const startsAt = new Date(Date.now() + 20_000).toISOString();
      const result = await api.client.mutation(CreateDemoCoupon, { input: { name: withDraw ? 'Demo drop with a draw' : 'Demo drop', totalQuantity: 20, startsAt, openingDrawMs: withDraw ? 1000 : 0 } }).toPromise();
      api.dispose();
      if (!result.data) throw new Error(result.error?.message ?? 'createCoupon failed');
      location.assign(`/drop/${result.data.createCoupon.id}`);
    } catch (failure) {
      setError((failure as Error).message);
      setBusy(false);
    }
  };

  return (
    <section className="card">
      <h1>Open a drop</h1>
      <form onSubmit={(e) => (e.preventDefault(), location.assign(`/drop/${id.trim()}`))}>
        <label>
          Coupon id
          <input value={id} onChange={(e) => setId(e.target.value)} pattern="[0-9a-fA-F]{24}" placeholder="24 hexadecimal digits" required />
        </label>
        <button type="submit">Open</button>
      </form>
      <p>
        Development: <button type="button" onClick={createDemo} disabled={busy} data-testid="create-demo">Create a demo drop</button> of 20 coupons
        opening in 20 seconds,{' '}
        <label className="inline">
          <input type="checkbox" checked={withDraw} onChange={(e) => setWithDraw(e.target.checked)} data-testid="demo-with-draw" /> with an opening draw
        </label>{' '}
        (everyone who presses in its first second is in one draw instead of a race).
      </p>
      {error ? <p className="error">{error}</p> : null}
    </section>
  );
}
