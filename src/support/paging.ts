/**
 * Cursor pages (Relay style) for the admin queries: opaque cursors (base64url of a kind and the
 * sort key), and the `first` range check.
 */
import { Types } from 'mongoose';
import { badUserInput } from '../errors';

export interface Page<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** `first`, checked against 1..max (BAD_USER_INPUT naming `first` otherwise). */
export function pageSize(first: number | null | undefined, max: number, fallback: number): number {
  const size = first ?? fallback;
  if (!Number.isInteger(size) || size < 1 || size > max) throw badUserInput(`first must be an integer from 1 to ${max}`, 'first');
  return size;
}

export function encodeCursor(kind: string, ...parts: Array<string | number>): string {
  return Buffer.from([kind, ...parts].join(':')).toString('base64url');
}

/** The parts of a cursor of this kind; the last part must be an ObjectId. BAD_USER_INPUT otherwise. */
export function decodeCursor(cursor: string, kind: string): string[] {
  const [found, ...parts] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  const id = parts.at(-1);
  if (found !== kind || !id || !/^[0-9a-f]{24}$/i.test(id) || !Types.ObjectId.isValid(id)) throw badUserInput('after is not a cursor of this list', 'after');
  return parts;
}
