/**
 * One delivery attempt: POST the body to the webhook's URL, signed per the Standard Webhooks
 * specification by its own library (`standardwebhooks`), to the address checked just before, with
 * a time limit over the whole exchange. Redirects are not followed (a 3xx is a failure like any
 * other non-2xx), so a receiver cannot bounce a delivery to an internal address.
 *
 * Connections are kept alive per webhook (an agent each, at most `maxSockets` open): a drop's
 * thousands of events go over a few connections instead of a handshake each.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Webhook as Signer } from 'standardwebhooks';
import { checkTarget, type Resolver } from './address-guard';

export type AttemptOutcome = 'delivered' | 'http_error' | 'timeout' | 'network_error' | 'refused_address';

export interface AttemptResult {
  outcome: AttemptOutcome;
  /** For logs and the delivery document: the status, or what went wrong. */
  detail: string;
}

export interface SendOptions {
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  resolve?: Resolver;
}

export interface Delivery {
  eventId: string;
  body: string;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

export class HttpSender {
  private readonly agents = new Map<string, { http: http.Agent; https: https.Agent }>();
  private readonly signers = new Map<string, Signer>();

  constructor(
    private readonly options: SendOptions,
    private readonly maxSockets: number,
  ) {}

  /** The headers of one attempt: the timestamp is this attempt's, the id the event's. */
  headers(secret: string, delivery: Delivery, now = new Date()): Record<string, string> {
    let signer = this.signers.get(secret);
    if (!signer) {
      signer = new Signer(secret);
      this.signers.set(secret, signer);
    }
    return {
      'content-type': 'application/json',
      'webhook-id': delivery.eventId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signer.sign(delivery.eventId, now, delivery.body),
      'user-agent': 'coupon-service-webhooks',
    };
  }

  async send(webhook: { id: string; url: string; secret: string }, delivery: Delivery): Promise<AttemptResult> {
    const url = new URL(webhook.url);
    const started = Date.now();
    const target = await checkTarget(url, this.options.allowPrivateNetworks, this.options.resolve);
    if (!target.ok) return { outcome: 'refused_address', detail: target.reason };
    const { address, family } = target.address;
    // Connect to the address that was checked, whatever the name resolves to a moment later.
    const pinned: LookupFunction = (_host, options, callback) => {
      if ((options as { all?: boolean }).all) (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address, family }]);
      else callback(null, address, family);
    };
    const remaining = Math.max(1, this.options.timeoutMs - (Date.now() - started));
    const secure = url.protocol === 'https:';
    const agents = this.agentsFor(webhook.id);
    const body = Buffer.from(delivery.body);
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (result: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const request = (secure ? https : http).request(
        url,
        {
          method: 'POST',
          agent: secure ? agents.https : agents.http,
          lookup: pinned,
          headers: { ...this.headers(webhook.secret, delivery), 'content-length': String(body.length) },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          let read = 0;
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_RESPONSE_BYTES) response.destroy();
          });
          const done = () =>
            finish(status >= 200 && status < 300 ? { outcome: 'delivered', detail: String(status) } : { outcome: 'http_error', detail: `HTTP ${status}` });
          response.on('end', done);
          response.on('close', done);
          response.on('error', done);
        },
      );
      const timer = setTimeout(() => {
        finish({ outcome: 'timeout', detail: `no answer within ${this.options.timeoutMs} ms` });
        request.destroy();
      }, remaining);
      request.on('error', (error: NodeJS.ErrnoException) => finish({ outcome: 'network_error', detail: error.code ?? error.message }));
      request.end(body);
    });
  }

  /** Drops a deleted webhook's connections. */
  forget(webhookId: string): void {
    const agents = this.agents.get(webhookId);
    agents?.http.destroy();
    agents?.https.destroy();
    this.agents.delete(webhookId);
  }

  close(): void {
    for (const id of [...this.agents.keys()]) this.forget(id);
  }

  private agentsFor(webhookId: string) {
    let agents = this.agents.get(webhookId);
    if (!agents) {
      const options = { keepAlive: true, maxSockets: this.maxSockets, timeout: 30_000 };
      agents = { http: new http.Agent(options), https: new https.Agent(options) };
      this.agents.set(webhookId, agents);
    }
    return agents;
  }
}
