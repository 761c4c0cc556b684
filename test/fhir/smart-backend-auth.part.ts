import type { Redis } from 'ioredis';
import { jwtVerify } from 'jose';
import { CaptureTransport } from '../support/capture-log';
import { logger } from '../../src/log';
import { ClientAssertionSigner } from '../../src/fhir/client-assertion';
import { RedisCircuitBreaker } from '../../src/fhir/circuit-breaker';
import type { SmartBackendAuthConfig } from '../../src/fhir/endpoint';
import { CircuitOpenError, PermanentFhirError, SmartAuthError } from '../../src/fhir/errors';
import type { FhirClientEvent } from '../../src/fhir/events';
import { HttpTransport } from '../../src/fhir/http-transport';
import { discoverTokenEndpoint, grantedScopeOf, SmartBackendAuth, tokenLockTtlMs, TOKEN_LOCK_MARGIN_MS } from '../../src/fhir/smart-backend-auth';
import { makeClient } from './support/client';
import { sendJson, startTestServer, type TestServer } from './support/http-server';
import { makeKey, type TestKey } from './support/keys';
import { startMiniFhir, type MiniFhir } from './support/mini-fhir';
import { testRedis, type TestRedis } from './support/redis';

const CLIENT_ID = 'second-opinion-bridge-test';
let env: TestRedis;
let redis: Redis;
let rsKey: TestKey;
let ecKey: TestKey;

beforeAll(async () => {
  env = testRedis('smart');
  redis = env.connect();
  [rsKey, ecKey] = await Promise.all([makeKey('RS384'), makeKey('ES384')]);
});
afterAll(() => env.cleanup());

let endpointCounter = 0;
function smartClient(fhir: MiniFhir, key: TestKey, options: { id?: string; redis?: Redis; clientId?: string; events?: FhirClientEvent[] } = {}) {
  endpointCounter += 1;
  return makeClient(options.redis ?? redis, env.prefix, fhir.url, {
    id: options.id ?? `smart-${endpointCounter}`,
    auth: { type: 'smart-backend', clientId: options.clientId ?? CLIENT_ID, privateKeyJwk: key.privateJwk, scope: 'system/Observation.read system/Patient.read' },
  });
}

describe.each([
  ['RS384', () => rsKey],
  ['ES384', () => ecKey],
])('client assertion signed with %s', (alg, key) => {
  let fhir: MiniFhir;
  beforeAll(async () => {
    fhir = await startMiniFhir({ smart: { publicKey: key().publicKey, clientId: CLIENT_ID } });
  });
  afterAll(() => fhir.close());

  it('has the SMART header and claims (verified with jose on the server)', async () => {
    const { client, events } = smartClient(fhir, key());
    const before = Math.floor(Date.now() / 1000);
    await client.capabilities();
    expect(fhir.tokenRequests).toBe(1);
    const [verified] = fhir.assertions;
    expect(verified?.header).toEqual({ alg, kid: key().kid, typ: 'JWT' });
    const payload = verified?.payload ?? {};
    expect(payload.iss).toBe(CLIENT_ID);
    expect(payload.sub).toBe(CLIENT_ID);
    expect(payload.aud).toBe(`${fhir.server.url}/auth/token`);
    expect(payload.exp).toBeGreaterThan(before);
    expect((payload.exp ?? 0) - before).toBeLessThanOrEqual(300);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.fromEntries(verified?.form ?? [])).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'system/Observation.read system/Patient.read',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    });
    expect(fhir.server.requests.at(-1)?.headers.authorization).toBe('Bearer tok-1');
    expect(events).toContainEqual(expect.objectContaining({ type: 'token-refreshed', expiresInSeconds: 300 }));
    await client.close();
  });
});

