/**
 * The reference drop page: /drop/<couponId>. Sign-in (development tokens), the coupon with its
 * live stock and a countdown on the server's clock, the claim button, and "my coupons".
 */
import { useEffect, useMemo, useState } from 'react';
import { Provider } from 'urql';
import { createApi, devToken } from './api';
import { Drop } from './Drop';
import { Home } from './Home';
import { MyCoupons } from './MyCoupons';

const COUPON_PATH = /^\/drop\/([0-9a-f]{24})\/?$/i;

interface Session {
  user: string;
  token: string;
}

function loadSession(): Session | undefined {
  const saved = sessionStorage.getItem('drop:session');
  return saved ? (JSON.parse(saved) as Session) : undefined;
}

export function App() {
  const couponId = COUPON_PATH.exec(location.pathname)?.[1];
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const api = useMemo(() => createApi(session?.token), [session?.token]);
  useEffect(() => () => api.dispose(), [api]);
  // Bumped after each claim so that "my coupons" reads again.
  const [claims, setClaims] = useState(0);

  const signIn = (next: Session | undefined) => {
    if (next) sessionStorage.setItem('drop:session', JSON.stringify(next));
    else sessionStorage.removeItem('drop:session');
    setSession(next);
  };

  return (
    <Provider value={api.client}>
      <header className="bar">
        <a href="/drop/" className="brand">
          Coupon drop
        </a>
        {session ? (
          <span className="who">
            Signed in as <b data-testid="user">{session.user}</b>{' '}
            <button type="button" className="link" onClick={() => signIn(undefined)}>
              Sign out
            </button>
          </span>
        ) : null}
      </header>
      <main>
        {session ? null : <SignIn onSignedIn={signIn} />}
        {couponId ? <Drop couponId={couponId} user={session?.user} onClaimed={() => setClaims((n) => n + 1)} /> : <Home />}
        {session ? <MyCoupons refresh={claims} /> : null}
      </main>
    </Provider>
  );
}

/** Development sign-in: any user name, a token from POST /dev/token; elsewhere, paste a token. */
function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [name, setName] = useState('');
  const [pasted, setPasted] = useState('');
  const [noDevTokens, setNoDevTokens] = useState(false);
  const [error, setError] = useState<string>();

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      if (noDevTokens) {
        const token = pasted.trim().replace(/^Bearer\s+/i, '');
        const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub: string };
        return onSignedIn({ user: payload.sub, token });
      }
      const token = await devToken(name.trim());
      if (!token) return setNoDevTokens(true);
      onSignedIn({ user: name.trim(), token });
    } catch (failure) {
      setError((failure as Error).message);
    }
  };

  return (
    <form className="card signin" onSubmit={submit}>
      <h2>Sign in</h2>
      {noDevTokens ? (
        <label>
          This service issues no development tokens (JWT_SECRET is set). Paste a token:
          <input value={pasted} onChange={(e) => setPasted(e.target.value)} placeholder="eyJhbGciOi…" required />
        </label>
      ) : (
        <label>
          Your name (development sign-in: any name is a user)
          <input data-testid="user-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="alice" maxLength={128} required />
        </label>
      )}
      <button type="submit" data-testid="sign-in">
        Sign in
      </button>
      {error ? <p className="error">{error}</p> : null}
    </form>
  );
}
