/**
 * The playground page and its Content-Security-Policy. The page loads only same-origin
 * files, by paths relative to itself, and carries its settings in a JSON data block,
 * so no inline script has to be allowed.
 */
import { BOOT_SCRIPT_NAME, type Asset } from './assets';

export interface PageSettings {
  defaultQuery: string;
  defaultHeaders: string;
  /** Development only: the run's user and admin tokens. */
  devTokens?: { user: string; admin: string };
}

/** Asset names in the order the page loads them. */
const STYLESHEETS = ['graphiql.min.css'];
const SCRIPTS = ['react.production.min.js', 'react-dom.production.min.js', 'graphiql.min.js', 'graphql-ws.min.js', BOOT_SCRIPT_NAME];

/**
 * @param assetDir the assets' directory relative to the page, e.g. "playground/"
 */
export function renderPage(assets: ReadonlyMap<string, Asset>, assetDir: string, settings: PageSettings): string {
  const url = (name: string) => {
    const asset = assets.get(name);
    if (!asset) throw new Error(`playground asset ${name} is not loaded`);
    // The content hash changes the URL whenever the file changes, so assets may be cached for good.
    return `${assetDir}${name}?v=${asset.hash}`;
  };
  // A data block is never executed; escaping "<" keeps "</script>" in a query from closing it.
  const json = JSON.stringify(settings).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL · coupon service</title>
<link rel="icon" href="data:,">
${STYLESHEETS.map((name) => `<link rel="stylesheet" href="${url(name)}">`).join('\n')}
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
<script type="application/json" id="playground-config">${json}</script>
${SCRIPTS.map((name) => `<script src="${url(name)}"></script>`).join('\n')}
</body>
</html>
`;
}

// A Host header this strict can be copied into the policy without any risk of injection.
const HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * CSP for the page. Scripts only from this origin and never eval. Styles also allow inline
 * because GraphiQL's dialogs inject <style> elements at run time. Fonts are data: URLs in
 * GraphiQL's CSS. WebSockets: CSP3 lets 'self' cover ws(s) to the same host, but not
 * every browser in use implements that, so the ws:// and wss:// origins are named too.
 */
export function contentSecurityPolicy(host: string | undefined): string {
  const sockets = host && HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