describe('token caching and refresh', () => {
  let fhir: MiniFhir;
  beforeEach(async () => {
    fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID, expiresIn: 300 } });
  });
  afterEach(() => fhir.close());

  it('shares one token request among concurrent callers of one client, and caches it in Redis', async () => {
    const { client } = smartClient(fhir, rsKey, { id: 'cache-one' });
    await Promise.all([client.read('Patient', 'a'), client.read('Patient', 'b'), client.capabilities(), client.read('Patient', 'c')]);
    expect(fhir.tokenRequests).toBe(1);
    const keys = await redis.keys(`${env.prefix}fhir:token:cache-one:*`);
    expect(keys).toHaveLength(1);
    const ttl = await redis.pttl(keys[0] ?? '');
    // TTL = expires_in (300 s) − renewal margin (60 s).
    expect(ttl).toBeGreaterThan(230_000);
    expect(ttl).toBeLessThanOrEqual(240_000);
    expect(await redis.get(keys[0] ?? '')).toContain('tok-1');
    await client.close();
  });

  it('makes two processes (own Redis connections) share one token request', async () => {
    const a = smartClient(fhir, rsKey, { id: 'cache-two', redis: env.connect() });
    const b = smartClient(fhir, rsKey, { id: 'cache-two', redis: env.connect() });
    await Promise.all([a.client.read('Patient', 'a'), b.client.read('Patient', 'b'), a.client.read('Patient', 'c'), b.client.read('Patient', 'd')]);
    expect(fhir.tokenRequests).toBe(1);
    // A third "process" starting later reads the cached token.
    const c = smartClient(fhir, rsKey, { id: 'cache-two', redis: env.connect() });
    await c.client.read('Patient', 'e');
    expect(fhir.tokenRequests).toBe(1);
    await Promise.all([a.client.close(), b.client.close(), c.client.close()]);
  });

  it('after a 401 drops the token, fetches a fresh one and retries once', async () => {
    const { client, events } = smartClient(fhir, rsKey);
    await client.read('Patient', 'a');
    fhir.validTokens.clear(); // the server revokes tok-1
    await expect(client.read('Patient', 'b')).resolves.toMatchObject({ id: 'b' });
    expect(fhir.tokenRequests).toBe(2);
    expect(fhir.server.requests.filter((r) => r.url === '/fhir/Patient/b').map((r) => r.headers.authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    expect(events.filter((e) => e.type === 'token-refreshed')).toHaveLength(2);
    await client.close();
  });

  it('fails permanently when the fresh token is refused too (no loop)', async () => {
    const { client } = smartClient(fhir, rsKey);
    fhir.validTokens.add = function add() {
      return this; // the server accepts no token at all
    };
    const err = await client.read('Patient', 'a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentFhirError);
    expect(err).toMatchObject({ status: 401, issueCodes: ['login'] });
    expect(fhir.server.requests.filter((r) => r.url === '/fhir/Patient/a')).toHaveLength(2);
    expect(fhir.tokenRequests).toBe(2);
    await client.close();
  });

  it('reports invalid_client as a permanent SmartAuthError', async () => {
    const { client } = smartClient(fhir, rsKey, { clientId: 'someone-else' });
    const err = await client.read('Patient', 'a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmartAuthError);
    expect(err).toMatchObject({ status: 401, oauthError: 'invalid_client', permanent: true });
    expect(fhir.tokenRequests).toBe(1);
    await client.close();
  });

  it('treats a smart-configuration that is not JSON as a passing fault: discovery is retried', async () => {
    fhir.malformedSmartConfigs = 1;
    const discoveries = (): number => fhir.server.requests.filter((r) => r.url === '/fhir/.well-known/smart-configuration').length;
    const before = discoveries();
    const { client } = smartClient(fhir, rsKey);
    const patient = await client.read('Patient', 'a');
    expect(patient.resourceType).toBe('Patient');
    expect(discoveries() - before).toBe(2);
    expect(fhir.malformedSmartConfigs).toBe(0);
    await client.close();
  });

  it('never logs tokens or assertions', async () => {
    const capture = new CaptureTransport();
    const previous = logger.level;
    logger.level = 'silly';
    logger.add(capture);
    try {
      const { client } = smartClient(fhir, rsKey);
      await client.read('Patient', 'a');
      fhir.validTokens.clear();
      await client.read('Patient', 'b');
      await client.close();
    } finally {
      logger.remove(capture);
      logger.level = previous;
    }
    expect(capture.lines.some((l) => l.includes('smart token obtained'))).toBe(true);
    const all = capture.lines.join('\n');
    expect(all).not.toMatch(/tok-\d|eyJ|Bearer|client_assertion/);
  });
});

describe('the scope granted (token response `scope`, https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5)', () => {
  const ASKED = 'system/Observation.read system/Patient.read';

  it('reads the response scope as granted, and its absence (or a blank or non-string one) as the scope asked for', () => {
    expect(grantedScopeOf(' system/DiagnosticReport.c   system/*.rs ', ASKED)).toEqual({ scope: 'system/DiagnosticReport.c system/*.rs', invalid: false });
    expect(grantedScopeOf(undefined, ASKED)).toEqual({ scope: ASKED, invalid: false });
    expect(grantedScopeOf(null, ASKED)).toEqual({ scope: ASKED, invalid: false });
    expect(grantedScopeOf('  ', ASKED)).toEqual({ scope: ASKED, invalid: false });
    expect(grantedScopeOf(['system/Patient.read'], ASKED)).toEqual({ scope: ASKED, invalid: true });
  });

  it('keeps the scope the token endpoint granted, narrower than asked, and shares it with the token through Redis', async () => {
    const fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID, grantScope: 'system/Patient.read' } });
    try {
      const a = smartClient(fhir, rsKey, { id: 'granted-narrower' });
      await expect(a.client.grantedScope()).resolves.toBe('system/Patient.read');
      expect(Object.fromEntries(fhir.assertions[0]?.form ?? [])).toMatchObject({ scope: ASKED });
      // The token requests then carry is the one the scope was read from.
      await a.client.read('Patient', 'a');
      expect(fhir.server.requests.at(-1)?.headers.authorization).toBe('Bearer tok-1');
      // Another process reading the cached token knows its scope without asking the token endpoint.
      const b = smartClient(fhir, rsKey, { id: 'granted-narrower', redis: env.connect() });
      await expect(b.client.grantedScope()).resolves.toBe('system/Patient.read');
      expect(fhir.tokenRequests).toBe(1);
      const [key] = await redis.keys(`${env.prefix}fhir:token:granted-narrower:*`);
      expect(JSON.parse((await redis.get(key ?? '')) ?? '{}')).toMatchObject({ t: 'tok-1', s: 'system/Patient.read' });
      await Promise.all([a.client.close(), b.client.close()]);
    } finally {
      await fhir.close();
    }
  });

  it('takes the scope asked for when the token response has none (RFC 6749 §5.1: identical to the request)', async () => {
    const fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID, grantScope: null } });
    try {
      const { client } = smartClient(fhir, rsKey, { id: 'granted-absent' });
      await client.read('Patient', 'a');
      await expect(client.grantedScope()).resolves.toBe(ASKED);
      expect(fhir.tokenRequests).toBe(1);
      await client.close();
    } finally {
      await fhir.close();
    }
  });

  it('fetches a fresh token where the cached one carries no scope (cached by an earlier release): its grant is unknown', async () => {
    const fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID, grantScope: 'system/Patient.read' } });
    try {
      const first = smartClient(fhir, rsKey, { id: 'granted-legacy' });
      await first.client.read('Patient', 'a');
      await first.client.close();
      const [key] = await redis.keys(`${env.prefix}fhir:token:granted-legacy:*`);
      const { t, exp, ren } = JSON.parse((await redis.get(key ?? '')) ?? '{}') as { t: string; exp: number; ren: number };
      await redis.set(key ?? '', JSON.stringify({ t, exp, ren }), 'PX', 60_000);
      const later = smartClient(fhir, rsKey, { id: 'granted-legacy', redis: env.connect() });
      await expect(later.client.grantedScope()).resolves.toBe('system/Patient.read');
      expect(fhir.tokenRequests).toBe(2);
      await later.client.close();
    } finally {
      await fhir.close();
    }
  });

  it('has no scope where no SMART auth applies (open endpoint): the server decides', async () => {
    const fhir = await startMiniFhir();
    try {
      const { client } = makeClient(redis, env.prefix, fhir.url);
      await expect(client.grantedScope()).resolves.toBeUndefined();
      expect(fhir.server.requests).toHaveLength(0);
      await client.close();
    } finally {
      await fhir.close();
    }
  });

  it("does not ask a paused endpoint's token endpoint for it: CircuitOpenError, as a request gets", async () => {
    const fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID } });
    try {
      const breaker = new RedisCircuitBreaker({ redis, keyPrefix: env.prefix, endpointId: 'granted-paused', failureThreshold: 1 });
      await breaker.recordFailure();
      const { client } = smartClient(fhir, rsKey, { id: 'granted-paused' });
      await expect(client.grantedScope()).rejects.toBeInstanceOf(CircuitOpenError);
      expect(fhir.tokenRequests).toBe(0);
      await client.close();
    } finally {
      await fhir.close();
    }
  });
});

