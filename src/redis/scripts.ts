/**
 * The coupon gate's Lua scripts: key layout, loading with defineCommand, and reply parsing.
 * Keys and arguments are built by pure functions and replies are shape-checked here, so the
 * rest of the code never handles raw Lua arrays.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Cluster, Redis, Result } from 'ioredis';
import { nameScript } from '../tracing/tracer';
import { DRAW_SCRIPTS } from './draw-scripts';

export const CLAIM_STATUSES = ['ISSUED', 'ALREADY_ISSUED', 'SOLD_OUT', 'NOT_STARTED', 'ENDED', 'NOT_LOADED'] as const;
export type GateStatus = (typeof CLAIM_STATUSES)[number];

/** All keys of one coupon share the hash tag `{couponId}`, so every script runs on Redis Cluster. */
export function couponKeys(couponId: string) {
  const base = `coupon:{${couponId}}`;
  return {
    meta: `${base}:meta`,
    winners: `${base}:winners`,
    pending: `${base}:pending`,
    free: `${base}:free`,
  };
}
export type CouponKeys = ReturnType<typeof couponKeys>;

/**
 * The pub/sub channel of a coupon's stock updates. It carries the coupon's hash tag, so on a
 * cluster it belongs to the coupon's own shard (SPUBLISH/SSUBSCRIBE stay on that shard).
 */
export const stockChannel = (couponId: string) => `coupon-stock:{${couponId}}`;

/** The coupon a stock channel belongs to; undefined for any other channel. */
export function couponIdOfStockChannel(channel: string): string | undefined {
  return /^coupon-stock:\{([^{}]+)\}$/.exec(channel)?.[1];
}

/**
 * A winner as kept in the winners hash: "sequence:issuedAtMs:issuanceId" for a reservation,
 * "=sequence:issuedAtMs:issuanceId" once MongoDB is known to hold it.
 */
export interface WinnerEntry {
  sequence: number;
  issuedAtMs: number;
  issuanceId: string;
  /** MongoDB holds it (confirmed after its write, or loaded from MongoDB). */
  durable?: boolean;
}

export function encodeWinner(entry: WinnerEntry): string {
  return `${entry.durable ? '=' : ''}${entry.sequence}:${entry.issuedAtMs}:${entry.issuanceId}`;
}

export function decodeWinner(value: string): WinnerEntry {
  const match = /^(=?)(\d+):(\d+):(.+)$/.exec(value);
  if (!match) throw new ScriptReplyError(`malformed winner entry ${JSON.stringify(value)}`);
  const entry: WinnerEntry = { sequence: Number(match[2]), issuedAtMs: Number(match[3]), issuanceId: match[4]! };
  if (match[1]) entry.durable = true;
  return entry;
}

export class ScriptReplyError extends Error {
  override name = 'ScriptReplyError';
}

export interface GateReply {
  status: GateStatus;
  remaining: number;
  version: number;
  /** Present for ISSUED and ALREADY_ISSUED. */
  winner?: WinnerEntry;
  /** The winner's MongoDB write is not confirmed yet (or its confirmation was lost). */
  pending: boolean;
  /**
   * SOLD_OUT or ENDED from a state that lost winner entries (fewer than sequences taken): this
   * user may hold an issuance Redis forgot, so MongoDB must be asked before the answer.
   */
  suspect: boolean;
}

export function parseClaimReply(reply: unknown): GateReply {
  if (!Array.isArray(reply) || reply.length !== 8) throw new ScriptReplyError(`claim reply ${JSON.stringify(reply)}`);
  const [status, remaining, version, sequence, issuedAtMs, issuanceId, pending, suspect] = reply;
  if (!CLAIM_STATUSES.includes(status) || typeof remaining !== 'number' || typeof version !== 'number') {
    throw new ScriptReplyError(`claim reply ${JSON.stringify(reply)}`);
  }
  const won = status === 'ISSUED' || status === 'ALREADY_ISSUED';
  return {
    status,
    remaining,
    version,
    winner: won ? { sequence: Number(sequence), issuedAtMs: Number(issuedAtMs), issuanceId: String(issuanceId) } : undefined,
    pending: pending === 1,
    suspect: suspect === 1,
  };
}

export interface StockReply {
  loaded: boolean;
  total: number;
  remaining: number;
  /** When the state was loaded; with `version`, orders stock readings across rebuilds. */
  epoch: number;
  version: number;
}

export function parseStockReply(reply: unknown): StockReply {
  if (!Array.isArray(reply) || reply.length !== 5 || !reply.every((v) => typeof v === 'number')) {
    throw new ScriptReplyError(`stock reply ${JSON.stringify(reply)}`);
  }
  const [loaded, total, remaining, epoch, version] = reply as number[];
  return { loaded: loaded === 1, total: total!, remaining: remaining!, epoch: epoch!, version: version! };
}

