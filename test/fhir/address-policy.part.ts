import { createAddressPolicy, defaultAddressPolicy, embeddedIpv4 } from '../../src/fhir/address-policy';

/** IPv6 forms that carry an IPv4 address (SSRF through NAT64, SIIT, 6to4, IPv4-compatible). */
describe('address policy: IPv6 forms carrying an IPv4 address', () => {
  const strict = defaultAddressPolicy({ allowInsecureHttp: false });
  const sandbox = defaultAddressPolicy({ allowInsecureHttp: true });

  it.each([
    ['64:ff9b::a9fe:a9fe', 'link-local'], // NAT64 well-known prefix, RFC 6052
    ['64:ff9b::169.254.169.254', 'link-local'],
    ['64:ff9b::a00:1', 'private'],
    ['[64:ff9b::7f00:1]', 'loopback'],
    ['64:ff9b:1::a9fe:a9fe', 'reserved'], // local-use NAT64, RFC 8215
    ['64:ff9b:1:a9fe:a9:fe00::', 'reserved'],
    ['::ffff:0:a9fe:a9fe', 'link-local'], // SIIT IPv4-translated
    ['::ffff:0:10.0.0.1', 'private'],
    ['2002:a9fe:a9fe::1', 'link-local'], // 6to4, RFC 3056
    ['2002:a00:1::', 'private'],
    ['::a9fe:a9fe', 'link-local'], // IPv4-compatible, RFC 4291 §2.5.5.1
    ['::10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'], // IPv4-mapped (already handled)
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'], // Teredo
    ['100::1', 'reserved'], // discard-only, RFC 6666
    ['192.88.99.1', 'reserved'], // deprecated 6to4 relay anycast, RFC 7526
  ])('refuses %s as %s', (address, kind) => {
    expect(strict.check(address)).toEqual({ allowed: false, kind });
    // The sandbox policy lets loopback through (local test servers), embedded forms included.
    expect(sandbox.check(address)).toEqual(kind === 'loopback' ? { allowed: true } : { allowed: false, kind });
  });

  it('judges a public address in 64:ff9b::/96 (and 6to4) as that IPv4 address', () => {
    expect(strict.check('64:ff9b::5db8:d822')).toEqual({ allowed: true }); // 93.184.216.34
    expect(strict.check('2002:5db8:d822::1')).toEqual({ allowed: true });
    expect(embeddedIpv4('64:ff9b::5db8:d822')).toBe('93.184.216.34');
    expect(embeddedIpv4('64:ff9b::93.184.216.34')).toBe('93.184.216.34');
    expect(embeddedIpv4('2002:a9fe:a9fe::1')).toBe('169.254.169.254');
    const vpn = createAddressPolicy({ allowCidrs: ['10.20.0.0/16'] });
    expect(vpn.check('64:ff9b::a14:101')).toEqual({ allowed: true }); // 10.20.1.1
    expect(vpn.check('64:ff9b::a15:101')).toEqual({ allowed: false, kind: 'private' });
  });

  it('keeps plain IPv6 addresses and :: / ::1 as IPv6', () => {
    expect(strict.check('2606:2800:220:1:248:1893:25c8:1946')).toEqual({ allowed: true });
    expect(strict.check('::1')).toEqual({ allowed: false, kind: 'loopback' });
    expect(sandbox.check('::1')).toEqual({ allowed: true });
    expect(strict.check('::')).toEqual({ allowed: false, kind: 'unspecified' });
    expect(embeddedIpv4('2001:db8::1')).toBeNull();
  });
});
