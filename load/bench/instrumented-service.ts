/**
 * Bench-only entry point: the real service, started through the composition root exactly as
 * src/main.ts does (Redis strategy), with timers wrapped around the stages of a claim so the
 * benchmark can say where a claim's time goes. Nothing here is used in production.
 *
 * Stages (wall time per claim, measured in this process):
 *   http      request received -> response finished (Node's http diagnostics channels)
 *   jwt       Authenticator.viewerFrom (HS256 verify)
 *   resolver  ClaimService.claim (everything below, plus the catalog lookup)
 *   redis     the claim script's round trip (couponClaim)
 *   durable   ClaimService.settle: waiting for the group commit and its acknowledgement
 *   batch     one Issuance.bulkWrite (per batch, with its size)
 * and a CPU profile (node:inspector) of the same window, to split the GraphQL layer into parse,
 * validate and execute.
 *
 * Driven over IPC by load/bench/run.ts: { cmd: 'start' } resets and starts measuring,
 * { cmd: 'stop', profileFile } stops and answers { stages, batches }.
 */
import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startService } from '../../src/service';
import type { ClaimService } from '../../src/claims/claim-service';

type Stage = 'http' | 'jwt' | 'resolver' | 'redis' | 'durable';

const samples: Record<Stage, number[]> = { http: [], jwt: [], resolver: [], redis: [], durable: [] };
const batches: Array<{ size: number; ms: number }> = [];
let measuring = false;

/** Wraps `fn` to record its wall time under `stage`, until its promise settles when it returns one. */
function timed<A extends unknown[], R>(stage: Stage, fn: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    const started = performance.now();
    const record = () => {
      if (measuring) samples[stage].push(performance.now() - started);
    };
    try {
      const result = fn(...args);
      if (result instanceof Promise) return result.finally(record) as R;
      record();
      return result;
    } catch (error) {
      record();
      throw error;
    }
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const service = await startService({ ...config, redis: config.redis!, mongoUri: config.mongoUri!, jwtSecret: config.jwtSecret! }, logger);

  const started = new WeakMap<IncomingMessage, number>();
  diagnostics.subscribe('http.server.request.start', (message) => started.set((message as { request: IncomingMessage }).request, performance.now()));
  diagnostics.subscribe('http.server.response.finish', (message) => {
    const begin = started.get((message as { request: IncomingMessage }).request);
    if (measuring && begin !== undefined) samples.http.push(performance.now() - begin);
  });

  const { authenticator } = service.services;
  authenticator.viewerFrom = timed('jwt', authenticator.viewerFrom.bind(authenticator));
  const claims = service.services.claims as ClaimService;
  claims.claim = timed('resolver', claims.claim.bind(claims));
  // Own-property overrides: ClaimService calls this.settle, the gate calls this.redis.couponClaim.
  claims.settle = timed('durable', claims.settle.bind(claims));
  // ioredis copies the client's script functions into every auto-pipeline it creates, so the
  // wrapper is copied too: only the call on the client itself is timed and goes through the
  // pipeline; the pipeline's own call must reach the original with the pipeline as `this`.
  const { redis } = service;
  const couponClaim = redis.couponClaim as (...args: unknown[]) => Promise<unknown>;
  const timedClaim = timed('redis', (...args: unknown[]) => couponClaim.apply(redis, args));
  redis.couponClaim = function (this: unknown, ...args: unknown[]) {
    return this === redis ? timedClaim(...args) : couponClaim.apply(this, args);
  } as typeof redis.couponClaim;
  const bulkWrite = service.models.Issuance.bulkWrite.bind(service.models.Issuance);
  service.models.Issuance.bulkWrite = (async (ops: Parameters<typeof bulkWrite>[0], options?: Parameters<typeof bulkWrite>[1]) => {
    const begin = performance.now();
    try {
      return await bulkWrite(ops, options);
    } finally {
      if (measuring) batches.push({ size: ops.length, ms: performance.now() - begin });
    }
  }) as typeof bulkWrite;

  const profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 200 });

  process.on('message', (message: { cmd: 'start' } | { cmd: 'stop'; profileFile: string }) => {
    void (async () => {
      if (message.cmd === 'start') {
        for (const stage of Object.keys(samples) as Stage[]) samples[stage] = [];
        batches.length = 0;
        await profiler.post('Profiler.start');
        measuring = true;
        process.send!({ ok: 'started' });
      } else {
        measuring = false;
        const { profile } = await profiler.post('Profiler.stop');
        fs.writeFileSync(message.profileFile, JSON.stringify(profile));
        process.send!({ ok: 'stopped', stages: samples, batches });
      }
    })();
  });
  process.once('SIGTERM', () => {
    profiler.disconnect();
    void service.stop().then(() => process.exit(0));
  });
}

main().catch((error: Error) => {
  process.stderr.write(`instrumented service failed: ${error.stack}\n`);
  process.exit(1);
});
