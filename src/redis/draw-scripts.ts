/**
 * The opening draw's Lua scripts (draw-*.lua): keys, arguments and reply parsing, kept apart
 * from the gate's scripts.ts. The scripts are registered with the others (SCRIPTS in scripts.ts).
 */
import type { Result } from 'ioredis';

/** The gate's keys the draw's scripts touch (couponKeys in scripts.ts, which imports this file). */
type CouponKeys = { meta: string; winners: string; free: string };

export class DrawScriptReplyError extends Error {
  override name = 'ScriptReplyError';
}

/** A coupon's draw keys carry its hash tag, like the gate's: one slot per coupon on a cluster. */
export function drawKeys(couponId: string) {
  const base = `coupon:{${couponId}}`;
  return { draw: `${base}:draw`, entries: `${base}:entries` };
}
export type DrawKeys = ReturnType<typeof drawKeys>;

export type EnterStatus = 'NOT_STARTED' | 'ENDED' | 'CLOSED' | 'ENTERED';

export const enterArgs = (keys: DrawKeys, member: string, coupon: { startsAt: Date; openingDrawMs: number; endsAt: Date | null }) =>
  [keys.draw, keys.entries, member, coupon.startsAt.getTime(), coupon.openingDrawMs, coupon.endsAt ? coupon.endsAt.getTime() : 0] as const;

export function parseEnterReply(reply: unknown): { status: EnterStatus; added: boolean } {
  if (!Array.isArray(reply) || reply.length !== 2 || !['NOT_STARTED', 'ENDED', 'CLOSED', 'ENTERED'].includes(reply[0]) || typeof reply[1] !== 'number') {
    throw new DrawScriptReplyError(`draw enter reply ${JSON.stringify(reply)}`);
  }
  return { status: reply[0] as EnterStatus, added: reply[1] === 1 };
}

export type CloseStatus = 'OK' | 'DONE' | 'BUSY' | 'EARLY' | 'NOT_LOADED';

export interface CloseReply {
  status: CloseStatus;
  fence: number;
  /** Units available when the draw closed. */
  units: number;
  /** The highest sequence handed out when it closed, and the free ones below it (ascending). */
  baseSeq: number;
  freeSeqs: number[];
  entrants: number;
  applied: boolean;
  waitMs: number;
}

export const closeArgs = (gate: CouponKeys, keys: DrawKeys, token: string, windowEndMs: number, leaseMs: number) =>
  [gate.meta, gate.free, keys.draw, keys.entries, token, windowEndMs, leaseMs] as const;

export function parseCloseReply(reply: unknown): CloseReply {
  if (!Array.isArray(reply) || reply.length !== 8 || !['OK', 'DONE', 'BUSY', 'EARLY', 'NOT_LOADED'].includes(reply[0])) {
    throw new DrawScriptReplyError(`draw close reply ${JSON.stringify(reply)}`);
  }
  const [status, fence, units, baseSeq, freeSeqs, entrants, applied, waitMs] = reply as [CloseStatus, number, number, number, string, number, number, number];
  if (![fence, units, baseSeq, entrants, applied, waitMs].every((v) => typeof v === 'number') || typeof freeSeqs !== 'string') {
    throw new DrawScriptReplyError(`draw close reply ${JSON.stringify(reply)}`);
  }
  const free = freeSeqs === '' ? [] : freeSeqs.split(',').map(Number).sort((a, b) => a - b);
  return { status, fence, units, baseSeq, freeSeqs: free, entrants, applied: applied === 1, waitMs };
}

export interface AppliedWinner {
  userId: string;
  /** The durable winner entry ("=sequence:issuedAtMs:issuanceId"). */
  entry: string;
  sequence: number;
}

export const applyArgs = (gate: CouponKeys, keys: DrawKeys, fence: number, highest: number, last: boolean, winners: AppliedWinner[]) =>
  [gate.meta, gate.winners, gate.free, keys.draw, fence, highest, last ? 1 : 0, ...winners.flatMap((w) => [w.userId, w.entry, w.sequence])] as const;

export type ApplyOutcome = 'applied' | 'not-loaded' | 'fenced';

export function parseApplyReply(reply: unknown): ApplyOutcome {
  if (reply === 1) return 'applied';
  if (reply === 0) return 'not-loaded';
  if (reply === -1) return 'fenced';
  throw new DrawScriptReplyError(`draw apply reply ${JSON.stringify(reply)}`);
}

export const renewArgs = (keys: DrawKeys, token: string, leaseMs: number) => [keys.draw, token, leaseMs] as const;

type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    drawEnter(...args: readonly Arg[]): Result<unknown, Context>;
    drawClose(...args: readonly Arg[]): Result<unknown, Context>;
    drawApply(...args: readonly Arg[]): Result<unknown, Context>;
    drawRenew(...args: readonly Arg[]): Result<number, Context>;
  }
}

export const DRAW_SCRIPTS = {
  drawEnter: 'draw-enter-2.lua',
  drawClose: 'draw-close-4.lua',
  drawApply: 'draw-apply-4.lua',
  drawRenew: 'draw-renew-1.lua',
} as const;