describe('short-lived tokens', () => {
  it('reuses a token of expires_in 60 s (renewed a quarter of its lifetime early, not at once): 10 calls, 1 token request', async () => {
    const fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID, expiresIn: 60 } });
    try {
      const { client } = smartClient(fhir, rsKey, { id: 'short-lived' });
      for (let i = 0; i < 10; i += 1) await client.read('Patient', `p${i}`);
      expect(fhir.tokenRequests).toBe(1);
      // Another process reads it from Redis, where it stays until 15 s before it expires.
      const other = smartClient(fhir, rsKey, { id: 'short-lived', redis: env.connect() });
      await other.client.read('Patient', 'q');
      expect(fhir.tokenRequests).toBe(1);
      const [key] = await redis.keys(`${env.prefix}fhir:token:short-lived:*`);
      const ttl = await redis.pttl(key ?? '');
      expect(ttl).toBeGreaterThan(40_000);
      expect(ttl).toBeLessThanOrEqual(45_000);
      await Promise.all([client.close(), other.client.close()]);
    } finally {
      await fhir.close();
    }
  });
});

describe('key validation', () => {
  it('refuses keys that are not RS384/ES384 private keys with a kid', async () => {
    const { privateJwk } = rsKey;
    expect(() => new ClientAssertionSigner('c', { ...privateJwk, alg: 'RS256' })).toThrow(SmartAuthError);
    expect(() => new ClientAssertionSigner('c', { ...privateJwk, kid: undefined })).toThrow('kid');
    expect(() => new ClientAssertionSigner('c', { ...ecKey.privateJwk, d: undefined })).toThrow('not a private key');
    expect(() => new ClientAssertionSigner('c', { ...ecKey.privateJwk, alg: 'RS384' })).toThrow('RSA');
  });
});

