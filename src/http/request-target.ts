/**
 * A request target (origin form, `/path?query`) split into its path and its query string with
 * the `?`, as Apollo takes it. Paths are compared raw, never normalised or decoded: routes match
 * exactly, and a WHATWG URL, which costs a few µs on every claim, would only add normalisation
 * nobody relies on.
 */
export function requestTarget(target = '/'): { pathname: string; search: string } {
  const query = target.indexOf('?');
  return query === -1 ? { pathname: target, search: '' } : { pathname: target.slice(0, query), search: target.slice(query) };
}
