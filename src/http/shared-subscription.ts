/**
 * A subscription as graphql-js runs it (`subscribe`: the source stream, then each event executed
 * against the operation's selection), except that an event's execution is shared: subscribers
 * that sent the same document with the same variables and receive the same event object get one
 * result, executed by the first of them.
 *
 * Why: every watcher of a drop sends the same document, and the stock feed hands the same
 * snapshot object to each of a coupon's subscribers in a slice (src/live/stock-feed.ts). graphql-js
 * would execute the selection once per subscriber: at 10,000 watchers, the last of them waited
 * for 10,000 executions of an identical result. Shared, a slice costs one execution and the
 * socket writes.
 *
 * What may be shared: a result that depends on the event and the operation alone. The
 * subscription fields resolve from the event (the stock snapshot), never from the viewer in the
 * context; a field that reads the context would have to key the result by viewer as well. A
 * result that carries errors is shared too: each subscriber's errors are formatted on the way out.
 *
 * Sent directly: when the caller gives `send` and the source is a LatestValueStream, an event
 * whose shared result has no errors is serialized once per result and handed to `send` at once,
 * instead of travelling through the iterator, graphql-ws's loop and its per-message
 * serialization: in a perf profile of a drop watched by 10,000, that chain of promises per
 * subscriber cost about as much as the socket write itself. The iterator still carries what
 * `send` declines (a client that is not reading, a result with errors or not ready yet) and the
 * end of the stream.
 */
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { LatestValueStream } from '../live/latest-value-stream';

type Execution = ExecutionResult | Promise<ExecutionResult>;

/** Results by event object, then by operation (document, operation name, variables). */
const results = new WeakMap<object, Map<string, Execution>>();
/** A number per parsed document: the prepared-document cache hands out one object per text. */
const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 0;

function operationKey(args: ExecutionArgs): string {
  let id = documentIds.get(args.document);
  if (id === undefined) documentIds.set(args.document, (id = nextDocumentId++));
  return `${id}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}`;
}

/** Executes the operation for one event, or returns the result another subscriber's execution left for it. */
function executeShared(args: ExecutionArgs, key: string, event: unknown): Execution {
  if (typeof event !== 'object' || event === null) return execute({ ...args, rootValue: event });
  let byOperation = results.get(event);
  if (!byOperation) results.set(event, (byOperation = new Map()));
  let result = byOperation.get(key);
  if (!result) byOperation.set(key, (result = execute({ ...args, rootValue: event })));
  return result;
}

/** Each shared result without errors, serialized once (UTF-8 JSON) as the payload of a `next` message. */
const serialized = new WeakMap<ExecutionResult, Buffer>();

function serializedPayload(result: ExecutionResult): Buffer {
  let payload = serialized.get(result);
  if (payload === undefined) serialized.set(result, (payload = Buffer.from(JSON.stringify(result))));
  return payload;
}

/**
 * Sends one result's payload (the UTF-8 JSON of `{ data }`) to the subscriber now; false when it
 * cannot (the client is not reading), and the result then goes through the iterator.
 */
export type SendPayload = (payload: Buffer) => boolean;

/** graphql-js's `subscribe`, with each event's execution shared, and sent directly when `send` is given, as described above. */
export async function subscribeShared(args: ExecutionArgs, send?: SendPayload): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source;
  const events = source[Symbol.asyncIterator]();
  const key = operationKey(args);
  if (send && events instanceof LatestValueStream) {
    events.deliverDirectly((event) => {
      const result = executeShared(args, key, event);
      if (result instanceof Promise || result.errors) return false;
      return send(serializedPayload(result));
    });
  }
  const mapped: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const event = await events.next();
      return event.done ? { done: true, value: undefined } : { done: false, value: await executeShared(args, key, event.value) };
    },
    async return() {
      await events.return?.();
      return { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      await events.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return mapped;
    },
  };
  return mapped;
}
