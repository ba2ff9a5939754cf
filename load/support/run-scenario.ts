/**
 * `npm run scenario -- <spike|steady|drop-with-watchers> [--stock N]` (in load/): one Artillery
 * scenario against a fresh service (Redis strategy unless --strategy db-lock or db-atomic) on fresh embedded
 * servers, with a new coupon; then Artillery's summary and what MongoDB holds for the coupon.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LOAD_DIR, runArtillery } from './artillery';
import { auditIssuances } from './mongo-audit';
import { createCoupon, readCoupon, startServiceProcess } from './service-process';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { stock: { type: 'string', default: '1000' }, strategy: { type: 'string', default: 'redis' } },
});
const scenario = positionals[0];
const stock = Number(args.stock);

async function main(): Promise<void> {
  if (!scenario || !fs.existsSync(path.join(LOAD_DIR, 'scenarios', `${scenario}.yml`))) {
    throw new Error(`usage: npm run scenario -- <${fs.readdirSync(path.join(LOAD_DIR, 'scenarios')).filter((f) => f.endsWith('.yml')).map((f) => f.slice(0, -4)).join('|')}> [--stock N] [--strategy redis|db-lock|db-atomic]`);
  }
  const results = path.join(LOAD_DIR, 'results');
  fs.mkdirSync(results, { recursive: true });
  const service = await startServiceProcess({ env: { CLAIM_STRATEGY: args.strategy }, logFile: path.join(results, `service-${scenario}.log`) });
  try {
    const couponId = await createCoupon(service, { name: `Scenario ${scenario}`, totalQuantity: stock });
    process.stdout.write(`${scenario}: coupon ${couponId} (stock ${stock}) on ${service.url}, strategy ${args.strategy}\n`);
    const output = await runArtillery({ scenario: `${scenario}.yml`, service, couponId, output: path.join(results, `${scenario}.json`), limitSeconds: 600 });
    const log = fs.readFileSync(output.replace(/\.json$/, '.log'), 'utf8');
    process.stdout.write(log.slice(log.lastIndexOf('Summary report')));
    process.stdout.write(`\nMongoDB: ${JSON.stringify(await auditIssuances(service.mongoUri, couponId, stock))}\n`);
    process.stdout.write(`coupon after: ${JSON.stringify(await readCoupon(service, couponId))}\n`);
  } finally {
    await service.stop();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
