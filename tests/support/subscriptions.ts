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
