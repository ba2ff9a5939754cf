/**
 * Admission slots over real HTTP: a slot is taken before the body is read and must come back
 * however the request ends, including a client that gives up while it waits for a slot.
 * One slot makes a lost release visible at once: the next request would wait and be refused.
 */
import net from 'node:net';
import { useTestService } from '../support/stack';


const suite = useTestService({ MAX_CONCURRENT_REQUESTS: '1', MAX_QUEUE_WAIT_MS: '2000', MAX_QUEUED_REQUESTS: '10' });

const QUERY = JSON.stringify({ query: '{ __typename }' });

/** A POST whose body stops after its first bytes, so it holds (or waits for) the slot until destroyed. */
async function stalledRequest(): Promise<net.Socket> {
  const socket = net.connect(suite.service.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${QUERY.length}\r\n\r\n${QUERY.slice(0, 5)}`);
  return socket;
}

const ask = () =>
  fetch(`${suite.service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: QUERY,
    signal: AbortSignal.timeout(5000),
  });

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a client that leaves while it waits for a slot, and one that leaves holding it, both give their slot back', async () => {
  const holder = await stalledRequest();
  await pause(100);
  const waiter = await stalledRequest();
  await pause(100);
  // The waiter leaves first: it is admitted later with its response already closed.
  waiter.destroy();
  await pause(100);
  holder.destroy();
  await pause(100);

  const started = performance.now();
  const answers = await Promise.all(Array.from({ length: 5 }, () => ask()));
  expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
  // Served at once, not after the 2 s queue wait of a leaked slot.
  expect(performance.now() - started).toBeLessThan(1500);
});

test('a slot comes back after every answered request', async () => {
  for (let i = 0; i < 20; i++) expect((await ask()).status).toBe(200);
});
