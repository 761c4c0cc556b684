import type { LookupAddress } from 'node:dns';
import { createAddressPolicy, defaultAddressPolicy } from '../../src/fhir/address-policy';
import { OffOriginUrlError, UrlRefusedError } from '../../src/fhir/errors';
import { ADDRESS_REFUSED_CODE, assertAllowedEndpointUrl, assertSameOrigin, createGuardedLookup, rebaseOnEndpointOrigin } from '../../src/fhir/url-guard';

const BASE = 'https://ehr.example.org/fhir/r4';
const never = (): Promise<LookupAddress[]> => Promise.reject(new Error('DNS must not be used'));
const resolveTo =
  (...addresses: string[]) =>
  (): Promise<LookupAddress[]> =>
    Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));

describe('rebaseOnEndpointOrigin (endpoints registered with rebaseNextLinks)', () => {
  it('keeps a link on the endpoint origin as it is', () => {
    expect(rebaseOnEndpointOrigin(BASE, '?_getpages=abc&_getpagesoffset=10')).toEqual({ url: new URL('https://ehr.example.org/fhir/r4/?_getpages=abc&_getpagesoffset=10') });
    expect(rebaseOnEndpointOrigin(BASE, 'https://ehr.example.org/fhir/r4/Observation?_page=2#x')).toEqual({ url: new URL('https://ehr.example.org/fhir/r4/Observation?_page=2') });
  });

  it.each([
    ['an internal host', 'http://hapi:8080/fhir/r4?_getpages=abc', 'https://ehr.example.org/fhir/r4?_getpages=abc', 'http://hapi:8080'],
    ['http for https', 'http://ehr.example.org/fhir/r4/Observation?_page=2', 'https://ehr.example.org/fhir/r4/Observation?_page=2', 'http://ehr.example.org:80'],
    ['another port', 'https://ehr.example.org:8443/fhir/r4/Observation?_page=2', 'https://ehr.example.org/fhir/r4/Observation?_page=2', 'https://ehr.example.org:8443'],
    ['the metadata service', 'http://169.254.169.254/latest/meta-data/', 'https://ehr.example.org/latest/meta-data/', 'http://169.254.169.254:80'],
  ])('moves a link naming %s onto the endpoint origin, path and query kept', (_name, link, to, from) => {
    expect(rebaseOnEndpointOrigin(BASE, link)).toEqual({ url: new URL(to), movedFrom: from, pathMapped: false });
  });

  it('moves a link under the base the server declares for itself under the endpoint base (a proxy mapping the path)', () => {
    const declared = 'http://hapi:8080/hapi-fhir/fhir';
    expect(rebaseOnEndpointOrigin(BASE, 'http://hapi:8080/hapi-fhir/fhir?_getpages=abc&_getpagesoffset=10', declared)).toEqual({
      url: new URL('https://ehr.example.org/fhir/r4?_getpages=abc&_getpagesoffset=10'), movedFrom: 'http://hapi:8080', pathMapped: true,
    });
    expect(rebaseOnEndpointOrigin(BASE, 'http://hapi:8080/hapi-fhir/fhir/Observation?patient=1&_offset=500', `${declared}/`).url.toString()).toBe(
      'https://ehr.example.org/fhir/r4/Observation?patient=1&_offset=500',
    );
    // Not under the declared base (another path, or another origin): the path is kept as it is.
    expect(rebaseOnEndpointOrigin(BASE, 'http://hapi:8080/hapi-fhirx/Observation', declared)).toMatchObject({ pathMapped: false });
    expect(rebaseOnEndpointOrigin(BASE, 'http://hapi:8080/hapi-fhirx/Observation', declared).url.toString()).toBe('https://ehr.example.org/hapi-fhirx/Observation');
    expect(rebaseOnEndpointOrigin(BASE, 'http://other:8080/hapi-fhir/fhir/Observation', declared).url.toString()).toBe('https://ehr.example.org/hapi-fhir/fhir/Observation');
  });

  it.each([
    ['credentials', 'https://user:pw@hapi:8080/fhir/r4/x'],
    ['another scheme', 'ftp://hapi/fhir/r4/x'],
  ])('still refuses a link with %s', (_name, link) => {
    expect(() => rebaseOnEndpointOrigin(BASE, link)).toThrow(OffOriginUrlError);
  });
});

