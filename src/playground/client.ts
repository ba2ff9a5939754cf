/**
 * The browser-side boot script of the playground, kept as text so it ships with the
 * compiled server without a build step. It runs after the React, GraphiQL and graphql-ws
 * UMD bundles (globals React, ReactDOM, GraphiQL, graphqlWs), reads its settings from the
 * page's JSON block and mounts GraphiQL with a fetcher that sends queries and mutations
 * over HTTP and subscriptions over graphql-ws (graphql-transport-ws) on the same URL, deciding
 * by the editor's current text, and in development offers the run's user and admin tokens.
 */
/**
 * Declares `operationsIn(text)`: the operations of a GraphQL document's text, as
 * [{ type: 'query' | 'mutation' | 'subscription', name?: string }], without a parser.
 */
export const OPERATIONS_SCANNER = String.raw`
  // The operations in the editor's text as it is now: GraphiQL's parsed document (options.documentAST)
  // lags the editor, so a subscription typed and run at once would go over HTTP. A small scan
  // instead of a parser: comments, strings and everything inside braces or parentheses are
  // skipped, and what is left at the top level are the operations' keywords and names.
  const operationsIn = (text) => {
    const operations = [];
    let depth = 0;
    let i = 0;
    let pending; // the keyword just read at the top level, waiting for its name and selection set
    while (i < text.length) {
      const c = text[i];
      if (c === '#') { while (i < text.length && text[i] !== '\n') i++; continue; }
      if (c === '"') {
        const block = text.startsWith('"'.repeat(3), i);
        const close = block ? '"'.repeat(3) : '"';
        i += close.length;
        while (i < text.length && !text.startsWith(close, i) && (block || text[i] !== '\n')) i += text[i] === '\\' ? 2 : 1;
        i += close.length;
        continue;
      }
      if (c === '{' || c === '(') {
        if (depth === 0 && c === '{') {
          // A selection set at the top level ends an operation's header: "{ ... }" alone is a query.
          operations.push(pending || { type: 'query' });
          pending = undefined;
        }
        depth++; i++; continue;
      }
      if (c === '}' || c === ')') { depth = Math.max(0, depth - 1); i++; continue; }
      const word = /^[_A-Za-z][_0-9A-Za-z]*/.exec(text.slice(i, i + 200));
      if (word) {
        if (depth === 0) {
          if (word[0] === 'query' || word[0] === 'mutation' || word[0] === 'subscription' || word[0] === 'fragment') {
            pending = { type: word[0] };
          } else if (pending && pending.name === undefined) {
            pending.name = word[0];
          }
        }
        i += word[0].length;
        continue;
      }
      i++;
    }
    return operations.filter((operation) => operation.type !== 'fragment');
  };
`;

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

${OPERATIONS_SCANNER}
  // GraphiQL's operation name comes from the same lagging document: one the text no longer has is
  // replaced by the text's only operation (with several, the server names the ambiguity).
  const currentOperation = (params) => {
    const operations = operationsIn(typeof params.query === 'string' ? params.query : '');
    const named = params.operationName ? operations.find((operation) => operation.name === params.operationName) : undefined;
    if (named) return { params, operation: named };
    if (operations.length !== 1) return { params, operation: undefined };
    return { params: { ...params, operationName: operations[0].name }, operation: operations[0] };
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

  // Development (JWT_SECRET unset): a bar above GraphiQL chooses the token sent when the headers
  // editor names none, so nobody copies tokens from the terminal. Absent in production.
  const devTokens = config.devTokens;
  let signedInAs = devTokens ? 'admin' : 'none';

  const withDevToken = (headers) => {
    if (!devTokens || signedInAs === 'none' || authorizationOf(headers)) return headers;
    return { ...headers, Authorization: 'Bearer ' + devTokens[signedInAs] };
  };

  const fetcher = (params, options) => {
    const headers = withDevToken(realHeaders(options && options.headers));
    const current = currentOperation(params);
    if (current.operation && current.operation.type === 'subscription') {
      return subscribe(current.params, authorizationOf(headers));
    }
    return httpFetcher(current.params, { ...options, headers });
  };

  // Sized here through the DOM rather than an inline style, which the page's CSP does not need to allow.
  document.body.style.margin = '0';
  const container = document.getElementById('graphiql');
  container.style.height = '100vh';
  if (devTokens) {
    const bar = document.createElement('div');
    bar.id = 'dev-token-bar';
    bar.style.cssText = 'height:34px;display:flex;align-items:center;gap:12px;padding:0 12px;font:13px system-ui,sans-serif;background:#fff7d6;border-bottom:1px solid #e5d48a;box-sizing:border-box';
    const label = document.createElement('span');
    label.textContent = 'Development token, sent when the headers name none:';
    bar.appendChild(label);
    for (const [value, text] of [['admin', 'admin (dev-admin)'], ['user', 'user (dev-user)'], ['none', 'none']]) {
      const option = document.createElement('label');
      const radio = document.createElement('input');
      radio.type = 'radio';
      radio.name = 'dev-token';
      radio.value = value;
      radio.checked = value === signedInAs;
      radio.addEventListener('change', () => { if (radio.checked) signedInAs = value; });
      option.appendChild(radio);
      option.appendChild(document.createTextNode(' ' + text));
      bar.appendChild(option);
    }
    document.body.insertBefore(bar, container);
    container.style.height = 'calc(100vh - 34px)';
  }

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
