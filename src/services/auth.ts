/**
 * Identity: HS256 JWTs verified with jose. The user is the token's `sub`, never an argument.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import { unauthenticated } from '../errors';

export interface Viewer {
  id: string;
  admin: boolean;
}

const SUB_MAX = 128;

export class Authenticator {
  /** Imported once: handing jose raw bytes would re-import the key on every verification. */
  private readonly key: KeyObject;

  constructor(secret: string) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  /**
   * The viewer named by an `Authorization: Bearer` value; undefined when no credentials were
   * sent (public operations still work). A credential that is present but wrong is an error.
   */
  async viewerFrom(authorization: string | undefined | null): Promise<Viewer | undefined> {
    if (authorization === undefined || authorization === null || authorization === '') return undefined;
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!match) throw unauthenticated('the authorization header must be "Bearer <token>"');
    try {
      const { payload } = await jwtVerify(match[1]!, this.key, { algorithms: ['HS256'] });
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub.length < 1 || sub.length > SUB_MAX) {
        throw unauthenticated(`the token's sub must be a user id of 1 to ${SUB_MAX} characters`);
      }
      return { id: sub, admin: payload.role === 'admin' };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthenticated('the token has expired');
      if (error instanceof joseErrors.JOSEError) throw unauthenticated('the token is not valid');
      throw error;
    }
  }

  async issue(sub: string, options: { admin?: boolean; expiresIn?: string } = {}): Promise<string> {
    const jwt = new SignJWT(options.admin ? { role: 'admin' } : {}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt();
    if (options.expiresIn) jwt.setExpirationTime(options.expiresIn);
    return jwt.sign(this.key);
  }
}
