/**
 * The HTTP side under abuse that costs an attacker little: request bodies trickled a byte at a
 * time, floods of GET /metrics, and client mistakes that must not page an operator. The service
 * runs as a child process, as an operator runs it, so the attack's own clients do not share (and
 * distort) its event loop; claims are counted while each attack runs.
 */
import http from 'node:http';
import net from 'node:net';
import { freePort } from '../../src/infra/embedded';
import { runUntilExit, startChildService, type ChildService } from '../support/child-service';
import { createCoupon } from '../support/graphql';
import { adminToken, startStack, startTestService, userToken, type Stack } from '../support/stack';
import { claimAs, clientAgent, postGraphQL, summarize, within, type ClaimAnswer } from './faults/contract';

let stack: Stack;
const started: ChildService[] = [];

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await Promise.all(started.map((service) => service.stop()));
  await stack?.stop();
});

async function childService(env: Record<string, string> = {}): Promise<ChildService> {
  const service = await startChildService({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env });
  started.push(service);
  return service;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Real users claiming one after another on `loops` connections for `durationMs`: every claim is
 * a new user, so each answer is ISSUED or a refusal.
 */
async function claimsDuring(service: ChildService, couponId: string, name: string, loops: number, durationMs: number): Promise<ClaimAnswer[]> {
  const answers: ClaimAnswer[] = [];
  const until = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      for (let i = 0; performance.now() < until; i++) {
        const user = `${name}-${loop}-${i}`;
        answers.push(await claimAs(service.url, couponId, user, userToken(user)));
        await pause(50);
      }
    }),
  );
  return answers;
}

describe('request bodies trickled a byte at a time', () => {
  const MAX_CONCURRENT = 16;
  const ATTACKERS = 40;

  /**
   * Keeps `count` sockets each sending POST /graphql headers announcing 1,000 bytes, then one byte
   * a second; a socket the server closes is replaced at once. Records how long each lived and
   * what the server answered it.
   */
  function trickle(port: number, count: number) {
    let running = true;
    const lifetimes: number[] = [];
    const statuses: string[] = [];
    const open = new Set<net.Socket>();
    const connect = () => {
      if (!running) return;
      const opened = performance.now();
      const socket = net.connect(port, '127.0.0.1');
      open.add(socket);
      let received = '';
      const drip = setInterval(() => socket.writable && socket.write('x'), 1000);
      socket.on('connect', () => socket.write('POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{'));
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(drip);
        open.delete(socket);
        if (!running) return;
        lifetimes.push(performance.now() - opened);
        statuses.push(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 'none');
        connect();
      });
    };
    for (let i = 0; i < count; i++) connect();
    return {
      lifetimes,
      statuses,
      stop: () => {
        running = false;
        for (const socket of open) socket.destroy();
      },
    };
  }

  test(`${ATTACKERS} sockets trickling their bodies hold no admission slot (of ${MAX_CONCURRENT}): claims meanwhile are served, and each trickler hears 408 and is cut within seconds`, async () => {
    const service = await childService({ MAX_CONCURRENT_REQUESTS: String(MAX_CONCURRENT), MAX_QUEUE_WAIT_MS: '1000' });
    const couponId = await createCoupon(service.url, adminToken(), { name: 'Trickle', totalQuantity: 100_000 });
    const attack = trickle(service.port, ATTACKERS);
    let answers: ClaimAnswer[];
    try {
      await pause(500);
      answers = await claimsDuring(service, couponId, 'trickle', 4, 8000);
    } finally {
      attack.stop();
    }

    const served = answers.filter((a) => a.status === 'ISSUED');
    const lifetimes = attack.lifetimes.slice().sort((a, b) => a - b);
    console.log(
      `trickled bodies: ${ATTACKERS} attacking sockets, ${answers.length} claims during 8 s: ${JSON.stringify(summarize(answers))}; ` +
        `${attack.lifetimes.length} attacking sockets closed by the server (answers ${JSON.stringify(summarize(attack.statuses.map((s) => ({ user: '', ms: 0, code: s }))))}), ` +
        `lifetime median ${lifetimes[lifetimes.length >> 1]?.toFixed(0)} / max ${lifetimes.at(-1)?.toFixed(0)} ms`,
    );
    expect(served.length).toBeGreaterThanOrEqual(answers.length * 0.95);
    expect(answers.length).toBeGreaterThanOrEqual(20);
    // Every attacking socket was answered 408 and closed well inside the 8 s, and replaced.
    expect(attack.lifetimes.length).toBeGreaterThanOrEqual(ATTACKERS * 2);
    expect(attack.statuses.filter((s) => s !== '408')).toEqual([]);
    expect(lifetimes.at(-1)).toBeLessThan(4000);
  }, 60_000);
});

