/**
 * One delivery attempt against a real receiver on 127.0.0.1: signed, refused when the address is
 * internal and private networks are not allowed, no redirect followed, a hang cut at the limit.
 */
import { Webhook } from 'standardwebhooks';
import { HttpSender } from '../../src/events/http-sender';
import { newSecret } from '../../src/events/webhook-registry';
import { startReceiver, type Receiver } from '../support/webhook-receiver';

let receiver: Receiver;
beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(() => receiver.close());

const delivery = { eventId: 'evt_test_issued', body: JSON.stringify({ id: 'evt_test_issued', type: 'ISSUANCE_ISSUED', occurredAt: new Date().toISOString(), data: {} }) };

test('a delivery is a signed POST that the Standard Webhooks library verifies', async () => {
  const secret = newSecret();
  const sender = new HttpSender({ timeoutMs: 2000, allowPrivateNetworks: true }, 4);
  expect(await sender.send({ id: 'w1', url: receiver.url, secret }, delivery)).toEqual({ outcome: 'delivered', detail: '204' });
  const [request] = receiver.requests;
  expect(request!.body).toBe(delivery.body);
  expect(request!.headers['content-type']).toBe('application/json');
  expect(request!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  expect(new Webhook(secret).verify(request!.body, request!.headers as Record<string, string>)).toEqual(JSON.parse(delivery.body));
  expect(() => new Webhook(newSecret()).verify(request!.body, request!.headers as Record<string, string>)).toThrow();
  sender.close();
});

test('with private networks refused, a receiver on loopback is not contacted at delivery', async () => {
  const sender = new HttpSender({ timeoutMs: 2000, allowPrivateNetworks: false }, 4);
  for (const url of [receiver.url, receiver.url.replace('127.0.0.1', 'localhost')]) {
    expect(await sender.send({ id: 'w1', url, secret: newSecret() }, delivery)).toMatchObject({ outcome: 'refused_address' });
  }
  expect(receiver.requests).toEqual([]);
  sender.close();
});

test('a redirect is not followed: it is a failed attempt', async () => {
  receiver.behave = () => 307;
  const sender = new HttpSender({ timeoutMs: 2000, allowPrivateNetworks: true }, 4);
  expect(await sender.send({ id: 'w1', url: receiver.url, secret: newSecret() }, delivery)).toEqual({ outcome: 'http_error', detail: 'HTTP 307' });
  expect(receiver.requests).toHaveLength(1);
  sender.close();
});

test('a receiver that does not answer is cut off at the attempt limit', async () => {
  receiver.behave = () => 'hang';
  const sender = new HttpSender({ timeoutMs: 500, allowPrivateNetworks: true }, 4);
  const started = performance.now();
  expect(await sender.send({ id: 'w1', url: receiver.url, secret: newSecret() }, delivery)).toMatchObject({ outcome: 'timeout' });
  expect(performance.now() - started).toBeLessThan(2000);
  sender.close();
});

test('a refused connection is a failed attempt, not an error', async () => {
  const url = receiver.url;
  await receiver.close();
  const sender = new HttpSender({ timeoutMs: 1000, allowPrivateNetworks: true }, 4);
  expect(await sender.send({ id: 'w1', url, secret: newSecret() }, delivery)).toEqual({ outcome: 'network_error', detail: 'ECONNREFUSED' });
  receiver = await startReceiver();
  sender.close();
});