describe('assertSameOrigin', () => {
  it('resolves relative URLs under the FHIR base and accepts the same origin', () => {
    expect(assertSameOrigin(BASE, 'Binary/123').toString()).toBe('https://ehr.example.org/fhir/r4/Binary/123');
    expect(assertSameOrigin(BASE, '/fhir/r4/Observation?_page=2').toString()).toBe('https://ehr.example.org/fhir/r4/Observation?_page=2');
    expect(assertSameOrigin(BASE, 'https://EHR.example.org:443/fhir/r4/x').hostname).toBe('ehr.example.org');
  });

  it.each([
    ['other host', 'https://evil.example.net/fhir/r4/Observation?_page=2'],
    ['scheme downgrade', 'http://ehr.example.org/fhir/r4/Observation'],
    ['other port', 'https://ehr.example.org:8443/fhir/r4/Observation'],
    ['metadata service', 'http://169.254.169.254/latest/meta-data/'],
    ['protocol-relative', '//evil.example.net/x'],
    ['credentials', 'https://user:pw@ehr.example.org/fhir/r4/x'],
  ])('refuses %s', (_name, url) => {
    expect(() => assertSameOrigin(BASE, url, 'next-page')).toThrow(OffOriginUrlError);
  });

  it('says where the URL came from and never echoes its path or query', () => {
    try {
      assertSameOrigin(BASE, 'https://evil.example.net/p?name=Jane', 'attachment');
      throw new Error('expected refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(OffOriginUrlError);
      const e = err as OffOriginUrlError;
      expect(e.context).toBe('attachment');
      expect(e.candidateOrigin).toBe('https://evil.example.net:443');
      expect(e.message).not.toMatch(/Jane|evil/);
      expect(e.permanent).toBe(true);
    }
  });
});

describe('assertAllowedEndpointUrl', () => {
  const strict = { allowInsecureHttp: false, resolve: never };
  const sandbox = { allowInsecureHttp: true, resolve: never };

  it.each([
    'http://169.254.169.254/',
    'http://10.0.0.1/',
    'https://10.0.0.1/fhir',
    'https://172.16.5.4/',
    'https://192.168.1.1/',
    'https://100.64.0.1/',
    'https://[fe80::1]/',
    'https://[fd00::1]/',
    'https://[::ffff:10.0.0.1]/',
    'https://[::ffff:169.254.169.254]/',
    'https://224.0.0.1/',
    'https://0.0.0.0/',
    'https://[::]/',
    'https://127.0.0.1/',
    'https://[::1]/',
    'https://0x7f000001/', // WHATWG URL normalises to 127.0.0.1
  ])('refuses %s without resolving or connecting', async (url) => {
    // http allowed here so that only the address decides; the strict address policy refuses loopback too.
    await expect(assertAllowedEndpointUrl(url, { ...strict, allowInsecureHttp: true, addressPolicy: createAddressPolicy() })).rejects.toThrow(UrlRefusedError);
  });

  it('refuses link-local and private addresses even for sandboxes, but allows loopback there', async () => {
    await expect(assertAllowedEndpointUrl('http://169.254.169.254/', sandbox)).rejects.toThrow('link-local');
    await expect(assertAllowedEndpointUrl('http://10.0.0.1/', sandbox)).rejects.toThrow('private');
    await expect(assertAllowedEndpointUrl('http://127.0.0.1:8080/fhir', sandbox)).resolves.toBeInstanceOf(URL);
    await expect(assertAllowedEndpointUrl('http://[::1]:8080/fhir', sandbox)).resolves.toBeInstanceOf(URL);
  });

  it('requires https unless insecure http is allowed, and refuses credentials and other schemes', async () => {
    await expect(assertAllowedEndpointUrl('http://ehr.example.org/fhir', { allowInsecureHttp: false, resolve: resolveTo('93.184.216.34') })).rejects.toThrow(
      'https required',
    );
    await expect(assertAllowedEndpointUrl('https://u:p@ehr.example.org/fhir', { allowInsecureHttp: false, resolve: resolveTo('93.184.216.34') })).rejects.toThrow(
      'credentials',
    );
    await expect(assertAllowedEndpointUrl('file:///etc/passwd', sandbox)).rejects.toThrow('scheme');
    await expect(assertAllowedEndpointUrl('https://ehr.example.org/fhir', { allowInsecureHttp: false, resolve: resolveTo('93.184.216.34') })).resolves.toBeInstanceOf(
      URL,
    );
  });

  it('checks every DNS answer of a host name', async () => {
    await expect(assertAllowedEndpointUrl('https://ehr.example.org/', { allowInsecureHttp: false, resolve: resolveTo('93.184.216.34', '10.1.2.3') })).rejects.toThrow(
      'private',
    );
    await expect(assertAllowedEndpointUrl('https://metadata.example.org/', { allowInsecureHttp: false, resolve: resolveTo('169.254.169.254') })).rejects.toThrow(
      'link-local',
    );
    await expect(assertAllowedEndpointUrl('http://localhost:8080/', { allowInsecureHttp: false, resolve: resolveTo('127.0.0.1') })).rejects.toThrow(UrlRefusedError);
  });

  it('lets the policy allow an explicit CIDR (a VPN-reached EHR) and nothing more', async () => {
    const policy = createAddressPolicy({ allowCidrs: ['10.20.0.0/16'] });
    await expect(assertAllowedEndpointUrl('https://10.20.1.1/fhir', { allowInsecureHttp: false, addressPolicy: policy })).resolves.toBeInstanceOf(URL);
    await expect(assertAllowedEndpointUrl('https://10.21.1.1/fhir', { allowInsecureHttp: false, addressPolicy: policy })).rejects.toThrow('private');
  });
});

describe('guarded lookup (connection pinning)', () => {
  const lookup = (resolve: () => Promise<LookupAddress[]>, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((done) => {
      createGuardedLookup(defaultAddressPolicy({ allowInsecureHttp: false }), resolve)('ehr.example.org', { all }, (err, address) =>
        done({ err, address }),
      );
    });

  it('hands the socket the checked answer, in single and all modes', async () => {
    expect((await lookup(resolveTo('93.184.216.34'), false)).address).toBe('93.184.216.34');
    expect((await lookup(resolveTo('93.184.216.34', '2606:2800:220:1::1'), true)).address).toHaveLength(2);
  });

  it('refuses the connection when the name now resolves into a private range (DNS rebinding)', async () => {
    const { err } = await lookup(resolveTo('10.0.0.1'), false);
    expect(err?.code).toBe(ADDRESS_REFUSED_CODE);
  });
});