describe('GET /metrics', () => {
  /** `concurrency` clients scraping /metrics back to back on keep-alive connections until stopped. */
  function scrapeFlood(url: string, concurrency: number) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    let running = true;
    let scrapes = 0;
    let failures = 0;
    const scrape = () =>
      new Promise<void>((resolve) => {
        http
          .get(`${url}/metrics`, { agent }, (response) => {
            response.resume();
            response.on('end', () => {
              scrapes += 1;
              resolve();
            });
          })
          .on('error', () => {
            failures += 1;
            resolve();
          });
      });
    const loops = Array.from({ length: concurrency }, async () => {
      while (running) await scrape();
    });
    return {
      stop: async () => {
        running = false;
        await Promise.all(loops);
        agent.destroy();
        return { scrapes, failures };
      },
    };
  }

  test('a flood of scrapes on the main port does not get claims shed', async () => {
    const service = await childService();
    const couponId = await createCoupon(service.url, adminToken(), { name: 'Scraped', totalQuantity: 100_000 });
    const flood = scrapeFlood(service.url, 256);
    const started = performance.now();
    let answers: ClaimAnswer[];
    let flooded = { scrapes: 0, failures: 0 };
    try {
      await pause(500);
      answers = await claimsDuring(service, couponId, 'scraped', 2, 6000);
    } finally {
      flooded = await flood.stop();
    }
    const { scrapes, failures } = flooded;
    const seconds = (performance.now() - started + 500) / 1000;
    const shed = answers.filter((a) => a.code === 'SERVICE_UNAVAILABLE');
    console.log(
      `metrics flood: 256 concurrent scrapers, ${scrapes} scrapes (${(scrapes / seconds).toFixed(0)}/s, ${failures} failed); ` +
        `${answers.length} claims meanwhile: ${JSON.stringify(summarize(answers))}`,
    );
    expect(shed.length).toBeLessThanOrEqual(answers.length * 0.05);
    expect(answers.filter((a) => a.status === 'ISSUED').length).toBeGreaterThanOrEqual(answers.length * 0.95);
    expect(answers.length).toBeGreaterThanOrEqual(10);
    expect(scrapes / seconds).toBeGreaterThan(100);
  }, 60_000);

  const get = async (url: string) => {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { status: response.status, body: await response.text() };
  };

  test('with METRICS_PORT, /metrics is served only on that port (404 on the main port), which closes with the service', async () => {
    const metricsPort = await freePort();
    const service = await startTestService(stack, { METRICS_PORT: String(metricsPort) });
    try {
      const onMetricsPort = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(onMetricsPort.status).toBe(200);
      expect(onMetricsPort.body).toMatch(/^# HELP coupon_claims_total/m);
      expect((await get(`http://127.0.0.1:${metricsPort}/graphql`)).status).toBe(404);
      expect((await get(`${service.url}/metrics`)).status).toBe(404);
      expect((await get(`${service.url}/healthz`)).status).toBe(200);
    } finally {
      await service.stop();
    }
    await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
  });

  test('a METRICS_PORT already taken stops the start with one line naming METRICS_PORT', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      for (const workers of ['1', '2']) {
        const exit = await runUntilExit({ redisUrl: stack.redis.url, mongoUri: stack.mongo.url, env: { METRICS_PORT: String(port), WORKERS: workers } });
        expect(exit.code).not.toBe(0);
        expect(exit.stderr.trim()).toBe(`METRICS_PORT: port ${port} is already in use`);
      }
    } finally {
      taken.close();
    }
  }, 60_000);

  test('with WORKERS=2 and METRICS_PORT, the primary serves every worker\'s metrics there, and the main port says 404', async () => {
    const metricsPort = await freePort();
    const service = await childService({ WORKERS: '2', METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info' });
    await within(30_000, 'all workers ready', async () => service.logLines(/^coupon service ready$/).length === 1);
    const couponId = await createCoupon(service.url, adminToken(), { name: 'Workers metrics', totalQuantity: 100 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => claimAs(service.url, couponId, `wm-${i}`, userToken(`wm-${i}`), new http.Agent())));
    expect(answers.filter((a) => a.status === 'ISSUED')).toHaveLength(20);
    expect((await get(`${service.url}/metrics`)).status).toBe(404);
    await within(5_000, 'the 20 claims counted', async () => {
      const { status, body } = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      return status === 200 && /^coupon_claims_total\{outcome="ISSUED"\} 20$/m.test(body);
    });
  }, 90_000);
});

describe('client mistakes are answered as such and not logged as failures', () => {
  test('null for a nullable variable with a default, used where the argument is required: BAD_USER_INPUT on both paths, no error line', async () => {
    const service = await childService();
    const query = 'query($id: ID = "650000000000000000000000") { coupon(id: $id) { id } }';
    // The third is answered compiled (the document was accepted twice).
    for (let i = 0; i < 3; i++) {
      const reply = await postGraphQL(service.url, query, { id: null }, undefined, clientAgent);
      expect(reply.errors).toEqual([{ message: 'Argument "id" of non-null type "ID!" must not be null.', path: ['coupon'], extensions: { code: 'BAD_USER_INPUT' } }]);
    }
    await pause(200);
    expect(service.logLines(/graphql request failed/)).toEqual([]);
  }, 60_000);
});
