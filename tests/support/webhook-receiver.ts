/**
 * An in-process webhook receiver on 127.0.0.1 for tests and benches: records every request with
 * its headers and raw body, answers as `behave` says (2xx, another status, or never), and checks
 * each signature with the Standard Webhooks library once it knows the secret.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedRequest {
  /** webhook-id */
  id: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  /** How this request was answered: a status, or 'hang' (no answer until the client gives up). */
  answer: number | 'hang';
  /** This request's rank among the requests with its webhook-id (1 = first attempt). */
  attempt: number;
}

export type Behaviour = (request: { id: string; attempt: number; body: string }) => number | 'hang';

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Bodies of the acknowledged (2xx) requests, first acknowledgement of each webhook-id, in order. */
  acknowledged(): Array<{ id: string; type: string; occurredAt: string; data: any; receivedAt: number }>;
  behave: Behaviour;
  /** Throws on the first request whose signature does not verify with `secret`. */
  verifyAll(secret: string): void;
  close(): Promise<void>;
}

export async function startReceiver(behave: Behaviour = () => 204): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const attempts = new Map<string, number>();
  const hanging = new Set<http.ServerResponse>();
  const receiver: Receiver = {
    url: '',
    requests,
    behave,
    acknowledged: () => {
      const seen = new Set<string>();
      return requests
        .filter((r) => typeof r.answer === 'number' && r.answer >= 200 && r.answer < 300)
        .filter((r) => !seen.has(r.id) && seen.add(r.id))
        .map((r) => ({ ...JSON.parse(r.body), receivedAt: r.receivedAt }));
    },
    verifyAll: (secret) => {
      const verifier = new Webhook(secret);
      for (const r of requests) verifier.verify(r.body, r.headers as Record<string, string>);
    },
    close: async () => {
      hanging.forEach((res) => res.destroy());
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id'] ?? '');
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const answer = receiver.behave({ id, attempt, body });
      requests.push({ id, headers: req.headers, body, receivedAt: Date.now(), answer, attempt });
      if (answer === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      res.writeHead(answer).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

export const CREATE_WEBHOOK = `mutation Create($url: String!, $events: [EventType!]!) {
  createWebhook(url: $url, events: $events) { id url events createdAt secret pendingDeliveries failedDeliveries }
}`;
export const WEBHOOKS = `query { webhooks { id url events createdAt secret pendingDeliveries failedDeliveries } }`;
export const DELETE_WEBHOOK = `mutation Delete($id: ID!) { deleteWebhook(id: $id) }`;
export const REDELIVER = `mutation Redeliver($id: ID!) { redeliverFailedEvents(webhookId: $id) }`;
export const ALL_EVENTS = ['ISSUANCE_ISSUED', 'ISSUANCE_REDEEMED', 'ISSUANCE_CANCELLED', 'COUPON_SOLD_OUT', 'COUPON_ENDED'];