describe('an endpoint moved to another EHR (same id, client and key)', () => {
  /** A second EHR whose own token endpoint issues `tok-B`; its FHIR server accepts only that token. */
  async function otherEhr(): Promise<TestServer> {
    const server: TestServer = await startTestServer((req, res) => {
      if (req.url === '/fhir/.well-known/smart-configuration') return sendJson(res, 200, { token_endpoint: `${server.url}/auth/token` });
      if (req.url === '/auth/token') return sendJson(res, 200, { access_token: 'tok-B', token_type: 'bearer', expires_in: 300 });
      if (req.headers.authorization !== 'Bearer tok-B') return sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
      return sendJson(res, 200, { resourceType: 'Patient', id: 'b' });
    });
    return server;
  }

  it("never sends the first EHR's still-valid token to the new base URL: the new EHR's token endpoint is asked first", async () => {
    const ehrA = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID } });
    const ehrB = await otherEhr();
    try {
      const before = smartClient(ehrA, rsKey, { id: 'moved-endpoint' });
      await before.client.read('Patient', 'a');
      await before.client.close();
      expect(ehrA.validTokens.has('tok-1')).toBe(true);

      // An admin edits the registration: same endpoint id, client id, key and scope; another EHR.
      const after = makeClient(redis, env.prefix, `${ehrB.url}/fhir`, {
        id: 'moved-endpoint',
        auth: { type: 'smart-backend', clientId: CLIENT_ID, privateKeyJwk: rsKey.privateJwk, scope: 'system/Observation.read system/Patient.read' },
      });
      await expect(after.client.read('Patient', 'b')).resolves.toMatchObject({ id: 'b' });
      await after.client.close();

      const fhirCalls = ehrB.requests.filter((r) => r.url.startsWith('/fhir/') && !r.url.includes('.well-known'));
      expect(fhirCalls.map((r) => r.headers.authorization)).toEqual(['Bearer tok-B']);
      expect(ehrB.requests.filter((r) => r.url === '/auth/token')).toHaveLength(1);
    } finally {
      await Promise.all([ehrA.close(), ehrB.close()]);
    }
  });
});