export const claimArgs = (keys: CouponKeys, userId: string, issuanceId: string) =>
  [keys.meta, keys.winners, keys.pending, keys.free, userId, issuanceId] as const;

/** A definition as the claim state holds it; `revision` is MongoDB's (absent: unknown, -1). */
export interface ClaimWindow {
  totalQuantity: number;
  startsAt: Date;
  endsAt?: Date | null;
  revision?: number;
}

export const loadArgs = (keys: CouponKeys, coupon: ClaimWindow, highestSequence: number, freeSequences: number[]) =>
  [
    keys.meta,
    keys.winners,
    keys.pending,
    keys.free,
    coupon.totalQuantity,
    coupon.startsAt.getTime(),
    coupon.endsAt ? coupon.endsAt.getTime() : 0,
    highestSequence,
    coupon.revision ?? -1,
    ...freeSequences,
  ] as const;

/**
 * `stored` is MongoDB's as read before the script runs: it goes in NOT marked durable, because it
 * may have been cancelled since (a cancel that found no entry of it in Redis changed nothing
 * there). The user's next claim checks it in MongoDB (settle) before any ALREADY_ISSUED.
 */
export const adoptArgs = (keys: CouponKeys, userId: string, reserved: WinnerEntry, stored: WinnerEntry) =>
  [keys.meta, keys.winners, keys.pending, keys.free, userId, reserved.issuanceId, reserved.sequence, encodeWinner({ ...stored, durable: false })] as const;

/** `holder` is MongoDB's as read before the script runs: NOT marked durable, as in adoptArgs. */
export const revokeArgs = (keys: CouponKeys, userId: string, reservedIssuanceId: string, holderId: string, holder: WinnerEntry) =>
  [keys.meta, keys.winners, keys.pending, userId, reservedIssuanceId, holderId, encodeWinner({ ...holder, durable: false })] as const;

/** Users with the issuance id MongoDB now holds for each. */
export const confirmArgs = (keys: CouponKeys, confirmed: Array<{ userId: string; issuanceId: string }>) =>
  [keys.winners, keys.pending, ...confirmed.flatMap(({ userId, issuanceId }) => [userId, issuanceId])] as const;

export const stockArgs = (keys: CouponKeys) => [keys.meta, keys.free] as const;

/** A sold-out coupon's winners as Redis holds them, at one stock position (sold-out-4.lua). */
export interface SoldOutState {
  loaded: boolean;
  remaining: number;
  epoch: number;
  version: number;
  /** No unit free and one winner entry per sequence taken; winners and pending are empty otherwise. */
  soldOut: boolean;
  winners: Map<string, WinnerEntry>;
  /** Users whose MongoDB write is unconfirmed (a pending mark). */
  pending: Set<string>;
}

export const soldOutArgs = (keys: CouponKeys) => [keys.meta, keys.winners, keys.pending, keys.free] as const;

export function parseSoldOutReply(reply: unknown): SoldOutState {
  if (!Array.isArray(reply) || reply.length !== 7 || !reply.slice(0, 5).every((v) => typeof v === 'number')) {
    throw new ScriptReplyError(`sold-out reply ${JSON.stringify(reply)?.slice(0, 200)}`);
  }
  const [loaded, remaining, epoch, version, soldOut, flat, pending] = reply as [number, number, number, number, number, unknown, unknown];
  if (!Array.isArray(flat) || flat.length % 2 !== 0 || !Array.isArray(pending)) throw new ScriptReplyError('sold-out reply: winners or pending malformed');
  const winners = new Map<string, WinnerEntry>();
  for (let i = 0; i < flat.length; i += 2) winners.set(String(flat[i]), decodeWinner(String(flat[i + 1])));
  return { loaded: loaded === 1, remaining, epoch, version, soldOut: soldOut === 1, winners, pending: new Set(pending.map(String)) };
}

/** A coupon's Redis bookkeeping as the reconciler compares it with MongoDB. */
export interface GateInspection {
  loaded: boolean;
  total: number;
  /** Sequences handed out and not handed back: what Redis counts as issued. */
  taken: number;
  winners: number;
  pending: number;
  epoch: number;
  version: number;
}

export function parseInspectReply(reply: unknown): GateInspection {
  if (!Array.isArray(reply) || reply.length !== 8 || !reply.every((v) => typeof v === 'number')) {
    throw new ScriptReplyError(`inspect reply ${JSON.stringify(reply)}`);
  }
  const [loaded, total, seq, free, winners, pending, epoch, version] = reply as number[];
  return { loaded: loaded === 1, total: total!, taken: seq! - free!, winners: winners!, pending: pending!, epoch: epoch!, version: version! };
}

export const inspectArgs = (keys: CouponKeys) => [keys.meta, keys.winners, keys.pending, keys.free] as const;

export const forgetArgs = (keys: CouponKeys, seen: Pick<GateInspection, 'epoch' | 'version'>) =>
  [keys.meta, keys.winners, keys.pending, keys.free, seen.epoch, seen.version] as const;

