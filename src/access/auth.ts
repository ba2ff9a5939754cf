/**
 * Identity: HS256 JWTs. The user is the token's `sub`, never an argument.
 *
 * Every claim verifies a token, so the verifier is @node-rs/jsonwebtoken: the Rust
 * `jsonwebtoken` crate behind a synchronous N-API call. Measured in the running service
 * (`npm run bench`, with and without verification), fast-jwt cost about 45 µs of CPU per claim,
 * mostly node:crypto setting up an OpenSSL HMAC per token, about a fifth of the whole claim;
 * this costs about 17 µs.
 */
import { Algorithm, signSync, verifySync, type Validation } from '@node-rs/jsonwebtoken';
import { unauthenticated } from '../errors';

export interface Viewer {
  id: string;
  admin: boolean;
}

const SUB_MAX = 128;

/** The contract: HS256 only; `exp` and `nbf` enforced when present, with no leeway. */
const VALIDATION: Validation = {
  algorithms: [Algorithm.HS256],
  requiredSpecClaims: [],
  validateExp: true,
  validateNbf: true,
  leeway: 0,
};

export class Authenticator {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  /**
   * The viewer named by an `Authorization: Bearer` value; undefined when no credentials were
   * sent (public operations still work). A credential that is present but wrong is an error.
   */
  viewerFrom(authorization: string | undefined | null): Viewer | undefined {
    if (authorization === undefined || authorization === null || authorization === '') return undefined;
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!match) throw unauthenticated('the authorization header must be "Bearer <token>"');
    let payload: Record<string, unknown>;
    try {
      payload = verifySync(match[1]!, this.key, VALIDATION);
    } catch (error) {
      // The library reports every refusal as an Error whose message names the reason.
      if ((error as Error).message === 'ExpiredSignature') throw unauthenticated('the token has expired');
      throw unauthenticated('the token is not valid');
    }
    const sub = payload.sub;
    // Characters as the contract counts them (code points), not UTF-16 units: 128 emoji are 128.
    if (typeof sub !== 'string' || sub.length < 1 || (sub.length > SUB_MAX && [...sub].length > SUB_MAX)) {
      throw unauthenticated(`the token's sub must be a user id of 1 to ${SUB_MAX} characters`);
    }
    return { id: sub, admin: payload.role === 'admin' };
  }

  /** A token for `sub` (development tokens, tests, load); without `expiresInSeconds` it never expires. */
  issue(sub: string, options: { admin?: boolean; expiresInSeconds?: number } = {}): string {
    const claims: Record<string, unknown> = options.admin ? { sub, role: 'admin' } : { sub };
    if (options.expiresInSeconds !== undefined) claims.exp = Math.floor(Date.now() / 1000) + options.expiresInSeconds;
    return signSync(claims, this.key, { algorithm: Algorithm.HS256 });
  }
}
