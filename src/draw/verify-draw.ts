/**
 * Checks a published opening draw (the draw.csv export, the revealed seed and the commitment
 * published before the drop): the logic of `npm run draw:verify`, kept here so that it is tested
 * and uses the very rules the service draws by (src/coupons/opening-draw.ts).
 *
 * Honest means: the seed hashes to the commitment; every row's rankKey is HMAC-SHA256(seed,
 * userId); the rows are in rank-key order with ranks 1..n and each user once; the winners are
 * exactly the first k rows (k = units, when given, capped at n); their sequences rise with the rank.
 */
import { drawCommitmentOf, isSeedHex, rankKeyOf } from '../coupons/opening-draw';

export const DRAW_CSV_COLUMNS = ['rank', 'userId', 'rankKey', 'won', 'sequence'] as const;

export interface DrawRow {
  rank: number;
  userId: string;
  rankKey: string;
  won: boolean;
  sequence: number | null;
}

export interface Verdict {
  honest: boolean;
  entrants: number;
  winners: number;
  problems: string[];
}

/** RFC 4180 records; a cell the export defused with a leading quote (CSV injection) is restored. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  const endCell = () => {
    record.push(undefuse(cell));
    cell = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') endCell();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endCell();
      records.push(record);
      record = [];
    } else cell += c;
  }
  if (cell !== '' || record.length > 0) {
    endCell();
    records.push(record);
  }
  return records;
}

const undefuse = (cell: string) => (/^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell);

export function parseDrawCsv(text: string): DrawRow[] {
  const [header, ...rows] = parseCsv(text);
  if (!header || header.join(',') !== DRAW_CSV_COLUMNS.join(',')) throw new Error(`not a draw.csv: the header must be ${DRAW_CSV_COLUMNS.join(',')}`);
  return rows.map((cells, i) => {
    if (cells.length !== 5) throw new Error(`row ${i + 2}: expected 5 cells, found ${cells.length}`);
    const [rank, userId, rankKey, won, sequence] = cells as [string, string, string, string, string];
    return { rank: Number(rank), userId, rankKey, won: won === 'true', sequence: sequence === '' ? null : Number(sequence) };
  });
}

export function verifyDraw(rows: DrawRow[], seedHex: string, commitment: string, units?: number): Verdict {
  const problems: string[] = [];
  const winners = rows.filter((row) => row.won).length;
  const verdict = () => ({ honest: problems.length === 0, entrants: rows.length, winners, problems });
  const seed = seedHex.trim().toLowerCase();
  if (!isSeedHex(seed)) {
    problems.push('the seed is not 64 hexadecimal digits');
    return verdict();
  }
  if (drawCommitmentOf(seed) !== commitment.trim().toLowerCase()) problems.push('the seed does not match the commitment: SHA-256(seed) differs');
  const key = Buffer.from(seed, 'hex');
  const seen = new Set<string>();
  let previousKey = '';
  let previousSequence = 0;
  rows.forEach((row, i) => {
    const line = `rank ${row.rank} (${JSON.stringify(row.userId)})`;
    if (row.rank !== i + 1) problems.push(`${line}: ranks must run 1, 2, 3, … in order; found ${row.rank} at position ${i + 1}`);
    if (seen.has(row.userId)) problems.push(`${line}: the user appears more than once`);
    seen.add(row.userId);
    const expected = rankKeyOf(key, row.userId);
    if (row.rankKey !== expected) problems.push(`${line}: rankKey is not HMAC-SHA256(seed, userId) (expected ${expected})`);
    if (i > 0 && !(expected > previousKey)) problems.push(`${line}: not in rank-key order`);
    previousKey = expected;
    const shouldWin = i < winners;
    if (row.won !== shouldWin) problems.push(`${line}: ${row.won ? 'won although a lower-ranked entrant lost' : 'lost although a higher-ranked entrant won'}`);
    if (row.won) {
      if (row.sequence === null || !Number.isInteger(row.sequence) || row.sequence <= previousSequence) problems.push(`${line}: the winners' sequences must rise with the rank`);
      previousSequence = row.sequence ?? previousSequence;
    } else if (row.sequence !== null) problems.push(`${line}: an entrant who lost has a sequence`);
  });
  if (units !== undefined && winners !== Math.min(units, rows.length)) problems.push(`${winners} winners, but ${Math.min(units, rows.length)} units were to be drawn`);
  return verdict();
}