/**
 * How a definition is put into the claim state (define-2.lua): 'hold' narrows it before an admin
 * change writes MongoDB, 'commit' sets what MongoDB stored, 'undo' takes back a hold whose change
 * did not reach MongoDB, 'repair' sets MongoDB's definition (the reconciler, the loader).
 */
export type DefineMode = 'hold' | 'commit' | 'undo' | 'repair';
export type DefineOutcome = 'updated' | 'not-loaded' | 'below-taken' | 'held' | 'stale' | 'busy' | 'below-sequence';

export const defineArgs = (keys: CouponKeys, coupon: ClaimWindow, holdMs: number, mode: DefineMode, token = '') =>
  [
    keys.meta,
    keys.free,
    coupon.totalQuantity,
    coupon.startsAt.getTime(),
    coupon.endsAt ? coupon.endsAt.getTime() : 0,
    holdMs,
    mode,
    coupon.revision ?? -1,
    token,
  ] as const;

const DEFINE_REPLIES: Record<number, DefineOutcome> = {
  1: 'updated',
  0: 'not-loaded',
  [-1]: 'below-taken',
  [-2]: 'held',
  [-3]: 'stale',
  [-4]: 'busy',
  [-5]: 'below-sequence',
};

export function parseDefineReply(reply: unknown): DefineOutcome {
  const outcome = typeof reply === 'number' ? DEFINE_REPLIES[reply] : undefined;
  if (!outcome) throw new ScriptReplyError(`define reply ${JSON.stringify(reply)}`);
  return outcome;
}

/** The definition fields of meta, for the reconciler's comparison with MongoDB. */
export interface MetaDefinition {
  total: number;
  startsAt: number;
  endsAt: number;
}

export function parseMetaDefinition(reply: Array<string | null>): MetaDefinition | null {
  const [total, startsAt, endsAt, seq] = reply;
  // Without seq the meta is not a loaded state (see load-4.lua).
  if (total == null || startsAt == null || endsAt == null || (reply.length > 3 && seq == null)) return null;
  return { total: Number(total), startsAt: Number(startsAt), endsAt: Number(endsAt) };
}

export const cancelArgs = (keys: CouponKeys, userId: string, issuanceId: string, sequence: number) =>
  [keys.meta, keys.winners, keys.pending, keys.free, userId, issuanceId, sequence] as const;

export const retireArgs = (keys: CouponKeys, retentionMs: number) => [keys.meta, keys.winners, keys.pending, keys.free, retentionMs] as const;

type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    couponClaim(...args: readonly Arg[]): Result<unknown, Context>;
    couponLoad(...args: readonly Arg[]): Result<number, Context>;
    couponAdopt(...args: readonly Arg[]): Result<number, Context>;
    couponRevoke(...args: readonly Arg[]): Result<number, Context>;
    couponStock(...args: readonly Arg[]): Result<unknown, Context>;
    couponInspect(...args: readonly Arg[]): Result<unknown, Context>;
    couponForget(...args: readonly Arg[]): Result<number, Context>;
    couponConfirm(...args: readonly Arg[]): Result<number, Context>;
    couponDefine(...args: readonly Arg[]): Result<unknown, Context>;
    couponCancel(...args: readonly Arg[]): Result<number, Context>;
    couponRetire(...args: readonly Arg[]): Result<number, Context>;
    couponSoldOut(...args: readonly Arg[]): Result<unknown, Context>;
  }
}

const SCRIPTS = {
  couponClaim: 'claim-4.lua',
  couponLoad: 'load-4.lua',
  couponAdopt: 'adopt-4.lua',
  couponRevoke: 'revoke-3.lua',
  couponStock: 'stock-2.lua',
  couponInspect: 'inspect-4.lua',
  couponForget: 'forget-4.lua',
  couponConfirm: 'confirm-2.lua',
  couponDefine: 'define-2.lua',
  couponCancel: 'cancel-4.lua',
  couponRetire: 'retire-4.lua',
  couponSoldOut: 'sold-out-4.lua',
  // v3 opening draw (keys, arguments and replies in draw-scripts.ts).
  ...DRAW_SCRIPTS,
} as const;

const luaDir = path.join(__dirname, 'lua');

/** Registers every script on a client; ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT. */
export function defineCouponScripts(redis: Redis | Cluster): void {
  for (const [name, file] of Object.entries(SCRIPTS)) {
    const keyCount = Number(/-(\d+)\.lua$/.exec(file)![1]);
    const lua = fs.readFileSync(path.join(luaDir, file), 'utf8');
    nameScript(lua, file);
    redis.defineCommand(name, {
      numberOfKeys: keyCount,
      lua,
      readOnly: name === 'couponStock' || name === 'couponInspect' || name === 'couponSoldOut',
    });
  }
}
