/**
 * SMART Backend Services on a sandbox server: discovery, the token endpoint (RS384 and ES384
 * client assertions accepted; wrong aud, expired, too-long-lived, replayed, unknown-key assertions
 * refused), bearer tokens on FHIR routes (401 without or with an expired token, 403 outside the
 * scopes), v1 and v2 scope syntax.
 */
import type { JWK } from 'jose';
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { generateClientKey, publicJwkOf, signClientAssertion, startSandboxServer, tokenRequestBody, type SandboxServer } from '../../src/sandbox';

let server: SandboxServer;
let clock = Date.parse('2024-05-01T08:00:00Z');
let rsKey: JWK;
let esKey: JWK;
let strangerKey: JWK;

beforeAll(async () => {
  [rsKey, esKey, strangerKey] = await Promise.all([generateClientKey('RS384'), generateClientKey('ES384'), generateClientKey('ES384')]);
  server = await startSandboxServer({ name: 'smart', auth: 'smart', tokenLifetimeSeconds: 120, now: () => clock });
  server.registerClient({ clientId: 'rs-client', jwks: { keys: [publicJwkOf(rsKey)] } });
  server.registerClient({ clientId: 'es-client', jwks: { keys: [publicJwkOf(esKey)] }, scopes: 'system/*.read system/DiagnosticReport.c' });
  await server.load([{ resourceType: 'Patient', id: 'p1' }, { resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p1' } }]);
});

afterAll(async () => {
  await server.stop();
});

interface TokenAnswer {
  status: number;
  body: { access_token?: string; token_type?: string; expires_in?: number; scope?: string; error?: string; error_description?: string };
}

async function requestToken(assertion: string, scope = 'system/*.read'): Promise<TokenAnswer> {
  const response = await fetch(server.tokenUrl, { method: 'POST', body: tokenRequestBody(assertion, scope) });
  return { status: response.status, body: (await response.json()) as TokenAnswer['body'] };
}

function assertion(clientId: string, privateJwk: JWK, extra: Partial<Parameters<typeof signClientAssertion>[0]> = {}): Promise<string> {
  return signClientAssertion({ clientId, privateJwk, tokenUrl: server.tokenUrl, now: () => clock, ...extra });
}

test('publishes .well-known/smart-configuration and the token URL in the CapabilityStatement', async () => {
  const configuration = (await (await fetch(`${server.baseUrl}/.well-known/smart-configuration`)).json()) as Record<string, unknown>;
  expect(configuration).toMatchObject({
    token_endpoint: server.tokenUrl,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    grant_types_supported: ['client_credentials'],
    capabilities: expect.arrayContaining(['client-confidential-asymmetric']),
    scopes_supported: expect.arrayContaining(['system/*.read', 'system/*.rs']),
  });
  const metadata = await (await fetch(`${server.baseUrl}/metadata`)).text();
  expect(metadata).toContain(server.tokenUrl);
  expect(metadata).toContain('Patient-everything');
});

test('accepts a good RS384 assertion and a good ES384 assertion', async () => {
  const rs = await requestToken(await assertion('rs-client', rsKey), 'system/*.read');
  expect(rs.status).toBe(200);
  expect(rs.body).toMatchObject({ token_type: 'bearer', expires_in: 120, scope: 'system/*.read' });
  expect(rs.body.access_token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  const es = await requestToken(await assertion('es-client', esKey), 'system/Observation.rs system/Patient.read');
  expect(es.status).toBe(200);
  expect(es.body.scope).toBe('system/Observation.rs system/Patient.read');
});

test.each([
  ['a wrong aud', { overrides: { aud: 'https://elsewhere.example/token' } }, /aud/],
  ['an expired exp', { expiresInSeconds: -60 }, /expired/],
  ['an exp more than five minutes ahead', { expiresInSeconds: 600 }, /five minutes/],
  ['an unknown kid', { overrides: { kid: 'not-registered' } }, /key/],
  ['iss different from sub', { overrides: { sub: 'someone-else' } }, /sub/],
])('refuses %s with 401 invalid_client', async (_case, extra, description) => {
  const answer = await requestToken(await assertion('rs-client', rsKey, extra));
  expect(answer.status).toBe(401);
  expect(answer.body.error).toBe('invalid_client');
  expect(answer.body.error_description).toMatch(description);
});

test('refuses a replayed jti, and a key that is not the client’s', async () => {
  const once = await assertion('rs-client', rsKey, { jti: 'only-once' });
  expect((await requestToken(once)).status).toBe(200);
  const replay = await requestToken(once);
  expect(replay).toMatchObject({ status: 401, body: { error: 'invalid_client', error_description: expect.stringMatching(/jti/) } });
  const forged = await requestToken(await assertion('rs-client', { ...strangerKey, kid: rsKey.kid }));
  expect(forged).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  const unknownClient = await requestToken(await assertion('nobody', strangerKey));
  expect(unknownClient).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
});

test('answers OAuth errors for malformed requests and ungrantable scopes', async () => {
  const wrongGrant = await fetch(server.tokenUrl, { method: 'POST', body: new URLSearchParams({ grant_type: 'password' }) });
  expect(wrongGrant.status).toBe(400);
  expect(await wrongGrant.json()).toMatchObject({ error: 'unsupported_grant_type' });
  const json = await fetch(server.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(await json.json()).toMatchObject({ error: 'invalid_request' });
  const notAllowed = await requestToken(await assertion('es-client', esKey), 'system/Observation.write');
  expect(notAllowed).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
  const downScoped = await requestToken(await assertion('es-client', esKey), 'system/Observation.read system/Observation.write');
  expect(downScoped).toMatchObject({ status: 200, body: { scope: 'system/Observation.read' } });
});

test('FHIR routes: 401 without a token, 200 with one, 401 once it has expired', async () => {
  const none = await fetch(`${server.baseUrl}/Patient/p1`);
  expect(none.status).toBe(401);
  expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
  const bogus = await fetch(`${server.baseUrl}/Patient/p1`, { headers: { authorization: 'Bearer nope' } });
  expect(bogus.status).toBe(401);
  expect(bogus.headers.get('www-authenticate')).toContain('error="invalid_token"');

  const { body } = await requestToken(await assertion('rs-client', rsKey));
  const headers = { authorization: `Bearer ${body.access_token}` };
  expect((await fetch(`${server.baseUrl}/Patient/p1`, { headers })).status).toBe(200);
  const search = await fetch(`${server.baseUrl}/Observation?patient=p1`, { headers });
  expect(((await search.json()) as Bundle).total).toBe(1);

  clock += 121_000;
  const expired = await fetch(`${server.baseUrl}/Patient/p1`, { headers });
  expect(expired.status).toBe(401);
  expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"');
  expect(((await expired.json()) as OperationOutcome).issue?.[0]?.details?.text).toMatch(/expired/);
});

test('FHIR routes: 403 when the scopes do not cover the type or the interaction', async () => {
  const { body } = await requestToken(await assertion('es-client', esKey), 'system/Observation.rs system/DiagnosticReport.c');
  const headers = { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/fhir+json' };
  expect((await fetch(`${server.baseUrl}/Observation?patient=p1`, { headers })).status).toBe(200);
  expect((await fetch(`${server.baseUrl}/Patient/p1`, { headers })).status).toBe(403);
  const write = await fetch(`${server.baseUrl}/Observation`, { method: 'POST', headers, body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'y' } }) });
  expect(write.status).toBe(403);
  expect(write.headers.get('www-authenticate')).toContain('insufficient_scope');
  const create = await fetch(`${server.baseUrl}/DiagnosticReport`, { method: 'POST', headers, body: JSON.stringify({ resourceType: 'DiagnosticReport', status: 'final', code: { text: 'consult' } }) });
  expect(create.status).toBe(201);
  const transaction = await fetch(server.baseUrl, {
    method: 'POST',
    headers,
    body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }] }),
  });
  expect(transaction.status).toBe(403);
  expect((await fetch(`${server.baseUrl}/metadata`)).status).toBe(200);
});

test('a server with auth none needs no token and publishes no SMART configuration', async () => {
  const open = await startSandboxServer({ name: 'open', auth: 'none' });
  try {
    expect((await fetch(`${open.baseUrl}/Patient`)).status).toBe(200);
    expect((await fetch(`${open.baseUrl}/.well-known/smart-configuration`)).status).toBe(404);
  } finally {
    await open.stop();
  }
});
