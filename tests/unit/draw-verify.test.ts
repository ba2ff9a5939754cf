import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { drawCommitmentOf, newDrawSeed, rankKeyOf } from '../../src/coupons/opening-draw';
import { drawCsvRow, DRAW_CSV_HEADER } from '../../src/http/draw-csv';
import { parseDrawCsv, verifyDraw } from '../../src/draw/verify-draw';

/** A draw.csv as the service exports it: entrants in rank-key order, the first `units` winning. */
function honestCsv(seedHex: string, users: string[], units: number): string {
  const seed = Buffer.from(seedHex, 'hex');
  const ranked = users.map((userId) => ({ userId, rankKey: rankKeyOf(seed, userId) })).sort((a, b) => (a.rankKey < b.rankKey ? -1 : 1));
  return DRAW_CSV_HEADER + '\r\n' + ranked.map((e, i) => drawCsvRow({ rank: i + 1, userId: e.userId, rankKey: e.rankKey, won: i < units, sequence: i < units ? i + 1 : null })).join('');
}

const users = ['ann', 'bob', '=cmd()', 'dan, jr', 'eve "x"', 'zoë', ...Array.from({ length: 30 }, (_, i) => `user-${i}`)];

describe('verifying a published draw', () => {
  const { seed, commitment } = newDrawSeed();

  test('an honest draw.csv is honest, user ids with commas, quotes and formula signs included', () => {
    const verdict = verifyDraw(parseDrawCsv(honestCsv(seed, users, 5)), seed, commitment, 5);
    expect(verdict).toEqual({ honest: true, entrants: users.length, winners: 5, problems: [] });
  });

  test('a seed that does not match the commitment is caught', () => {
    const other = newDrawSeed().seed;
    expect(verifyDraw(parseDrawCsv(honestCsv(other, users, 5)), other, commitment).problems).toContain('the seed does not match the commitment: SHA-256(seed) differs');
  });

  test('a winner swapped for a loser is caught', () => {
    const rows = parseDrawCsv(honestCsv(seed, users, 5));
    rows[4]!.won = false;
    rows[4]!.sequence = null;
    rows[9]!.won = true;
    rows[9]!.sequence = 5;
    const verdict = verifyDraw(rows, seed, commitment, 5);
    expect(verdict.honest).toBe(false);
    expect(verdict.problems.join('\n')).toMatch(/rank 5 .*lost although a higher-ranked entrant won|rank 10 .*won although a lower-ranked entrant lost/);
  });

  test('a forged rank key, an entrant moved up, or fewer winners than units are caught', () => {
    const forged = parseDrawCsv(honestCsv(seed, users, 5));
    forged[0]!.rankKey = '0'.repeat(64);
    expect(verifyDraw(forged, seed, commitment).problems.join('\n')).toMatch(/rankKey is not HMAC-SHA256/);
    const moved = parseDrawCsv(honestCsv(seed, users, 5));
    [moved[0], moved[7]] = [moved[7]!, moved[0]!];
    expect(verifyDraw(moved, seed, commitment).honest).toBe(false);
    expect(verifyDraw(parseDrawCsv(honestCsv(seed, users, 3)), seed, commitment, 5).problems).toEqual(['3 winners, but 5 units were to be drawn']);
  });

  test('npm run draw:verify says HONEST (exit 0) for the honest file and NOT HONEST (exit 1) for a tampered one', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'draw-verify-'));
    const honest = path.join(dir, 'honest.csv');
    const tampered = path.join(dir, 'tampered.csv');
    const text = honestCsv(seed, users, 5);
    writeFileSync(honest, text);
    const lines = text.split('\r\n');
    // The 6th ranked entrant marked as a winner in place of the 5th.
    lines[5] = lines[5]!.replace(/,true,5$/, ',false,');
    lines[6] = lines[6]!.replace(/,false,$/, ',true,5');
    writeFileSync(tampered, lines.join('\r\n'));
    const run = (file: string) => {
      try {
        return { code: 0, out: execFileSync('npx', ['tsx', 'scripts/draw-verify.ts', file, seed, drawCommitmentOf(seed), '5'], { encoding: 'utf8' }) };
      } catch (error) {
        const e = error as { status: number; stdout: string };
        return { code: e.status, out: e.stdout };
      }
    };
    expect(run(honest)).toMatchObject({ code: 0, out: expect.stringMatching(/^HONEST/) });
    expect(run(tampered)).toMatchObject({ code: 1, out: expect.stringMatching(/^NOT HONEST/) });
  }, 60_000);
});
