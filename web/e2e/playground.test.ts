/**
 * The GraphiQL playground in headless Chromium against the real service on its development
 * defaults: with the run's development tokens offered above the editor, it creates a coupon (admin),
 * claims it (user), and a subscription typed and run at once streams stock over the WebSocket.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLAIM, devToken, gql, launchChromium, requireChromium, SCREENSHOTS, startService, type Service } from './support';

let service: Service;
let browser: Browser;

beforeAll(async () => {
  // Before anything starts: without Chromium the suite fails at once, naming the install command.
  requireChromium();
  browser = await launchChromium();
  service = await startService();
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

/** Replaces the editor's text as a person pasting would, and runs it at once (Ctrl+Enter). */
async function typeAndRun(page: Page, text: string): Promise<void> {
  await page.locator('.graphiql-query-editor .CodeMirror').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Control+Enter');
}

const response = (page: Page) => page.evaluate(() => (document.querySelector('.result-window .CodeMirror') as any)?.CodeMirror.getValue() ?? '');

async function responseMatching(page: Page, pattern: RegExp): Promise<string> {
  await expect.poll(() => response(page), { timeout: 10_000 }).toMatch(pattern).catch(async (error) => {
    throw new Error(`${(error as Error).message}: ${await response(page)}`);
  });
  return response(page);
}

test('the playground creates a coupon with the admin token, claims it with the user token, and a subscription run right after it was typed streams stock over the WebSocket', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  const sockets: string[] = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  const httpSubscriptions: string[] = [];
  page.on('request', (request) => {
    const body = request.method() === 'POST' ? (JSON.parse(request.postData() ?? '{}') as { query?: string }) : {};
    if (/^\s*subscription\b/.test(body.query ?? '')) httpSubscriptions.push(body.query!);
  });
  await page.goto(`${service.url}/graphql`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  expect(await page.locator('#dev-token-bar input[value="admin"]').isChecked()).toBe(true);

  await typeAndRun(page, 'mutation Create {\n  createCoupon(input: { name: "Playground drop", totalQuantity: 10 }) { id remaining status }\n}');
  const created = JSON.parse(await responseMatching(page, /"id": "[0-9a-f]{24}"/)) as { data: { createCoupon: { id: string } } };
  const couponId = created.data.createCoupon.id;

  await page.locator('#dev-token-bar input[value="user"]').check();
  await typeAndRun(page, `mutation Claim {\n  claimCoupon(couponId: "${couponId}") { status remaining issuance { sequence } }\n}`);
  await responseMatching(page, /"status": "ISSUED"/);

  await typeAndRun(page, `subscription Stock {\n  stockChanged(couponId: "${couponId}") { remaining status serverTime }\n}`);
  await responseMatching(page, /"remaining": 9/);
  const claimed = await gql(service, CLAIM, { couponId }, await devToken(service, 'someone-else'));
  expect(claimed.data.claimCoupon.status).toBe('ISSUED');
  await responseMatching(page, /"remaining": 8/);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'playground.png') });

  expect(httpSubscriptions).toEqual([]);
  expect(sockets.some((url) => new URL(url).pathname === '/graphql')).toBe(true);
  await page.close();
});
