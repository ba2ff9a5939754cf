import { Types } from 'mongoose';
import { csvCell } from '../../src/http/csv-export';
import { csvRow, CSV_HEADER } from '../../src/http/issuances-csv';
import type { IssuanceDocument } from '../../src/mongo/models';

describe('CSV cells', () => {
  test('plain values pass as they are; numbers and dates are written plainly', () => {
    expect(csvCell('user-42')).toBe('user-42');
    expect(csvCell(7)).toBe('7');
    expect(csvCell(new Date('2026-03-01T10:00:00Z'))).toBe('2026-03-01T10:00:00.000Z');
    expect(csvCell(null)).toBe('');
  });

  test('commas, quotes and line breaks are quoted, quotes doubled', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
  });

  test('a cell a spreadsheet would run as a formula is prefixed with a quote', () => {
    for (const text of ['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx']) expect(csvCell(text).replace(/^"/, '').startsWith("'")).toBe(true);
    expect(csvCell('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csvCell('a=b')).toBe('a=b');
  });

  test("a row follows the header's columns, an issuance without status counting as ACTIVE", () => {
    const doc = { _id: new Types.ObjectId(), couponId: new Types.ObjectId(), userId: 'u,1', sequence: 3, issuedAt: new Date('2026-03-01T10:00:00Z') } as IssuanceDocument;
    expect(CSV_HEADER.split(',')).toEqual(['sequence', 'userId', 'issuanceId', 'status', 'issuedAt', 'redeemedAt', 'orderId']);
    expect(csvRow(doc)).toBe(`3,"u,1",${doc._id.toHexString()},ACTIVE,2026-03-01T10:00:00.000Z,,\r\n`);
  });
});
