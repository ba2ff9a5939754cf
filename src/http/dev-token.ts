/**
 * POST /dev/token: a development token for any user name, so that the drop page and the
 * playground can sign in without copying tokens from the terminal. It exists only when the
 * signing key was generated for this run (JWT_SECRET unset, never in production): such tokens
 * are worthless outside this process. With JWT_SECRET set the route is not mounted (404).
 *
 * Body: {"sub": "<1..128 characters>", "admin": false}. Answer: {"token", "sub", "admin", "expiresAt"}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../access/auth';
import { receiveBody, sendJson } from './graphql-handler';

export const DEV_TOKEN_PATH = '/dev/token';
export const DEV_TOKEN_TTL_SECONDS = 12 * 3600;
const MAX_BODY_BYTES = 1024;
const BODY_TIMEOUT_MS = 1500;

const refuse = (res: ServerResponse, status: number, message: string) => sendJson(res, status, { errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });

export function createDevTokenHandler(authenticator: Authenticator): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return refuse(res, 405, 'POST {"sub": "<user name>"} for a development token');
    }
    // Same-origin pages send JSON; a cross-site form cannot (it would need a CORS preflight).
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return refuse(res, 415, 'the body must be JSON (content-type: application/json)');
    // Read as GraphQL bodies are: under a size limit and a deadline, answered 413 or 408 beyond.
    const raw = await receiveBody(req, res, { maxBytes: MAX_BODY_BYTES, timeoutMs: BODY_TIMEOUT_MS });
    if (raw === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return refuse(res, 400, 'the body is not valid JSON');
    }
    const { sub, admin } = (body ?? {}) as { sub?: unknown; admin?: unknown };
    if (typeof sub !== 'string' || sub.trim().length < 1 || sub.trim().length > 128) return refuse(res, 400, 'sub must be a user name of 1 to 128 characters');
    if (admin !== undefined && typeof admin !== 'boolean') return refuse(res, 400, 'admin must be true or false');
    const name = sub.trim();
    const token = authenticator.issue(name, { admin: admin === true, expiresInSeconds: DEV_TOKEN_TTL_SECONDS });
    sendJson(res, 200, { token, sub: name, admin: admin === true, expiresAt: new Date(Date.now() + DEV_TOKEN_TTL_SECONDS * 1000).toISOString() });
  };
}
