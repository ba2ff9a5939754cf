/**
 * graphql-ws client helpers for tests: what a coupon page does to watch stock.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface StockEvent {
  couponId: string;
  remaining: number;
  totalQuantity: number;
  status: string;
}

export const STOCK_CHANGED = `subscription Stock($couponId: ID!) {
  stockChanged(couponId: $couponId) { couponId remaining totalQuantity status }
}`;

export function wsClient(baseUrl: string, options: { token?: string; onClosed?: (code: number) => void } = {}): Client {
  return createClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: options.token ? { authorization: `Bearer ${options.token}` } : {},
    on: { closed: (event) => options.onClosed?.((event as { code: number }).code) },
  });
}

export interface Watcher {
  events: StockEvent[];
  errors: unknown[];
  completed: Promise<void>;
  /** Resolves once an event satisfies the predicate. */
  until(predicate: (event: StockEvent) => boolean, timeoutMs?: number): Promise<StockEvent>;
  stop(): void;
}

export function watchStock(client: Client, couponId: string): Watcher {
  const events: StockEvent[] = [];
  const errors: unknown[] = [];
  const waiters: Array<{ predicate: (e: StockEvent) => boolean; resolve: (e: StockEvent) => void }> = [];
  let complete!: () => void;
  const completed = new Promise<void>((resolve) => (complete = resolve));
  const stop = client.subscribe<{ stockChanged: StockEvent }>(
    { query: STOCK_CHANGED, variables: { couponId } },
    {
      next: (result) => {
        if (result.errors) errors.push(...result.errors);
        const event = result.data?.stockChanged;
        if (!event) return;
        events.push(event);
        for (const waiter of [...waiters]) {
          if (waiter.predicate(event)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(event);
          }
        }
      },
      error: (error) => {
        errors.push(error);
        complete();
      },
      complete: () => complete(),
    },
  );
  return {
    events,
    errors,
    completed,
    stop,
    until: (predicate, timeoutMs = 10_000) => {
      const seen = events.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching stock event within ${timeoutMs} ms; saw ${JSON.stringify(events.slice(-3))}`)), timeoutMs);
        waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}

export interface ProtocolMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

/**
 * One graphql-transport-ws socket driven message by message, for what the client library never
 * sends: malformed documents, oversized frames, headers such as X-Forwarded-For.
 */
export interface RawSocket {
  socket: WebSocket;
  /** Resolves on connection_ack; rejects when the socket closes first. */
  init(payload?: Record<string, unknown>): Promise<void>;
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
  complete(id: string): void;
  /** The first `next` with errors, `error` or `complete` for this id, and when it came. */
  outcome(id: string, timeoutMs?: number): Promise<{ message: ProtocolMessage; at: number }>;
  /** Every message received so far. */
  messages: ProtocolMessage[];
  /** The close code and reason, once closed. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export function rawSocket(baseUrl: string, options: { headers?: Record<string, string> } = {}): Promise<RawSocket> {
  const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', { headers: options.headers });
  const messages: ProtocolMessage[] = [];
  const listeners = new Set<(message: ProtocolMessage) => void>();
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as ProtocolMessage;
    messages.push(message);
    listeners.forEach((listener) => listener(message));
  });
  const send = (message: ProtocolMessage) => socket.send(JSON.stringify(message));
  const raw: RawSocket = {
    socket,
    messages,
    closed,
    init: (payload = {}) =>
      new Promise<void>((resolve, reject) => {
        const listener = (message: ProtocolMessage) => message.type === 'connection_ack' && (listeners.delete(listener), resolve());
        listeners.add(listener);
        void closed.then(({ code }) => reject(new Error(`closed (${code}) before connection_ack`)));
        send({ type: 'connection_init', payload });
      }),
    subscribe: (id, query, variables) => send({ id, type: 'subscribe', payload: { query, variables } }),
    complete: (id) => send({ id, type: 'complete' }),
    outcome: (id, timeoutMs = 10_000) => {
      const ends = (m: ProtocolMessage) =>
        m.id === id && (m.type === 'error' || m.type === 'complete' || (m.type === 'next' && Array.isArray((m.payload as { errors?: unknown[] })?.errors)));
      const seen = messages.find(ends);
      if (seen) return Promise.resolve({ message: seen, at: performance.now() });
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no outcome for ${id} within ${timeoutMs} ms`)), timeoutMs);
        const listener = (message: ProtocolMessage) => {
          if (!ends(message)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve({ message, at: performance.now() });
        };
        listeners.add(listener);
      });
    },
    close: () => socket.close(),
  };
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(raw));
    socket.once('error', reject);
    socket.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(Object.assign(new Error(`upgrade refused with HTTP ${res.statusCode}`), { status: res.statusCode }));
    });
  });
}

/** The errors carried by an `error` or a `next` message. */
export function errorsOf(message: ProtocolMessage): Array<{ message: string; extensions?: Record<string, unknown> }> {
  if (message.type === 'error') return message.payload as Array<{ message: string; extensions?: Record<string, unknown> }>;
  return ((message.payload as { errors?: unknown[] })?.errors ?? []) as Array<{ message: string; extensions?: Record<string, unknown> }>;
}
