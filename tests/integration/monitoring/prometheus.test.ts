/**
 * The monitoring against a real Prometheus (Debian's prometheus package; skipped with a line at
 * the end of the run when it is missing, failed with CI=true) scraping a running service every second:
 * - every metric the rules and the dashboard read is one the service exports;
 * - every dashboard query parses and returns data after a small drop;
 * - stopping Redis fires CouponRedisDown and starting it again resolves it; stalling MongoDB
 *   (SIGSTOP) fires CouponMongoDown and resuming it (SIGCONT) resolves it.
 * The rules are the production file with every `for:` shortened to 2 s in a generated copy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startRedisServer, type EmbeddedServer } from '../../../src/infra/embedded';
import type { RunningService } from '../../../src/service';
import { CLAIM, createCoupon, gql } from '../../support/graphql';
import { dashboardTargets, exposedNames, metricNamesIn, readRules, rulesWithShortFor } from '../../support/prometheus';
import { requiresTool } from '../../support/required-tools';
import { adminToken, startStack, startTestService, userToken, type Stack } from '../../support/stack';

jest.setTimeout(120_000);

const prometheusTool = requiresTool('prometheus', 'prometheus');

let stack: Stack;
let redis: EmbeddedServer;
let service: RunningService;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let workDir: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function promApi<T>(pathAndQuery: string): Promise<{ status: string; data: T; error?: string }> {
  const response = await fetch(`${promUrl}${pathAndQuery}`);
  return (await response.json()) as { status: string; data: T; error?: string };
}

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

async function alertState(name: string): Promise<string> {
  const { data } = await promApi<{ alerts: Alert[] }>('/api/v1/alerts');
  const alert = data.alerts.find((a) => a.labels.alertname === name);
  return alert?.state ?? 'inactive';
}

async function waitForAlert(name: string, state: 'firing' | 'inactive', timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const current = await alertState(name);
    if (current === state) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${name} still ${current} after ${timeoutMs} ms (waiting for ${state})`);
    await sleep(500);
  }
}

prometheusTool.describe('monitoring with a real Prometheus', () => {
  beforeAll(async () => {
    const prometheusBinary = prometheusTool.path();
    stack = await startStack();
    redis = stack.redis;
    service = await startTestService(stack, { RECONCILE_INTERVAL_MS: '1000' });

    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coupon-prometheus-'));
    fs.writeFileSync(path.join(workDir, 'rules.yml'), rulesWithShortFor(2));
    fs.writeFileSync(
      path.join(workDir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'rule_files: [rules.yml]',
        'scrape_configs:',
        '  - job_name: coupon',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${service.port}']`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      prometheusBinary,
      [`--config.file=${path.join(workDir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(workDir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    prometheus.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (!(await fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false))) {
      if (prometheus.exitCode !== null || Date.now() > deadline) throw new Error(`prometheus did not start:\n${log}`);
      await sleep(200);
    }
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await service?.stop();
    await Promise.all([redis?.stop(), stack?.mongo.stop()]);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  test('every metric the alerting rules and the dashboard read is one the service exports', async () => {
    const exposed = exposedNames(await (await fetch(`${service.url}/metrics`)).text());
    const rules = readRules().groups.flatMap((group) => group.rules);
    const recorded = new Set(rules.flatMap((rule) => (rule.record ? [rule.record] : [])));
    const expressions = [...rules.map((rule) => rule.expr), ...dashboardTargets().map((target) => target.expr)];
    const read = [...new Set(expressions.flatMap(metricNamesIn))];
    expect(read.length).toBeGreaterThan(10);
    expect(read.filter((name) => !exposed.has(name) && !recorded.has(name))).toEqual([]);
  });

  test('every dashboard query parses and returns data after a drop', async () => {
    const admin = await adminToken();
    const couponId = await createCoupon(service.url, admin, { name: 'Monitored drop', totalQuantity: 20 });
    const users = Array.from({ length: 60 }, (_, i) => `watched-${i}`);
    await Promise.all([...users, ...users.slice(0, 10)].map(async (user) => gql(service.url, CLAIM, { couponId }, await userToken(user))));

    const targets = dashboardTargets();
    expect(targets.length).toBeGreaterThanOrEqual(12);
    const empty = async () => {
      const missing: string[] = [];
      for (const { panel, expr } of targets) {
        const reply = await promApi<{ result: unknown[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
        expect({ panel, expr, status: reply.status, error: reply.error }).toEqual({ panel, expr, status: 'success', error: undefined });
        if (reply.data.result.length === 0) missing.push(`${panel}: ${expr}`);
      }
      return missing;
    };
    // Rates need two scrapes after the drop; scrapes come every second.
    const deadline = Date.now() + 20_000;
    let missing = await empty();
    while (missing.length > 0 && Date.now() < deadline) {
      await sleep(1000);
      missing = await empty();
    }
    expect(missing).toEqual([]);
  });

  test('stopping Redis fires CouponRedisDown, and starting it again resolves it', async () => {
    await waitForAlert('CouponRedisDown', 'inactive');
    const port = redis.port;
    await redis.stop();
    await waitForAlert('CouponRedisDown', 'firing');
    redis = await startRedisServer({ port });
    await waitForAlert('CouponRedisDown', 'inactive');
  });

  test('stalling MongoDB (SIGSTOP) fires CouponMongoDown, and resuming it resolves it', async () => {
    await waitForAlert('CouponMongoDown', 'inactive');
    stack.mongo.signal('SIGSTOP');
    try {
      await waitForAlert('CouponMongoDown', 'firing');
    } finally {
      stack.mongo.signal('SIGCONT');
    }
    await waitForAlert('CouponMongoDown', 'inactive', 45_000);
  });
});
