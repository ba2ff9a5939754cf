import { buildSchema, parse, type DocumentNode, type ExecutionResult } from 'graphql';
import { LatestValueStream } from '../../src/live/latest-value-stream';
import { subscribeShared } from '../../src/http/shared-subscription';

/** A schema whose subscription field streams the events a test pushes, counting its executions. */
function fixture() {
  const schema = buildSchema(`
    type Query { ok: Boolean }
    type Update { n: Int!, label(prefix: String!): String! }
    type Subscription { updates(topic: String!): Update! }
  `);
  const streams: LatestValueStream<{ n: number }>[] = [];
  let executions = 0;
  const rootValue = {
    updates: () => {
      const stream = new LatestValueStream<{ n: number }>(() => undefined);
      streams.push(stream);
      return stream;
    },
  };
  const fieldResolver = (source: any, args: any, _context: unknown, info: any) => {
    if (info.fieldName === 'updates') return source;
    if (info.fieldName === 'label') {
      executions += 1;
      return `${args.prefix}${source.n}`;
    }
    return source[info.fieldName];
  };
  // One parsed document per text, as the service's prepared-document cache hands out.
  const documents = new Map<string, DocumentNode>();
  const subscribeAs = async (text: string, variables: Record<string, unknown>, send?: (payload: Buffer) => boolean) => {
    if (!documents.has(text)) documents.set(text, parse(text));
    const result = await subscribeShared({ schema, document: documents.get(text)!, variableValues: variables, rootValue, fieldResolver, subscribeFieldResolver: () => rootValue.updates() }, send);
    if (!(Symbol.asyncIterator in result)) throw new Error(JSON.stringify(result));
    return result as AsyncIterableIterator<ExecutionResult>;
  };
  return { streams, subscribeAs, executions: () => executions };
}

const LABEL = 'subscription S($p: String!) { updates(topic: "t") { n label(prefix: $p) } }';

test('subscribers of the same document and variables share one execution per event object', async () => {
  const { streams, subscribeAs, executions } = fixture();
  const first = await subscribeAs(LABEL, { p: '#' });
  const second = await subscribeAs(LABEL, { p: '#' });
  const event = { n: 7 };
  streams.forEach((stream) => stream.push(event));
  const [a, b] = await Promise.all([first.next(), second.next()]);
  expect(a.value).toEqual({ data: { updates: { n: 7, label: '#7' } } });
  expect(b.value).toBe(a.value);
  expect(executions()).toBe(1);

  // Another event object (the next slice, or the next update) is executed again.
  const next = { n: 7 };
  streams.forEach((stream) => stream.push(next));
  await Promise.all([first.next(), second.next()]);
  expect(executions()).toBe(2);
});

test('other variables or another document get their own execution', async () => {
  const { streams, subscribeAs, executions } = fixture();
  const hash = await subscribeAs(LABEL, { p: '#' });
  const star = await subscribeAs(LABEL, { p: '*' });
  const plain = await subscribeAs('subscription { updates(topic: "t") { n } }', {});
  const event = { n: 3 };
  streams.forEach((stream) => stream.push(event));
  const [a, b, c] = await Promise.all([hash.next(), star.next(), plain.next()]);
  expect(a.value).toEqual({ data: { updates: { n: 3, label: '#3' } } });
  expect(b.value).toEqual({ data: { updates: { n: 3, label: '*3' } } });
  expect(c.value).toEqual({ data: { updates: { n: 3 } } });
  expect(executions()).toBe(2);
});

test('ending the subscription ends its source stream', async () => {
  const { streams, subscribeAs } = fixture();
  const subscription = await subscribeAs(LABEL, { p: '#' });
  await subscription.return!();
  expect(streams[0]!.isClosed).toBe(true);
  expect(await subscription.next()).toEqual({ done: true, value: undefined });
});

describe('sent directly', () => {
  test('subscribers waiting for an event get its payload at once, serialized once for all of them', async () => {
    const { streams, subscribeAs, executions } = fixture();
    const sent: Buffer[][] = [[], []];
    const first = await subscribeAs(LABEL, { p: '#' }, (payload) => sent[0]!.push(payload) > 0);
    const second = await subscribeAs(LABEL, { p: '#' }, (payload) => sent[1]!.push(payload) > 0);
    const waiting = [first.next(), second.next()];
    const event = { n: 4 };
    streams.forEach((stream) => stream.push(event));
    expect(sent[0]!.map(String)).toEqual([JSON.stringify({ data: { updates: { n: 4, label: '#4' } } })]);
    expect(sent[1]![0]).toBe(sent[0]![0]);
    expect(executions()).toBe(1);
    // The iterators carried nothing; they end with their streams.
    streams.forEach((stream) => stream.end());
    expect(await Promise.all(waiting)).toEqual([
      { done: true, value: undefined },
      { done: true, value: undefined },
    ]);
  });

  test('a payload the subscriber cannot take now goes through the iterator instead', async () => {
    const { streams, subscribeAs } = fixture();
    const subscription = await subscribeAs(LABEL, { p: '#' }, () => false);
    const next = subscription.next();
    streams[0]!.push({ n: 2 });
    expect((await next).value).toEqual({ data: { updates: { n: 2, label: '#2' } } });
  });

  test('a result with errors is not sent directly: the iterator carries it, to be formatted on the way out', async () => {
    const { streams, subscribeAs } = fixture();
    const send = jest.fn(() => true);
    const subscription = await subscribeAs('subscription { updates(topic: "t") { n } }', {}, send);
    const next = subscription.next();
    // n is non-null: a missing one is an error in the result.
    streams[0]!.push({} as { n: number });
    const { value } = await next;
    expect(value.errors).toHaveLength(1);
    expect(send).not.toHaveBeenCalled();
  });
});
