import { SignJWT } from 'jose';
import { Authenticator } from '../../src/access/auth';

const secret = 'unit-test-secret-0123456789abcdefghij';
const auth = new Authenticator(secret);
const key = new TextEncoder().encode(secret);
const codeOf = async (header: string) => {
  try {
    await auth.viewerFrom(header);
  } catch (error) {
    return (error as { extensions?: { code?: string } }).extensions?.code;
  }
  return 'accepted';
};

describe('identity from a bearer token', () => {
  test('the user is the token’s sub; role admin marks an operator', async () => {
    expect(await auth.viewerFrom(`Bearer ${await auth.issue('alice')}`)).toEqual({ id: 'alice', admin: false });
    expect(await auth.viewerFrom(`Bearer ${await auth.issue('op', { admin: true })}`)).toEqual({ id: 'op', admin: true });
  });

  test('no credentials is anonymous, not an error', async () => {
    expect(await auth.viewerFrom(undefined)).toBeUndefined();
    expect(await auth.viewerFrom('')).toBeUndefined();
  });

  test('expired, foreign, unsigned and malformed tokens are UNAUTHENTICATED', async () => {
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(Math.floor(Date.now() / 1000) - 1).sign(key);
    const foreign = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').sign(new TextEncoder().encode('x'.repeat(40)));
    const [header, payload] = (await auth.issue('a')).split('.');
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    // Same secret, another algorithm: only HS256 is accepted.
    const otherAlgorithm = await new SignJWT({}).setProtectedHeader({ alg: 'HS512' }).setSubject('a').sign(key);
    for (const token of [expired, foreign, unsigned, otherAlgorithm, `${header}.${payload}.`, 'junk']) {
      expect(await codeOf(`Bearer ${token}`)).toBe('UNAUTHENTICATED');
    }
    expect(await codeOf('Basic abc')).toBe('UNAUTHENTICATED');
  });

  test('exp and nbf are enforced when present, with no leeway; a token without exp is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const signed = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('a').sign(key);
    expect(await codeOf(`Bearer ${await signed({})}`)).toBe('accepted');
    expect(await codeOf(`Bearer ${await signed({ exp: now + 60 })}`)).toBe('accepted');
    expect(await codeOf(`Bearer ${await signed({ nbf: now - 60 })}`)).toBe('accepted');
    expect(await codeOf(`Bearer ${await signed({ exp: now - 1 })}`)).toBe('UNAUTHENTICATED');
    expect(await codeOf(`Bearer ${await signed({ nbf: now + 60 })}`)).toBe('UNAUTHENTICATED');
    expect(await codeOf(`Bearer ${await signed({ exp: 'tomorrow' })}`)).toBe('UNAUTHENTICATED');
  });

  test('an expired token says so; any other refusal says the token is not valid', async () => {
    const messageOf = (header: string) => {
      try {
        auth.viewerFrom(header);
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('a').setExpirationTime(Math.floor(Date.now() / 1000) - 1).sign(key);
    expect(messageOf(`Bearer ${expired}`)).toMatch(/expired/);
    expect(messageOf(`Bearer ${auth.issue('a')}x`)).toMatch(/not valid/);
  });

  test('issued tokens verify, and expire when asked to', () => {
    const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    const lasting = auth.issue('a', { expiresInSeconds: 3600 });
    expect(auth.viewerFrom(`Bearer ${lasting}`)).toEqual({ id: 'a', admin: false });
    expect(payloadOf(lasting).exp).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect(payloadOf(auth.issue('a')).exp).toBeUndefined();
    expect(() => auth.viewerFrom(`Bearer ${auth.issue('a', { expiresInSeconds: -1 })}`)).toThrow(/expired/);
  });

  test('sub must be 1 to 128 characters', async () => {
    const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(key);
    expect(await codeOf(`Bearer ${await token('x'.repeat(128))}`)).toBe('accepted');
    expect(await codeOf(`Bearer ${await token('x'.repeat(129))}`)).toBe('UNAUTHENTICATED');
    expect(await codeOf(`Bearer ${await token('')}`)).toBe('UNAUTHENTICATED');
  });
});

describe('the sub is counted in characters', () => {
  test('128 characters outside the BMP (256 UTF-16 units) are a valid user id; 129 are not; 128 ASCII are, 129 are not', async () => {
    const emoji = '\u{1F600}';
    expect(await codeOf(`Bearer ${auth.issue(emoji.repeat(128))}`)).toBe('accepted');
    expect(await codeOf(`Bearer ${auth.issue(emoji.repeat(129))}`)).toBe('UNAUTHENTICATED');
    expect(await codeOf(`Bearer ${auth.issue('a'.repeat(128))}`)).toBe('accepted');
    expect(await codeOf(`Bearer ${auth.issue('a'.repeat(129))}`)).toBe('UNAUTHENTICATED');
  });
});
