/**
 * GET /admin/coupons/{id}/draw.csv (contract v3): the entrants of a coupon's opening draw in
 * ranking order, `rank,userId,rankKey,won,sequence`, streamed from a MongoDB cursor with
 * back-pressure like the issuances export (src/http/issuances-csv.ts), with the same cell
 * escaping. 401 without a valid token, 403 for a non-admin, 404 for an unknown coupon or one
 * without a draw, 409 while the draw is not done. With the seed (public once the draw is done),
 * `npm run draw:verify` recomputes every rank key and the winners from this file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { forbidden, serviceUnavailable, toClientError, unauthenticated } from '../errors';
import type { Services } from '../context';
import type { DrawEntrantDocument } from '../draw/draw-entrants';
import { csvCell } from './issuances-csv';
import { sendJson } from './graphql-handler';

export const DRAW_CSV_HEADER = 'rank,userId,rankKey,won,sequence';
const MAX_CONCURRENT_EXPORTS = 2;
const HTTP_STATUS: Record<string, number> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404, BAD_USER_INPUT: 400, SERVICE_UNAVAILABLE: 503 };

export function drawCsvRow(doc: Pick<DrawEntrantDocument, 'rank' | 'userId' | 'rankKey' | 'won' | 'sequence'>): string {
  return [doc.rank, doc.userId, doc.rankKey, doc.won ? 'true' : 'false', doc.sequence ?? null].map(csvCell).join(',') + '\r\n';
}

export function createDrawCsvHandler(services: Pick<Services, 'authenticator' | 'openingDraw'>, logger: Logger) {
  let running = 0;

  const refuse = (res: ServerResponse, error: unknown) => {
    const clientError = toClientError(error);
    const code = String(clientError.extensions.code);
    if (code === 'INTERNAL_SERVER_ERROR') logger.error({ err: (error as Error).message }, 'draw export failed');
    if (code === 'UNAUTHENTICATED') res.setHeader('www-authenticate', 'Bearer');
    const http = (clientError.extensions.http as { status?: number } | undefined)?.status;
    sendJson(res, HTTP_STATUS[code] ?? http ?? 500, { errors: [{ message: clientError.message, extensions: { code } }] });
  };

  return async (req: IncomingMessage, res: ServerResponse, couponId: string): Promise<void> => {
    let cursor;
    try {
      const viewer = services.authenticator.viewerFrom(req.headers.authorization);
      if (!viewer) throw unauthenticated();
      if (!viewer.admin) throw forbidden();
      if (running >= MAX_CONCURRENT_EXPORTS) {
        res.setHeader('retry-after', '5');
        throw serviceUnavailable('too many exports at once, please retry');
      }
      cursor = await services.openingDraw.entrantsInOrder(couponId);
    } catch (error) {
      return refuse(res, error);
    }
    running += 1;
    let rows = 0;
    res.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="coupon-${couponId}-draw.csv"`,
      'cache-control': 'no-store',
    });
    res.write(DRAW_CSV_HEADER + '\r\n');
    const encode = new Transform({
      writableObjectMode: true,
      transform(doc: DrawEntrantDocument, _encoding, done) {
        rows += 1;
        done(null, drawCsvRow(doc));
      },
    });
    try {
      await pipeline(cursor, encode, res);
      logger.info({ couponId, rows }, 'draw entrants exported');
    } catch (error) {
      logger.warn({ couponId, rows, err: (error as Error).message }, 'draw export ended early');
      res.destroy();
    } finally {
      running -= 1;
    }
  };
}
