/**
 * The one raw HTTP client of the tests, over node:http: nothing is normalised (fetch would
 * resolve "../" and set its own headers), and with a keep-alive agent it is several times
 * cheaper per request than fetch, which matters when one test process plays thousands of users.
 */
import http from 'node:http';

export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  /** Sent as it is; several chunks are written one after another, honouring back-pressure. */
  body?: string | Buffer | Buffer[];
  /** Default: a fresh connection per request. */
  agent?: http.Agent | false;
}

export function request(url: string, init: RawRequest = {}): Promise<RawReply> {
  const chunks = init.body === undefined ? [] : Array.isArray(init.body) ? init.body : [Buffer.from(init.body)];
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: init.agent ?? false }, (res) => {
      const received: Buffer[] = [];
      res.on('data', (chunk: Buffer) => received.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(received) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      for (const chunk of chunks) if (!req.write(chunk)) await new Promise((drained) => req.once('drain', drained));
      req.end();
    })();
  });
}

/** POST a JSON body to `${baseUrl}/graphql`, with a content-length as browsers send it. */
export function postJson(baseUrl: string, payload: unknown, init: Omit<RawRequest, 'method' | 'body'> = {}): Promise<RawReply> {
  const body = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return request(`${baseUrl}/graphql`, {
    ...init,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': body.length, ...init.headers },
    body,
  });
}
