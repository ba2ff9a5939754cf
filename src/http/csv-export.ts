/**
 * An admin CSV export of a coupon, streamed: the issuances export and the draw's entrants share it.
 *
 * Rows come from a MongoDB cursor piped through a CSV encoder into the response with
 * back-pressure: a slow client slows the cursor down instead of filling memory, so a coupon of a
 * million rows exports in bounded memory. A client that leaves closes the cursor. At most
 * MAX_CONCURRENT_EXPORTS of one kind run per instance; more get 503 with Retry-After. HEAD answers
 * as GET would, without the body.
 *
 * Cells are CSV-escaped (RFC 4180: quoted when they hold a comma, a quote or a line break, quotes
 * doubled), and a text cell starting with =, +, -, @, a tab or a carriage return is prefixed
 * with a single quote, so a spreadsheet opening the file never runs a user id or an order id
 * as a formula (CSV injection).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Authenticator } from '../access/auth';
import { forbidden, serviceUnavailable, toClientError, unauthenticated } from '../errors';
import { sendJson } from './graphql-handler';

export const MAX_CONCURRENT_EXPORTS = 2;

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;
const HTTP_STATUS: Record<string, number> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404, BAD_USER_INPUT: 400, SERVICE_UNAVAILABLE: 503 };

/** One CSV cell: formula-looking text defused with a leading quote, then RFC 4180 quoting. */
export function csvCell(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  let text = value instanceof Date ? value.toISOString() : value;
  if (FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export interface CsvExport<T> {
  /** Names the file (`coupon-<id>-<name>.csv`) and the log lines. */
  name: string;
  header: string;
  /** The rows' cursor; throws a coded error (NOT_FOUND, a 409 with its http status, ...) to refuse. */
  open: (couponId: string) => Promise<AsyncIterable<T> & { close?: () => Promise<unknown> | void }>;
  row: (doc: T) => string;
}

/** The handler of one export kind, admins only, with its own concurrency limit. */
export function createCsvExport<T>(authenticator: Pick<Authenticator, 'viewerFrom'>, kind: CsvExport<T>, logger: Logger) {
  let running = 0;

  const refuse = (res: ServerResponse, error: unknown) => {
    const clientError = toClientError(error);
    const code = String(clientError.extensions.code);
    if (code === 'INTERNAL_SERVER_ERROR') logger.error({ err: (error as Error).message }, `${kind.name} export failed`);
    if (code === 'UNAUTHENTICATED') res.setHeader('www-authenticate', 'Bearer');
    const http = (clientError.extensions.http as { status?: number } | undefined)?.status;
    sendJson(res, HTTP_STATUS[code] ?? http ?? 500, { errors: [{ message: clientError.message, extensions: { code } }] });
  };

  return async (req: IncomingMessage, res: ServerResponse, couponId: string): Promise<void> => {
    let cursor;
    // Counted in the same turn as the check: an export that passed it holds its place while it
    // awaits the cursor, so requests arriving meanwhile see it.
    let counted = false;
    try {
      const viewer = authenticator.viewerFrom(req.headers.authorization);
      if (!viewer) throw unauthenticated();
      if (!viewer.admin) throw forbidden();
      if (running >= MAX_CONCURRENT_EXPORTS) {
        res.setHeader('retry-after', '5');
        throw serviceUnavailable('too many exports at once, please retry');
      }
      running += 1;
      counted = true;
      cursor = await kind.open(couponId);
    } catch (error) {
      if (counted) running -= 1;
      return refuse(res, error);
    }
    const head = {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="coupon-${couponId}-${kind.name}.csv"`,
      'cache-control': 'no-store',
    };
    if (req.method === 'HEAD') {
      // The answer GET would give, without its body (the same checks, the same headers).
      running -= 1;
      await closeQuietly(cursor);
      res.writeHead(200, head);
      res.end();
      return;
    }
    const started = performance.now();
    let rows = 0;
    res.writeHead(200, head);
    res.write(kind.header + '\r\n');
    const encode = new Transform({
      writableObjectMode: true,
      transform(doc: T, _encoding, done) {
        rows += 1;
        done(null, kind.row(doc));
      },
    });
    try {
      await pipeline(cursor, encode, res);
      logger.info({ couponId, rows, ms: Math.round(performance.now() - started) }, `${kind.name} exported`);
    } catch (error) {
      // Headers are out: the response is cut short (no final chunk), which a client sees as an error.
      logger.warn({ couponId, rows, err: (error as Error).message }, `${kind.name} export ended early`);
      res.destroy();
    } finally {
      running -= 1;
    }
  };
}

async function closeQuietly(cursor: { close?: () => Promise<unknown> | void }): Promise<void> {
  try {
    await cursor.close?.();
  } catch {
    // A cursor that cannot close holds nothing worth an error: MongoDB times it out.
  }
}
