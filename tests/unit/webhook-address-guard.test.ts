import { checkTarget, isPublicAddress, urlProblem } from '../../src/events/address-guard';

const resolvingTo = (...addresses: string[]) => async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('the webhook address guard', () => {
  it('knows loopback, private, link-local and unique-local addresses from public ones', () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1', '::1', 'fe80::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::']) {
      expect([address, isPublicAddress(address)]).toEqual([address, false]);
    }
    for (const address of ['8.8.8.8', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect([address, isPublicAddress(address)]).toEqual([address, true]);
    }
  });

  it('accepts only absolute http and https URLs without credentials', () => {
    expect(urlProblem('https://hooks.example.com/x')).toBeUndefined();
    expect(urlProblem('http://hooks.example.com:8080/x?y=1')).toBeUndefined();
    for (const url of ['ftp://example.com/', 'file:///etc/passwd', 'gopher://example.com', 'javascript:alert(1)', '/relative', 'https://user:pw@example.com/']) {
      expect([url, urlProblem(url)]).toEqual([url, expect.any(String)]);
    }
  });

  it('refuses a name that resolves to an internal address, unless private networks are allowed', async () => {
    const url = new URL('https://hooks.example.com/x');
    expect(await checkTarget(url, false, resolvingTo('127.0.0.1'))).toMatchObject({ ok: false });
    expect(await checkTarget(url, false, resolvingTo('fd00::7'))).toMatchObject({ ok: false });
    expect(await checkTarget(url, true, resolvingTo('127.0.0.1'))).toEqual({ ok: true, address: { address: '127.0.0.1', family: 4 } });
  });

  it('refuses a name with one public and one internal address (the client would not choose)', async () => {
    expect(await checkTarget(new URL('https://mixed.example.com/'), false, resolvingTo('93.184.216.34', '10.1.1.1'))).toMatchObject({ ok: false });
  });

  it('connects to the address it checked', async () => {
    expect(await checkTarget(new URL('https://hooks.example.com/'), false, resolvingTo('93.184.216.34'))).toEqual({ ok: true, address: { address: '93.184.216.34', family: 4 } });
  });

  it('judges an IP literal itself, brackets and all, without asking DNS', async () => {
    const never = async () => {
      throw new Error('DNS asked');
    };
    expect(await checkTarget(new URL('http://[::1]:8080/'), false, never)).toMatchObject({ ok: false });
    expect(await checkTarget(new URL('http://169.254.169.254/latest/meta-data'), false, never)).toMatchObject({ ok: false });
    expect(await checkTarget(new URL('http://[2606:4700:4700::1111]/'), false, never)).toEqual({ ok: true, address: { address: '2606:4700:4700::1111', family: 6 } });
  });

  it('refuses a host that does not resolve', async () => {
    const failing = async () => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    };
    expect(await checkTarget(new URL('https://nowhere.invalid/'), false, failing)).toEqual({ ok: false, reason: expect.stringContaining('ENOTFOUND') });
  });
});
