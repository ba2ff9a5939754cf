/**
 * The opening draw's pure rules (contract v3, "Fair opening"): the window's range, the secret
 * seed and its public commitment, and the ranking key. Shared by the catalog (which fixes the
 * seed when the window is set), the draw itself (src/draw/) and the verification command.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';

export const OPENING_DRAW_MAX_MS = 2000;

/** A new secret seed (32 bytes from the operating system's CSPRNG) and its commitment. */
export function newDrawSeed(): { seed: string; commitment: string } {
  const seed = randomBytes(32).toString('hex');
  return { seed, commitment: drawCommitmentOf(seed) };
}

/** Hex SHA-256 of the seed's 32 bytes: published before the drop. */
export function drawCommitmentOf(seedHex: string): string {
  return createHash('sha256').update(Buffer.from(seedHex, 'hex')).digest('hex');
}

/** HMAC-SHA256(key = the seed's bytes, message = the userId in UTF-8), lowercase hex: lowest ranks first. */
export function rankKeyOf(seed: Buffer, userId: string): string {
  return createHmac('sha256', seed).update(userId, 'utf8').digest('hex');
}

/** Whether a string is a seed as the service makes them: 64 lowercase hex digits. */
export const isSeedHex = (value: string) => /^[0-9a-f]{64}$/.test(value);
