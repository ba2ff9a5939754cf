/**
 * An offline GraphQL IDE: GraphiQL served from this project's own node_modules, for a
 * browser that opens the GraphQL endpoint and can reach nothing but this server.
 *
 * Wire it in front of the GraphQL handler:
 *   const playground = createPlaygroundHandler({ endpointPath: '/graphql' });
 *   http.createServer((req, res) => { if (!playground(req, res)) handleGraphQL(req, res); });
 * It answers GET/HEAD of the endpoint from a browser (Accept prefers text/html) and of
 * the few whitelisted files under "<endpoint's directory>/playground/"; anything else is
 * left to the caller.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestTarget } from '../http/request-target';
import { loadAssets } from './assets';
import { contentSecurityPolicy, renderPage } from './html';

export interface PlaygroundOptions {
  /** Path of the GraphQL endpoint, e.g. "/graphql"; the page is served there. */
  endpointPath: string;
  /** Initial text of GraphiQL's headers editor (JSON). */
  defaultHeaders?: string;
  /** Initial text of the query editor. */
  defaultQuery?: string;
  /**
   * Development only (the signing key was generated for this run): tokens the page offers in a
   * switch above GraphiQL, sent when the headers editor names no Authorization. Never in production.
   */
  devTokens?: { user: string; admin: string };
}

/** Returns true when it has answered the request, false when the caller should. */
export type PlaygroundHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Where the assets live, relative to the page. */
const ASSET_DIR = 'playground/';

export const DEFAULT_HEADERS = `{
  "Authorization": "Bearer <token>"
}`;

/** In development the switch above GraphiQL supplies the token; headers typed here win. */
export const DEV_HEADERS = `{}`;

export const DEFAULT_QUERY = `# Coupon service playground
#
# 1. In Headers below, replace <token> with a JWT
#    (createCoupon needs an admin token). In development
#    the bar above sends a user or admin token for you.
# 2. Run CreateCoupon, then paste the id it returns
#    in place of PASTE-COUPON-ID below.
# 3. Ctrl/Cmd+Enter runs the operation under the cursor.
#    StockChanged is a subscription: it streams over a
#    WebSocket until you press stop.

mutation CreateCoupon {
  createCoupon(input: { name: "Launch drop", totalQuantity: 100 }) {
    id
    name
    totalQuantity
    remaining
    status
    startsAt
  }
}

mutation ClaimCoupon {
  claimCoupon(couponId: "PASTE-COUPON-ID") {
    status
    remaining
    issuance {
      id
      sequence
      issuedAt
    }
  }
}

query Coupon {
  coupon(id: "PASTE-COUPON-ID") {
    name
    remaining
    issuedCount
    status
  }
}

subscription StockChanged {
  stockChanged(couponId: "PASTE-COUPON-ID") {
    remaining
    totalQuantity
    status
  }
}
`;

/** Media types a GraphQL client asks for. On a tie they beat text/html, as in Apollo Server, so a bare wildcard gets JSON. */
const GRAPHQL_MEDIA_TYPES = ['application/json', 'application/graphql-response+json', 'multipart/mixed'];

/** The q value the Accept header gives `type`; the most specific matching range decides. */
function quality(accept: string, type: string): number {
  const [major] = type.split('/');
  let specificity = -1;
  let q = 0;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const rank = range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : -1;
    if (rank > specificity) {
      specificity = rank;
      const qParam = params.find((p) => p.startsWith('q='));
      const value = qParam === undefined ? 1 : Number(qParam.slice(2));
      q = Number.isFinite(value) ? value : 0;
    }
  }
  return q;
}

export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = quality(accept, 'text/html');
  return html > 0 && GRAPHQL_MEDIA_TYPES.every((type) => quality(accept, type) < html);
}

function send(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string>): void {
  res.writeHead(200, {
    ...headers,
    'Content-Length': body.length,
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function createPlaygroundHandler(opts: PlaygroundOptions): PlaygroundHandler {
  const { endpointPath } = opts;
  if (!endpointPath.startsWith('/')) {
    throw new Error(`playground endpointPath must start with "/", got ${JSON.stringify(endpointPath)}`);
  }
  // The assets sit beside the endpoint so that the page can name them relative to itself.
  const assetPrefix = endpointPath.slice(0, endpointPath.lastIndexOf('/') + 1) + ASSET_DIR;
  const assets = loadAssets();
  const page = Buffer.from(
    renderPage(assets, ASSET_DIR, {
      defaultQuery: opts.defaultQuery ?? DEFAULT_QUERY,
      defaultHeaders: opts.defaultHeaders ?? (opts.devTokens ? DEV_HEADERS : DEFAULT_HEADERS),
      ...(opts.devTokens && { devTokens: opts.devTokens }),
    }),
    'utf8',
  );

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    // Compared raw, never normalised or decoded: only exact whitelisted names can match.
    const { pathname } = requestTarget(req.url);

    if (pathname === endpointPath) {
      if (!prefersHtml(req.headers.accept)) return false;
      send(req, res, page, {
        'Content-Type': 'text/html; charset=utf-8',
        // Small and names the current asset hashes, so always fetched anew.
        'Cache-Control': 'no-store',
        // The same URL answers JSON to GraphQL clients.
        Vary: 'Accept',
        'Content-Security-Policy': contentSecurityPolicy(req.headers.host),
        'Referrer-Policy': 'no-referrer',
      });
      return true;
    }

    if (!pathname.startsWith(assetPrefix)) return false;
    const asset = assets.get(pathname.slice(assetPrefix.length));
    if (!asset) return false;
    send(req, res, asset.body, {
      'Content-Type': asset.contentType,
      // The page asks for each asset by content hash, so a given URL never changes content.
      'Cache-Control': 'public, max-age=31536000, immutable',
    });
    return true;
  };
}
