/**
 * The browser-side boot script of the playground, kept as text so it ships with the
 * compiled server without a build step. It runs after the React, GraphiQL and graphql-ws
 * UMD bundles (globals React, ReactDOM, GraphiQL, graphqlWs), reads its settings from the
 * page's JSON block and mounts GraphiQL with a fetcher that sends queries and mutations
 * over HTTP and subscriptions over graphql-ws (graphql-transport-ws) on the same URL.
 */
export const BOOT_SCRIPT = String.raw`(() => {
  'use strict';
  const config = JSON.parse(document.getElementById('playground-config').textContent);

  // The page is served at the endpoint itself, so its own URL is the endpoint (also behind a proxy).
  const httpUrl = location.origin + location.pathname;
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + location.pathname;
  const httpFetcher = GraphiQL.createFetcher({ url: httpUrl });

  // A value like "Bearer <token>" is the untouched placeholder, not a credential: don't send it.
  const isPlaceholder = (value) => typeof value === 'string' && /<[^>]*>/.test(value);

  const realHeaders = (headers) =>
    Object.fromEntries(Object.entries(headers || {}).filter(([, value]) => !isPlaceholder(value)));

  const authorizationOf = (headers) => {
    const entry = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization');
    return entry && typeof entry[1] === 'string' ? entry[1] : undefined;
  };

  const isSubscription = (documentAST, operationName) => {
    const operations = ((documentAST && documentAST.definitions) || []).filter((d) => d.kind === 'OperationDefinition');
    const operation = operationName
      ? operations.find((d) => d.name && d.name.value === operationName)
      : operations.length === 1 ? operations[0] : undefined;
    return Boolean(operation && operation.operation === 'subscription');
  };

  // graphql-ws reports a refused or dropped socket as a CloseEvent or Event, which GraphiQL
  // would print as "{}". Plain { message } objects read as GraphQL errors, without a stack.
  const readableError = (error) => {
    if (Array.isArray(error)) return error; // GraphQL errors from the server
    if (error instanceof Error) return { message: error.message };
    if (error && typeof error.code === 'number') {
      return { message: 'WebSocket closed with code ' + error.code + (error.reason ? ': ' + error.reason : '') };
    }
    return { message: 'WebSocket connection to ' + wsUrl + ' failed' };
  };

  // One connection per subscription, so each one carries the headers typed when it started
  // (contract: connectionParams.authorization = "Bearer <JWT>") and closes when it stops.
  const subscribe = (params, authorization) => ({
    subscribe(observer) {
      const client = graphqlWs.createClient({
        url: wsUrl,
        connectionParams: authorization ? { authorization } : {},
        // Show a failure at once instead of silently reconnecting behind the user's back.
        retryAttempts: 0,
      });
      const unsubscribe = client.subscribe(params, {
        next: (result) => observer.next(result),
        error: (error) => { observer.error(readableError(error)); client.dispose(); },
        complete: () => { observer.complete(); client.dispose(); },
      });
      return { unsubscribe: () => { unsubscribe(); client.dispose(); } };
    },
  });

  const fetcher = (params, options) => {
    const headers = realHeaders(options && options.headers);
    if (isSubscription(options && options.documentAST, params.operationName)) {
      return subscribe(params, authorizationOf(headers));
    }
    return httpFetcher(params, { ...options, headers });
  };

  // Sized here through the DOM rather than an inline style, which the page's CSP does not need to allow.
  document.body.style.margin = '0';
  const container = document.getElementById('graphiql');
  container.style.height = '100vh';

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: config.defaultQuery,
      defaultHeaders: config.defaultHeaders,
      // Open the headers tab so the Authorization line is the first thing a developer sees.
      defaultEditorToolsVisibility: 'headers',
      // Tokens stay out of localStorage.
      shouldPersistHeaders: false,
    }),
  );
})();
`;