describe('the pinned token endpoint (OAuth mix-up, https://www.rfc-editor.org/rfc/rfc9700#section-4.4)', () => {
  const SCOPE = 'system/Observation.read system/Patient.read';

  it("never sends a token minted at care team A's token endpoint to care team B, whose discovery names A's", async () => {
    // Care teams A and B know us by the same client id and key (one client id per app across sites).
    const ehrA = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID } });
    const ehrB: TestServer = await startTestServer((req, res) => {
      // B's discovery now names A's token endpoint; at registration it named B's own (pinned).
      if (req.url === '/fhir/.well-known/smart-configuration') return sendJson(res, 200, { token_endpoint: `${ehrA.server.url}/auth/token` });
      return sendJson(res, 200, { resourceType: 'Patient', id: 'b' });
    });
    try {
      const { client } = makeClient(redis, env.prefix, `${ehrB.url}/fhir`, {
        id: 'mixed-up-b',
        auth: { type: 'smart-backend', clientId: CLIENT_ID, privateKeyJwk: rsKey.privateJwk, scope: SCOPE, pinnedTokenEndpoint: `${ehrB.url}/auth/token` },
      });
      const refused = client.read('Patient', 'b');
      await expect(refused).rejects.toBeInstanceOf(SmartAuthError);
      await expect(refused).rejects.toMatchObject({ retryable: false, message: expect.stringContaining(`not ${ehrB.url}/auth/token pinned for this endpoint`) });
      await client.close();

      // Nothing was asked of A's token endpoint, and B saw only its discovery document: no Authorization.
      expect(ehrA.tokenRequests).toBe(0);
      expect(ehrB.requests.map((r) => r.url)).toEqual(['/fhir/.well-known/smart-configuration']);
      expect(ehrB.requests.filter((r) => r.headers.authorization !== undefined)).toEqual([]);
    } finally {
      await Promise.all([ehrA.close(), ehrB.close()]);
    }
  });

  it('obtains and sends tokens as before when discovery names the pinned token endpoint', async () => {
    const fhir = await startMiniFhir({ smart: { publicKey: rsKey.publicKey, clientId: CLIENT_ID } });
    try {
      const { client } = makeClient(redis, env.prefix, fhir.url, {
        id: 'pinned-ok',
        auth: { type: 'smart-backend', clientId: CLIENT_ID, privateKeyJwk: rsKey.privateJwk, scope: SCOPE, pinnedTokenEndpoint: `${fhir.server.url}/auth/token` },
      });
      await expect(client.read('Patient', 'a')).resolves.toBeDefined();
      await client.close();
      expect(fhir.tokenRequests).toBe(1);
      expect(fhir.server.requests.at(-1)?.headers.authorization).toBe('Bearer tok-1');
    } finally {
      await fhir.close();
    }
  });
});

