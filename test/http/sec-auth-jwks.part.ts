import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { startTestService, type TestService } from '../support/service';

/**
 * Production verifies staff and EHR tokens against the identity provider's JWKS (`AUTH_JWKS_URL`).
 * When that key set cannot be read, the token was not judged: the answer is a 503 with
 * `Retry-After`, not a 401 that tells the client its (valid) token is bad (RFC 6750 §3.1) and makes it
 * sign in again against an identity provider that is down. Real service; the identity provider is a
 * small HTTP server standing in for the hospital's.
 */
type IdpMode = 'up' | 'error' | 'not-json';

let svc: TestService;
let idp: http.Server;
let mode: IdpMode = 'error';
let privateKey: KeyLike;
let otherKey: KeyLike;
let jwks: { keys: object[] };

const ISSUER = 'https://idp.example.org';
const AUDIENCE = 'second-opinion-bridge';

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  idp = http.createServer((_req, res) => {
    if (mode === 'up') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    else if (mode === 'not-json') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
  const { port } = idp.address() as AddressInfo;
  svc = await startTestService({ AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks`, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE });
}, 60_000);
afterAll(async () => {
  await svc.stop();
  await new Promise<void>((resolve) => idp.close(() => resolve()));
});

const sign = (key: KeyLike): Promise<string> =>
  new SignJWT({ roles: ['admin'] })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('admin-jwks')
    .setExpirationTime('5m')
    .sign(key);

it('answers 503 with Retry-After (problem+json and OperationOutcome), not 401, while the JWKS cannot be read; the same token works once it can', async () => {
  const token = await sign(privateKey);

  for (const down of ['error', 'not-json'] as const) {
    mode = down;
    const res = await svc.request('GET', '/api/endpoints', { token });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { detail: string };
    expect(body.detail).toMatch(/identity provider/);
    expect(body.detail).not.toMatch(/127\.0\.0\.1/);
  }
  const fhir = await svc.request('GET', '/api/cases/7f1c5e0a-1b2c-4d3e-8f90-0a1b2c3d4e5f/fhir', { token });
  expect(fhir.status).toBe(503);
  expect(fhir.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  // Temporary: severity error, issue type transient (a FHIR client may try again), not fatal
  // (https://hl7.org/fhir/R4/valueset-issue-type.html).
  expect(await fhir.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] });

  // A token that is no JWT is judged without the keys: still a 401.
  const garbage = await svc.request('GET', '/api/endpoints', { token: 'not-a-jwt' });
  expect(garbage.status).toBe(401);
  expect(garbage.headers.get('www-authenticate')).toMatch(/^Bearer/);

  mode = 'up';
  expect((await svc.request('GET', '/api/endpoints', { token })).status).toBe(200);
  // With the keys read, a token signed by another key is refused as before.
  const forged = await svc.request('GET', '/api/endpoints', { token: await sign(otherKey) });
  expect(forged.status).toBe(401);
  expect(forged.headers.get('www-authenticate')).toMatch(/^Bearer/);
});
