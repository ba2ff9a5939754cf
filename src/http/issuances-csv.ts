/**
 * GET /admin/coupons/{id}/issuances.csv: every issuance of a coupon in sequence order, streamed
 * (src/http/csv-export.ts: back-pressure, concurrency limit, HEAD, cell escaping).
 */
import type { Logger } from 'pino';
import type { Services } from '../context';
import type { IssuanceDocument } from '../mongo/models';
import { toIssuanceRecord } from '../claims/issuance-writer';
import { createCsvExport, csvCell } from './csv-export';

export const CSV_HEADER = 'sequence,userId,issuanceId,status,issuedAt,redeemedAt,orderId';

export function csvRow(doc: IssuanceDocument): string {
  const issuance = toIssuanceRecord(doc);
  return [issuance.sequence, issuance.userId, issuance.id, issuance.status, issuance.issuedAt, issuance.redeemedAt, issuance.orderId].map(csvCell).join(',') + '\r\n';
}

export function createIssuancesCsvHandler(services: Pick<Services, 'authenticator' | 'directory'>, logger: Logger) {
  return createCsvExport<IssuanceDocument>(
    services.authenticator,
    { name: 'issuances', header: CSV_HEADER, open: (couponId) => services.directory.allIssuances(couponId), row: csvRow },
    logger,
  );
}
