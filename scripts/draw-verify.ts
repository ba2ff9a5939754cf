/**
 * npm run draw:verify -- <draw.csv> <seed> <commitment> [units]
 *   Says whether a published opening draw is honest (src/draw/verify-draw.ts): exit 0 if so, 1 if not.
 * npm run draw:verify -- --key <seed> <userId>
 *   Prints a user's own rank key, HMAC-SHA256(seed, userId): lower keys rank first.
 */
import { readFileSync } from 'node:fs';
import { isSeedHex, rankKeyOf } from '../src/coupons/opening-draw';
import { parseDrawCsv, verifyDraw } from '../src/draw/verify-draw';

function main(args: string[]): number {
  if (args[0] === '--key' && args.length === 3) {
    const seed = args[1]!.toLowerCase();
    if (!isSeedHex(seed)) return fail('the seed must be 64 hexadecimal digits');
    console.log(rankKeyOf(Buffer.from(seed, 'hex'), args[2]!));
    return 0;
  }
  if (args.length < 3 || args.length > 4) {
    return fail('usage: npm run draw:verify -- <draw.csv> <seed> <commitment> [units]\n       npm run draw:verify -- --key <seed> <userId>');
  }
  const [file, seed, commitment, units] = args as [string, string, string, string | undefined];
  let rows;
  try {
    rows = parseDrawCsv(readFileSync(file, 'utf8'));
  } catch (error) {
    return fail(`${file}: ${(error as Error).message}`);
  }
  const verdict = verifyDraw(rows, seed, commitment, units === undefined ? undefined : Number(units));
  if (verdict.honest) {
    console.log(`HONEST: the seed matches the commitment, and all ${verdict.entrants} entrants are ranked by HMAC-SHA256(seed, userId); the ${verdict.winners} winners are exactly the lowest rank keys.`);
    return 0;
  }
  console.log(`NOT HONEST: ${verdict.problems.length} problem(s) found.`);
  for (const problem of verdict.problems.slice(0, 50)) console.log(`  - ${problem}`);
  if (verdict.problems.length > 50) console.log(`  … and ${verdict.problems.length - 50} more`);
  return 1;
}

function fail(message: string): number {
  console.error(message);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
