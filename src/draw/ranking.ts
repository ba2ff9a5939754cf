/**
 * The opening draw's deterministic parts: an entry's member in Redis, the sequences the winners
 * take, and each winner's issuance id. Deterministic on purpose: a draw re-run after a runner was
 * killed or fenced out writes exactly the same issuances, so MongoDB's unique indexes and the
 * issuance ids make every re-run a no-op for what was already written.
 */
import { createHash } from 'node:crypto';

/** "rankKey:userId": the entries set is ordered by it (all scores 0), i.e. by rank key. */
export const memberOf = (rankKey: string, userId: string) => `${rankKey}:${userId}`;

export function parseMember(member: string): { rankKey: string; userId: string } {
  return { rankKey: member.slice(0, 64), userId: member.slice(65) };
}

/** The sequences of the first `count` winners in ranking order: handed-back ones first, then after `baseSeq`. */
export function sequencesFor(baseSeq: number, free: number[], count: number): number[] {
  const sequences = [...free].sort((a, b) => a - b).slice(0, count);
  for (let next = baseSeq + 1; sequences.length < count; next++) sequences.push(next);
  return sequences;
}

/**
 * A winner's issuance id: an ObjectId whose time is the window's end and whose other 8 bytes come
 * from SHA-256 of the coupon and the user, the same on every run of the draw.
 */
export function drawIssuanceId(couponId: string, userId: string, windowEndMs: number): string {
  const seconds = Math.floor(windowEndMs / 1000).toString(16).padStart(8, '0');
  return seconds + createHash('sha256').update(`opening-draw:${couponId}:${userId}`, 'utf8').digest('hex').slice(0, 16);
}
