/**
 * `npx tsx load/bench/profile-claims.ts [--claims 20000] [--floor]`: a clean CPU profile of the
 * compiled service (node --cpu-prof, no instrumentation) answering sold-out claims from new users
 * over 50 connections, or with --floor of the node:http floor (floor-server.ts) answering the
 * same requests, then the CPU by layer and the functions with the most inclusive time. Run
 * `npm run bench -- --quick` once first: it compiles what this runs into load/results/build.
 * For looking at a change, not for reporting: the bench's figures are those.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Authenticator } from '../../src/access/auth';
import { createCoupon, ROOT, startServiceProcess } from '../support/service-process';
import { cpuByLayer, inclusiveTimes, type CpuProfile } from './profile';

const { values: args } = parseArgs({ options: { claims: { type: 'string', default: '20000' }, floor: { type: 'boolean', default: false } } });
const claims = Number(args.claims);
const BUILD_DIR = path.join(ROOT, 'load/results/build');
const PROFILE_DIR = path.join(ROOT, 'load/results', args.floor ? 'profile-floor' : 'profile-claims');
const CLAIM = 'mutation Claim($couponId: ID!) { claimCoupon(couponId: $couponId) { status remaining issuance { id sequence } } }';

async function hammer(url: string, couponId: string, tokens: string[]): Promise<void> {
  let next = 0;
  await autocannon({
    url: `${url}/graphql`,
    method: 'POST',
    connections: Math.min(50, tokens.length),
    amount: tokens.length,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: CLAIM, variables: { couponId } }),
    requests: [{ setupRequest: (request) => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } }) }],
  });
}

async function main(): Promise<void> {
  fs.rmSync(PROFILE_DIR, { recursive: true, force: true });
  fs.mkdirSync(PROFILE_DIR, { recursive: true });
  const profileArgs = ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--cpu-prof-interval=100'];
  if (args.floor) {
    const child = spawn(process.execPath, [...profileArgs, path.join(BUILD_DIR, 'load/bench/floor-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve) => child.stdout.on('data', (chunk: Buffer) => resolve(Number(/FLOOR_PORT=(\d+)/.exec(chunk.toString())?.[1]))));
    const auth = new Authenticator('floor');
    const tokens = Array.from({ length: claims }, (_, i) => auth.issue(`user-${i}`, { expiresInSeconds: 3600 }));
    await hammer(`http://127.0.0.1:${port}`, '650000000000000000000000', tokens);
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  } else {
    const service = await startServiceProcess({
      entry: 'load/results/build/src/main.js',
      nodeArgs: profileArgs,
      logFile: path.join(ROOT, 'load/results/profile-claims.log'),
      env: { NODE_ENV: 'production', WORKERS: '1' },
    });
    try {
      const goneId = await createCoupon(service, { name: 'Profile (gone)', totalQuantity: 1 });
      await hammer(service.url, goneId, [service.auth.issue('first', { expiresInSeconds: 3600 })]);
      const warm = Array.from({ length: 2000 }, (_, i) => service.auth.issue(`warm-${i}`, { expiresInSeconds: 3600 }));
      await hammer(service.url, goneId, warm);
      const tokens = Array.from({ length: claims }, (_, i) => service.auth.issue(`user-${i}`, { expiresInSeconds: 3600 }));
      await hammer(service.url, goneId, tokens);
    } finally {
      await service.stop();
    }
  }
  const file = fs.readdirSync(PROFILE_DIR).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const profile = JSON.parse(fs.readFileSync(path.join(PROFILE_DIR, file), 'utf8')) as CpuProfile;
  const cpu = cpuByLayer(profile, 25);
  const out = [`${(cpu.busyMs / 1000).toFixed(2)} s busy of ${(cpu.totalMs / 1000).toFixed(2)} s (whole process, start-up and warm-up included); profile ${path.relative(ROOT, path.join(PROFILE_DIR, file))}`, ''];
  for (const layer of cpu.layers) out.push(`${layer.ms.toFixed(0).padStart(7)} ms  ${layer.layer}`);
  out.push('', 'inclusive time:');
  for (const fn of inclusiveTimes(profile, 60)) out.push(`${fn.ms.toFixed(0).padStart(7)} ms  ${fn.functionName || '(anonymous)'}  ${fn.source}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`profile failed: ${error.stack}\n`);
  process.exit(1);
});
