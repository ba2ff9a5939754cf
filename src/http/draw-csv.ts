/**
 * GET /admin/coupons/{id}/draw.csv (contract v3): the entrants of a coupon's opening draw in
 * ranking order, `rank,userId,rankKey,won,sequence`, streamed like the issuances export
 * (src/http/csv-export.ts: back-pressure, concurrency limit, cell escaping). 401 without a valid
 * token, 403 for a non-admin, 404 for an unknown coupon or one without a draw, 409 while the draw
 * is not done. With the seed (public once the draw is done),
 * `npm run draw:verify` recomputes every rank key and the winners from this file.
 */
import type { Logger } from 'pino';
import type { Services } from '../context';
import type { DrawEntrantDocument } from '../draw/draw-entrants';
import { createCsvExport, csvCell } from './csv-export';

export const DRAW_CSV_HEADER = 'rank,userId,rankKey,won,sequence';

export function drawCsvRow(doc: Pick<DrawEntrantDocument, 'rank' | 'userId' | 'rankKey' | 'won' | 'sequence'>): string {
  return [doc.rank, doc.userId, doc.rankKey, doc.won ? 'true' : 'false', doc.sequence ?? null].map(csvCell).join(',') + '\r\n';
}

export function createDrawCsvHandler(services: Pick<Services, 'authenticator' | 'openingDraw'>, logger: Logger) {
  return createCsvExport<DrawEntrantDocument>(
    services.authenticator,
    { name: 'draw', header: DRAW_CSV_HEADER, open: (couponId) => services.openingDraw.entrantsInOrder(couponId), row: drawCsvRow },
    logger,
  );
}
