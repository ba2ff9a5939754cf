/**
 * The API client: urql over HTTP for queries and mutations, graphql-ws for the stock
 * subscription on the same URL. The token goes in `Authorization: Bearer` over HTTP and in
 * connectionParams.authorization over the WebSocket (stock itself needs none).
 */
import { Client, CombinedError, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { parseRetryAfter, type Attempt } from './lib/claim-policy';

const httpUrl = `${location.origin}/graphql`;
const wsUrl = httpUrl.replace(/^http/, 'ws');

export interface Api {
  client: Client;
  ws: WsClient;
  dispose(): void;
}

export function createApi(token: string | undefined): Api {
  const ws = createWsClient({
    url: wsUrl,
    connectionParams: () => (token ? { authorization: `Bearer ${token}` } : {}),
    // Reconnect for good after a drop or a server restart, with graphql-ws's randomised
    // exponential wait (1 s, 2 s, 4 s... plus 0.3-3 s of jitter), and subscribe again.
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    // Connected only while something is subscribed.
    lazy: true,
  });
  const client = new Client({
    url: httpUrl,
    // No document cache: every figure on a drop page is live, and claims are never cached.
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
    requestPolicy: 'network-only',
    // POST with a JSON body: the service answers only that (a GET query is refused by its CSRF protection).
    preferGetMethod: false,
    fetchOptions: () => (token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
  return { client, ws, dispose: () => void ws.dispose() };
}

/** What a failed request means for the retry policy: its code, and the server's retry hint. */
export function attemptOf(error: CombinedError): Extract<Attempt, { kind: 'error' }> {
  const first = error.graphQLErrors[0];
  const response = error.response as Response | undefined;
  const retryAfterMs = (first?.extensions?.retryAfterMs as number | undefined) ?? parseRetryAfter(response?.headers?.get?.('retry-after'));
  const code = (first?.extensions?.code as string | undefined) ?? (response?.status === 503 ? 'SERVICE_UNAVAILABLE' : response?.status === 429 ? 'RATE_LIMITED' : undefined);
  return { kind: 'error', code, retryAfterMs };
}

/** Development only: a token for `sub` from POST /dev/token; undefined where the service has none (production). */
export async function devToken(sub: string, admin = false): Promise<string | undefined> {
  const reply = await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub, admin }) });
  if (reply.status === 404) return undefined;
  if (!reply.ok) throw new Error(((await reply.json()) as { errors?: Array<{ message: string }> }).errors?.[0]?.message ?? `HTTP ${reply.status}`);
  return ((await reply.json()) as { token: string }).token;
}
