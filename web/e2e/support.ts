/**
 * Browser-test support: the real service started as `npm start` starts it (development defaults:
 * embedded Redis and MongoDB-compatible server, a generated secret, so POST /dev/token works),
 * and Debian's Chromium driven by playwright-core. No browser is ever downloaded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A suite that needs Chromium and does not find it fails, with the install command: never skipped. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`);
}

export function launchChromium(): Promise<Browser> {
  requireChromium();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Service {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** `npm start` on a free port, with nothing configured: what a newcomer runs. */
export async function startService(env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'drop-e2e-'));
  const log = path.join(dir, 'service.log');
  const fd = openSync(log, 'w');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', fd, fd],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const output = () => readFileSync(log, 'utf8');
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited at start:\n${output()}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok && output().includes('Development tokens')) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not become ready in 90 s:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    url,
    output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export async function devToken(service: Service, sub: string, admin = false): Promise<string> {
  const reply = await fetch(`${service.url}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub, admin }) });
  if (!reply.ok) throw new Error(`POST /dev/token: HTTP ${reply.status}`);
  return ((await reply.json()) as { token: string }).token;
}

/**
 * One GraphQL request from the test itself, retried as a client retries when admission control
 * sheds it (HTTP 503 with retry-after, sent before anything of the request is run, so a retry is
 * always safe): with Chromium on the same cores, the service's event loop can run late while pages
 * load, and new requests are then refused.
 */
export async function gql<T = any>(service: Service, query: string, variables: Record<string, unknown>, token?: string): Promise<{ data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> }> {
  for (let attempt = 1; ; attempt++) {
    const reply = await fetch(`${service.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const retryAfter = reply.headers.get('retry-after');
    if (reply.status !== 503 || retryAfter === null || attempt === 5) return (await reply.json()) as never;
    await reply.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, Math.max(200, Number(retryAfter) * 1000)));
  }
}

export async function createCoupon(service: Service, input: { name: string; totalQuantity: number; startsAt?: string; endsAt?: string; openingDrawMs?: number }): Promise<string> {
  const admin = await devToken(service, 'e2e-admin', true);
  const reply = await gql<{ createCoupon: { id: string } }>(service, 'mutation ($input: CreateCouponInput!) { createCoupon(input: $input) { id } }', { input }, admin);
  if (!reply.data) throw new Error(`createCoupon: ${JSON.stringify(reply.errors)}`);
  return reply.data.createCoupon.id;
}

export const CLAIM = 'mutation ($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining } }';

/** docs/img with UPDATE_SCREENSHOTS=1 (to refresh the documentation's pictures), else web/test-results. */
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS ? path.join(ROOT, 'docs/img') : path.join(ROOT, 'web/test-results');