describe('the token endpoint URL as published (aud = "the same URL to which this authentication JWT will be posted")', () => {
  // https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html#authenticating-to-the-token-endpoint
  // Authorization servers compare aud with their configured token endpoint as a string: a WHATWG
  // re-serialization of the URL they publish (host case, port, dot segments, percent-encoding, a
  // trailing slash) is another string and the assertion is refused.
  const SCOPE = 'system/Patient.read';

  /** Published forms a loopback server can really serve, and the request line each is posted to. */
  const FORMS: [string, (origin: string, port: number) => { published: string; requestPath: string }][] = [
    ['dot segments', (origin) => ({ published: `${origin}/auth/x/../token`, requestPath: '/auth/token' })],
    ['braces of a template left in the path', (origin) => ({ published: `${origin}/auth/{tenant}/token`, requestPath: '/auth/%7Btenant%7D/token' })],
    ['upper-case scheme, shorthand IPv4 host, zero-padded port', (_origin, port) => ({ published: `HTTP://127.1:0${port}/auth/token`, requestPath: '/auth/token' })],
    ['a bare origin (no trailing slash)', (origin) => ({ published: origin, requestPath: '/' })],
  ];

  interface Posted {
    readonly path: string;
    readonly host: string | undefined;
    readonly aud: unknown;
  }

  /**
   * An EHR publishing `publish(origin, port)` as its token endpoint: it takes an assertion only when
   * its `aud` is that string exactly (jose compares strings), and records where each token POST came.
   */
  async function ehrPublishing(publish: (origin: string, port: number) => string): Promise<{ server: TestServer; published: string; posted: Posted[] }> {
    const posted: Posted[] = [];
    let published = '';
    const server: TestServer = await startTestServer(async (req, res, body) => {
      if (req.method === 'GET' && req.url === '/fhir/.well-known/smart-configuration') return sendJson(res, 200, { token_endpoint: published });
      if (req.method === 'POST') {
        const assertion = new URLSearchParams(body.toString('utf8')).get('client_assertion') ?? '';
        try {
          const { payload } = await jwtVerify(assertion, rsKey.publicKey, { issuer: CLIENT_ID, subject: CLIENT_ID, audience: published });
          posted.push({ path: req.url ?? '', host: req.headers.host, aud: payload.aud });
        } catch {
          posted.push({ path: req.url ?? '', host: req.headers.host, aud: undefined });
          return sendJson(res, 400, { error: 'invalid_client' });
        }
        return sendJson(res, 200, { access_token: 'tok-published', token_type: 'bearer', expires_in: 300 });
      }
      if (req.headers.authorization !== 'Bearer tok-published') return sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
      return sendJson(res, 200, { resourceType: 'Patient', id: 'p' });
    });
    published = publish(server.url, server.port);
    return { server, published, posted };
  }

  let n = 0;
  function client(server: TestServer, auth: Partial<SmartBackendAuthConfig> = {}) {
    n += 1;
    return makeClient(redis, env.prefix, `${server.url}/fhir`, {
      id: `published-${n}`,
      auth: { type: 'smart-backend', clientId: CLIENT_ID, privateKeyJwk: rsKey.privateJwk, scope: SCOPE, ...auth },
    }).client;
  }

  it.each(FORMS)('signs aud with the token_endpoint discovery names, unchanged (%s), and posts to it', async (_form, form) => {
    const { server, published, posted } = await ehrPublishing((origin, port) => form(origin, port).published);
    const { requestPath } = form(server.url, server.port);
    try {
      const c = client(server);
      await expect(c.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
      await c.close();
      // The request line is the URL as parsed (WHATWG): path normalized, host lower-case, port plain.
      expect(posted).toEqual([{ path: requestPath, host: `127.0.0.1:${server.port}`, aud: published }]);
    } finally {
      await server.close();
    }
  });

  it('signs aud with a registered tokenUrl unchanged, without asking discovery', async () => {
    const { server, published, posted } = await ehrPublishing((origin) => `${origin}/auth/./x/../token`);
    try {
      const c = client(server, { tokenUrl: published });
      await expect(c.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
      await c.close();
      expect(posted).toEqual([{ path: '/auth/token', host: `127.0.0.1:${server.port}`, aud: published }]);
      expect(server.requests.filter((r) => r.url.includes('.well-known'))).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('discovers the published string, the one the endpoint pins (endpoint-service), and a relative one resolved', async () => {
    const { server, published } = await ehrPublishing((_origin, port) => `HTTP://127.1:0${port}/auth/{tenant}/x/../token`);
    const transport = new HttpTransport({ allowInsecureHttp: true });
    try {
      const discover = (): Promise<string> => discoverTokenEndpoint({ baseUrl: `${server.url}/fhir`, transport, guard: { allowInsecureHttp: true }, timeoutMs: 5_000 });
      await expect(discover()).resolves.toBe(published);
      server.handle((_req, res) => sendJson(res, 200, { token_endpoint: '../auth/{tenant}/token' }));
      await expect(discover()).resolves.toBe(`${server.url}/fhir/auth/%7Btenant%7D/token`);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  it('takes a pin of that very string, or of its re-serialized form (pinned before the string was kept), and signs the published one', async () => {
    const { server, published, posted } = await ehrPublishing((origin) => `${origin}/auth/{tenant}/token`);
    try {
      for (const pinned of [published, new URL(published).href]) {
        const c = client(server, { pinnedTokenEndpoint: pinned });
        await expect(c.read('Patient', 'p')).resolves.toMatchObject({ id: 'p' });
        await c.close();
      }
      expect(posted.map((p) => p.aud)).toEqual([published, published]);
    } finally {
      await server.close();
    }
  });
});

describe('a slow token endpoint under the fetch lock (SET NX PX), across processes', () => {
  /**
   * The token request's timeout, by which the lock is sized. Nothing waits for either to run out; the
   * first process's request is held until the second has looked at the lock twice, which on a loaded
   * host can take seconds (2 s left ~1 s of room).
   */
  const REQUEST_TIMEOUT_MS = 10_000;
  /** How long the token endpoint keeps the first process waiting at least (a good part of the request timeout). */
  const SLOW_MS = 500;

  it('holds the lock the token request\'s timeout plus a margin', () => {
    expect(tokenLockTtlMs(60_000)).toBe(60_000 + TOKEN_LOCK_MARGIN_MS);
  });

  it('sends one token request for two processes while the token endpoint is slow: the waiter gets the same token, without discovering', async () => {
    let tokenRequests = 0;
    /** Resolvers of the token requests awaited, by their number (1, 2). */
    const arrivals = new Map<number, () => void>();
    const tokenRequest = (nth: number): Promise<void> =>
      new Promise((resolve) => {
        if (tokenRequests >= nth) resolve();
        else arrivals.set(nth, resolve);
      });
    let answer: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    const server: TestServer = await startTestServer(async (req, res) => {
      if (req.url === '/fhir/.well-known/smart-configuration') return sendJson(res, 200, { token_endpoint: `${server.url}/auth/token` });
      if (req.url !== '/auth/token') return void res.writeHead(404).end();
      tokenRequests += 1;
      const token = `slow-${tokenRequests}`;
      arrivals.get(tokenRequests)?.();
      await answered;
      sendJson(res, 200, { access_token: token, token_type: 'bearer', expires_in: 300 });
    });
    const endpointId = `slow-token-${endpointCounter++}`;
    const transports: HttpTransport[] = [];
    const lockChecks: { atMs: number }[] = [];
    let waiter: { count: number; afterMs: number; resolve: () => void } | undefined;
    const settle = (): void => {
      const [first] = lockChecks;
      if (waiter && first && lockChecks.filter((c) => c.atMs - first.atMs >= (waiter?.afterMs ?? 0)).length >= waiter.count) waiter.resolve();
    };
    /**
     * A connection whose looks at the lock are recorded as they are sent: EXISTS (before a process
     * knows the token endpoint) or SET NX (to take it). Watched at the client rather than with Redis's
     * MONITOR, whose ioredis connection can fail ("Command queue state error") when a line of another
     * client's command arrives with MONITOR's own answer.
     */
    const watched = (redis: Redis): Redis => {
      const send = redis.sendCommand.bind(redis);
      redis.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
        const [command] = args;
        const [key] = command.args;
        if (['set', 'exists'].includes(command.name.toLowerCase()) && typeof key === 'string' && key.startsWith(`${env.prefix}fhir:token:${endpointId}:`) && key.endsWith(':lock')) {
          lockChecks.push({ atMs: performance.now() });
          settle();
        }
        return send(...args);
      };
      return redis;
    };
    // A "process": its own Redis connection and transport, the same endpoint.
    const processAuth = (): SmartBackendAuth => {
      const transport = new HttpTransport({ allowInsecureHttp: true });
      transports.push(transport);
      return new SmartBackendAuth({
        endpointId,
        baseUrl: `${server.url}/fhir`,
        config: { type: 'smart-backend', clientId: CLIENT_ID, privateKeyJwk: rsKey.privateJwk },
        redis: watched(env.connect()),
        keyPrefix: env.prefix,
        transport,
        guard: { allowInsecureHttp: true },
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
    };
    try {
      /**
       * Resolves once `count` looks at the lock were sent `afterMs` or more after the first. A process
       * that took the lock looks no more: only one still waiting makes them.
       */
      const lockLooked = (count: number, afterMs: number): Promise<void> =>
        new Promise((resolve) => {
          waiter = { count, afterMs, resolve };
          settle();
        });

      const [a, b] = [processAuth(), processAuth()];
      const first = a.accessToken();
      await tokenRequest(1);
      const locks = await redis.keys(`${env.prefix}fhir:token:${endpointId}:*:lock`);
      expect(locks).toHaveLength(1);
      // The lock outlasts the token request's own deadline.
      expect(await redis.pttl(locks[0] ?? '')).toBeGreaterThan(REQUEST_TIMEOUT_MS);

      const second = b.accessToken();
      // The second process still waits, looking at the lock again and again while the token endpoint has not answered.
      // (A second token request ends the wait too: under a lock shorter than the request, it comes.)
      await Promise.race([lockLooked(2, SLOW_MS), tokenRequest(2)]);
      expect(tokenRequests).toBe(1);

      answer();
      await expect(Promise.all([first, second])).resolves.toEqual(['slow-1', 'slow-1']);
      expect(tokenRequests).toBe(1);
      // The first process discovered the token endpoint before it took the lock; the second, finding it taken, did not.
      expect(server.requests.map((r) => r.url)).toEqual(['/fhir/.well-known/smart-configuration', '/auth/token']);
    } finally {
      answer();
      await Promise.all(transports.map((t) => t.close()));
      await server.close();
    }
  });
});
