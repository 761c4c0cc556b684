import IORedis from 'ioredis';
import { RedisCircuitBreaker } from '../../src/fhir';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox/sandbox-server';
import { makeSmartClient, type TestSmartClient } from '../support/smart-client';
import { sendJson, startTestServer, type TestServer } from '../fhir/support/http-server';
import { startTestService, type TestService } from '../support/service';
import { sampleIntake } from '../support/intake';

let svc: TestService;
let ehr: SandboxServer;
let smart: TestSmartClient;
let admin: string;

beforeAll(async () => {
  [svc, ehr, smart] = await Promise.all([
    startTestService(),
    startSandboxServer({ name: 'care-team-a', auth: 'smart' }),
    makeSmartClient('sob-test-client', 'ES384'),
  ]);
  ehr.registerClient({ clientId: smart.clientId, jwks: smart.publicJwks });
  admin = await svc.token('admin', 'admin-1');
});
afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

interface EndpointView {
  id: string;
  name: string;
  baseUrl: string;
  auth: { type: string; clientId?: string; keyId?: string; secretStored: boolean };
  maxRequestsPerSecond: number;
  maxConcurrency: number;
  capabilities: { patientEverything: boolean; resources: Record<string, { searchParams: string[] }> } | null;
  capabilitiesError: string | null;
}

async function register(body: Record<string, unknown>): Promise<Response> {
  return svc.request('POST', '/api/endpoints', { token: admin, body });
}

describe('endpoint registration', () => {
  it('registers a SMART endpoint, reads its capabilities through SMART auth, and never returns or stores the key in clear', async () => {
    const res = await register({
      name: 'Care team A',
      baseUrl: ehr.baseUrl,
      auth: { type: 'smart-backend', clientId: smart.clientId, privateKeyJwk: smart.privateKeyJwk },
      allowInsecureHttp: true,
      maxRequestsPerSecond: 50,
      maxConcurrency: 8,
    });
    const text = await res.text();
    expect(res.status).toBe(201);
    const endpoint = JSON.parse(text) as EndpointView;
    expect(endpoint).toMatchObject({
      name: 'Care team A',
      auth: { type: 'smart-backend', clientId: smart.clientId, keyId: smart.privateKeyJwk.kid, secretStored: true },
      maxRequestsPerSecond: 50,
      maxConcurrency: 8,
      capabilitiesError: null,
    });
    expect(endpoint.capabilities?.patientEverything).toBe(true);
    expect(endpoint.capabilities?.resources.Observation?.searchParams).toEqual(expect.arrayContaining(['patient', 'category']));
    // The private key never leaves: not in the answer, not in clear in the database.
    expect(text).not.toContain(String(smart.privateKeyJwk.d));
    const { rows } = await svc.service.db.query<{ sealed_secret: string }>('SELECT sealed_secret FROM endpoints WHERE id = $1', [endpoint.id]);
    expect(rows[0]?.sealed_secret).toMatch(/^v1\./);
    expect(rows[0]?.sealed_secret).not.toContain(String(smart.privateKeyJwk.d));
    // A token was obtained with a client assertion: the sandbox's token endpoint was called.
    expect(ehr.requestCount('POST /auth/token')).toBeGreaterThanOrEqual(1);
  });

  it('keeps a bearer token write-only', async () => {
    const open = await startSandboxServer({ name: 'open', auth: 'none' });
    try {
      const res = await register({ name: 'Bearer EHR', baseUrl: open.baseUrl, auth: { type: 'bearer', token: 'tok-secret-123456' }, allowInsecureHttp: true });
      const text = await res.text();
      expect(res.status).toBe(201);
      expect(text).not.toContain('tok-secret-123456');
      const list = await (await svc.request('GET', '/api/endpoints', { token: await svc.token('case_manager') })).text();
      expect(list).not.toContain('tok-secret-123456');
      expect(JSON.parse(list).items.length).toBeGreaterThanOrEqual(1);
    } finally {
      await open.stop();
    }
  });

  it('records, rather than fails on, an endpoint whose /metadata cannot be read; refresh reads it later', async () => {
    const later = await startSandboxServer({ name: 'later', auth: 'none' });
    const url = later.baseUrl;
    later.faults.add({ match: 'GET /metadata', action: { kind: 'server-error', message: 'metadata is down' } });
    try {
      const res = await register({ name: 'Later', baseUrl: url, auth: { type: 'none' }, allowInsecureHttp: true });
      expect(res.status).toBe(201);
      const endpoint = (await res.json()) as EndpointView;
      expect(endpoint.capabilities).toBeNull();
      expect(endpoint.capabilitiesError).toMatch(/\S/);
      later.faults.clear();
      const refreshed = await svc.request('POST', `/api/endpoints/${endpoint.id}/capabilities`, { token: admin });
      expect(refreshed.status).toBe(200);
      expect(((await refreshed.json()) as EndpointView).capabilities?.patientEverything).toBe(true);
    } finally {
      await later.stop();
    }
  });

  it('changes limits with PATCH and removes with DELETE', async () => {
    const created = (await (await register({ name: 'Temp', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true })).json()) as EndpointView;
    const patched = await svc.request('PATCH', `/api/endpoints/${created.id}`, { token: admin, body: { maxConcurrency: 2, name: 'Temp 2' } });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ name: 'Temp 2', maxConcurrency: 2 });
    expect((await svc.request('DELETE', `/api/endpoints/${created.id}`, { token: admin })).status).toBe(204);
    expect((await svc.request('GET', `/api/endpoints/${created.id}`, { token: admin })).status).toBe(404);
    expect((await svc.request('DELETE', `/api/endpoints/${created.id}`, { token: admin })).status).toBe(404);
  });
});

describe('endpoint validation and outbound safety', () => {
  it.each([
    ['plain http without allowInsecureHttp', { baseUrl: 'http://ehr.example.org/fhir', auth: { type: 'none' } }, 'baseUrl'],
    ['a private address', { baseUrl: 'https://10.1.2.3/fhir', auth: { type: 'none' } }, 'baseUrl'],
    ['the cloud metadata address, even for sandboxes', { baseUrl: 'http://169.254.169.254/latest', auth: { type: 'none' }, allowInsecureHttp: true }, 'baseUrl'],
    ['credentials in the URL', { baseUrl: 'https://user:pw@ehr.example.org/fhir', auth: { type: 'none' } }, 'baseUrl'],
    ['an empty baseUrl (found by the bad-input drill: was a 500)', { baseUrl: '', auth: { type: 'none' } }, 'baseUrl'],
    ['a baseUrl that is not a URL', { baseUrl: 'not a url', auth: { type: 'none' } }, 'baseUrl'],
    ['a public key instead of a private one', { baseUrl: 'https://ehr.example.org/fhir', auth: { type: 'smart-backend', clientId: 'c', privateKeyJwk: { kty: 'EC', crv: 'P-384', x: 'a', y: 'b', kid: 'k', alg: 'ES384' } } }, 'auth.privateKeyJwk.d'],
    ['an unknown auth type', { baseUrl: 'https://ehr.example.org/fhir', auth: { type: 'basic' } }, 'auth.type'],
  ])('refuses %s with a 400 naming the field', async (_what, body, field) => {
    const res = await register({ name: 'Bad', ...body });
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { errors: { field: string }[] };
    expect(problem.errors.map((e) => e.field)).toContain(field);
  });
});

describe("an endpoint's circuit breaker", () => {
  it('shows a paused endpoint, and an admin closes its circuit when the EHR works again', async () => {
    const registered = await register({ name: 'Paused EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true });
    const { id } = (await registered.json()) as EndpointView;
    const cm = await svc.token('case_manager');
    const circuit = async (): Promise<{ state: string; failures: number; retryAt: string | null }> => {
      const res = await svc.request('GET', `/api/endpoints/${id}/circuit`, { token: cm });
      expect(res.status).toBe(200);
      return (await res.json()) as { state: string; failures: number; retryAt: string | null };
    };
    expect(await circuit()).toMatchObject({ state: 'closed', failures: 0, retryAt: null });
    // Failures recorded by a worker (the same Redis hash every process reads) open it.
    const redis = new IORedis(svc.config.redisUrl);
    try {
      const breaker = new RedisCircuitBreaker({ redis, keyPrefix: `${svc.config.queuePrefix}:fhir:`, endpointId: id, failureThreshold: 1, cooldownMs: 60_000 });
      await breaker.recordFailure();
    } finally {
      redis.disconnect();
    }
    const open = await circuit();
    expect(open).toMatchObject({ state: 'open', failures: 1 });
    expect(Date.parse(open.retryAt ?? '')).toBeGreaterThan(Date.now());
    // The list shows which EHR is paused.
    const list = (await (await svc.request('GET', '/api/endpoints', { token: cm })).json()) as { items: { id: string; circuit: { state: string } }[] };
    expect(list.items.find((e) => e.id === id)?.circuit).toMatchObject({ state: 'open', failures: 1, retryAt: open.retryAt });
    expect(list.items.filter((e) => e.id !== id).every((e) => e.circuit.state === 'closed')).toBe(true);
    // A case manager sees it; only an admin closes it.
    expect((await svc.request('POST', `/api/endpoints/${id}/circuit/reset`, { token: cm })).status).toBe(403);
    const reset = await svc.request('POST', `/api/endpoints/${id}/circuit/reset`, { token: admin });
    expect(reset.status).toBe(200);
    expect(await reset.json()).toMatchObject({ endpointId: id, state: 'closed', failures: 0, retryAt: null });
    expect(await circuit()).toMatchObject({ state: 'closed' });
    expect((await svc.request('POST', '/api/endpoints/00000000-0000-4000-8000-000000000000/circuit/reset', { token: admin })).status).toBe(404);
  });
});

describe('our JWKS, for the EHRs we call with SMART Backend Services', () => {
  interface Jwks {
    keys: Record<string, unknown>[];
  }
  const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

  it('publishes the public half of each key; an EHR that registers it verifies our client assertions', async () => {
    const client = await makeSmartClient('jwks-url-client', 'RS384');
    const res = await register({
      name: 'Care team via JWKS URL',
      baseUrl: ehr.baseUrl,
      auth: { type: 'smart-backend', clientId: client.clientId, privateKeyJwk: client.privateKeyJwk },
      allowInsecureHttp: true,
    });
    const endpoint = (await res.json()) as EndpointView;
    // The EHR does not know the client yet: the token endpoint refuses us, and the error says what to do.
    expect(endpoint.capabilitiesError).toBe(
      'SmartAuthError: SMART backend authorization failed: token endpoint refused the request (HTTP 401, invalid_client): the EHR does not know this client id, or cannot verify our signature: register our public key there (GET /.well-known/jwks.json)',
    );

    const published = await fetch(`${svc.url}/.well-known/jwks.json`);
    expect(published.status).toBe(200);
    expect(published.headers.get('cache-control')).toBe('public, max-age=300');
    const jwks = (await published.json()) as Jwks;
    const ours = jwks.keys.find((k) => k.kid === client.privateKeyJwk.kid);
    expect(ours).toMatchObject({ kty: 'RSA', alg: 'RS384', use: 'sig', key_ops: ['verify'], n: client.privateKeyJwk.n, e: client.privateKeyJwk.e });
    for (const key of jwks.keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);

    // The EHR's administrator registers the published set for the client: our assertions now verify.
    ehr.registerClient({ clientId: client.clientId, jwks: { keys: [ours as never] } });
    const refreshed = (await (await svc.request('POST', `/api/endpoints/${endpoint.id}/capabilities`, { token: admin })).json()) as EndpointView;
    expect(refreshed.capabilitiesError).toBeNull();
    expect(refreshed.capabilities?.patientEverything).toBe(true);

    // The same set for one endpoint, to paste into a registration form (admin only).
    const one = await svc.request('GET', `/api/endpoints/${endpoint.id}/jwks`, { token: admin });
    expect(((await one.json()) as Jwks).keys).toEqual([ours]);
    expect((await svc.request('GET', `/api/endpoints/${endpoint.id}/jwks`, { token: await svc.token('case_manager') })).status).toBe(403);
  });

  it('rotates the signing key: the next key is published first, signs only once promoted, and the old one then leaves the set', async () => {
    const current = await makeSmartClient('rotating-client', 'ES384');
    const next = await makeSmartClient('rotating-client-next', 'ES384');
    const auth = { type: 'smart-backend', clientId: current.clientId, privateKeyJwk: current.privateKeyJwk };
    type Rotating = EndpointView & { auth: { nextKeyId?: string } };
    ehr.registerClient({ clientId: current.clientId, jwks: current.publicJwks });
    const endpoint = (await (await register({ name: 'Rotating', baseUrl: ehr.baseUrl, auth, allowInsecureHttp: true })).json()) as Rotating;
    expect(endpoint.capabilitiesError).toBeNull();
    const kids = async (id: string): Promise<string[]> => ((await (await svc.request('GET', `/api/endpoints/${id}/jwks`, { token: admin })).json()) as Jwks).keys.map((k) => String(k.kid));
    // Nothing to promote yet.
    const early = await svc.request('POST', `/api/endpoints/${endpoint.id}/keys/promote`, { token: admin });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { field: string }).field).toBe('auth.nextPrivateKeyJwk');

    // Step 1: the next key is registered beside the signing one; both are published, never their private members.
    const sameKid = await svc.request('PATCH', `/api/endpoints/${endpoint.id}`, { token: admin, body: { auth: { ...auth, nextPrivateKeyJwk: current.privateKeyJwk } } });
    expect(sameKid.status).toBe(400);
    expect(((await sameKid.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['auth.nextPrivateKeyJwk.kid']);
    const staged = (await (await svc.request('PATCH', `/api/endpoints/${endpoint.id}`, { token: admin, body: { auth: { ...auth, nextPrivateKeyJwk: next.privateKeyJwk } } })).json()) as Rotating;
    expect(staged.auth).toMatchObject({ keyId: current.privateKeyJwk.kid, nextKeyId: next.privateKeyJwk.kid });
    expect(await kids(endpoint.id)).toEqual([current.privateKeyJwk.kid, next.privateKeyJwk.kid]);
    const served = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as Jwks;
    expect(served.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([current.privateKeyJwk.kid, next.privateKeyJwk.kid]));
    for (const key of served.keys) for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);

    // Which key signs, seen by an EHR that knows only the next key (a fresh endpoint: no token cached yet).
    ehr.registerClient({ clientId: current.clientId, jwks: next.publicJwks });
    const fresh = (await (await register({ name: 'Rotating 2', baseUrl: ehr.baseUrl, auth: { ...auth, nextPrivateKeyJwk: next.privateKeyJwk }, allowInsecureHttp: true })).json()) as Rotating;
    expect(fresh.capabilitiesError).toMatch(/invalid_client/); // the next key does not sign before it is promoted
    // Step 2: promote. The promoted key signs (a new token is asked for with it), and the old key leaves the set.
    const promoted = (await (await svc.request('POST', `/api/endpoints/${fresh.id}/keys/promote`, { token: admin })).json()) as Rotating;
    expect(promoted.auth.keyId).toBe(next.privateKeyJwk.kid);
    expect(promoted.auth.nextKeyId).toBeUndefined();
    expect(promoted.capabilitiesError).toBeNull();
    expect(await kids(fresh.id)).toEqual([next.privateKeyJwk.kid]);
  });

  it('lists a key shared by two endpoints once, and none for an endpoint without one', async () => {
    const client = await makeSmartClient('shared-key-client', 'ES384');
    const ids: string[] = [];
    for (const name of ['Shared key 1', 'Shared key 2']) {
      const res = await register({ name, baseUrl: ehr.baseUrl, auth: { type: 'smart-backend', clientId: client.clientId, privateKeyJwk: client.privateKeyJwk }, allowInsecureHttp: true });
      ids.push(((await res.json()) as EndpointView).id);
    }
    const jwks = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as Jwks;
    expect(jwks.keys.filter((k) => k.kid === client.privateKeyJwk.kid)).toEqual([expect.objectContaining({ kty: 'EC', crv: 'P-384', alg: 'ES384' })]);
    const bearer = (await (await register({ name: 'Bearer only', baseUrl: ehr.baseUrl, auth: { type: 'bearer', token: 'opaque-token-value' }, allowInsecureHttp: true })).json()) as EndpointView;
    expect((await svc.request('GET', `/api/endpoints/${bearer.id}/jwks`, { token: admin })).status).toBe(404);
    // A removed endpoint's key is no longer published (when no other endpoint uses it).
    for (const id of ids) expect((await svc.request('DELETE', `/api/endpoints/${id}`, { token: admin })).status).toBe(204);
    const after = (await (await fetch(`${svc.url}/.well-known/jwks.json`)).json()) as Jwks;
    expect(after.keys.some((k) => k.kid === client.privateKeyJwk.kid)).toBe(false);
  });
  it('leaves out, with a warning, an endpoint whose sealed key cannot be opened (another SECRETS_KEY), instead of failing the set every EHR reads; the endpoint list says so', async () => {
    const good = await makeSmartClient('readable-key-client', 'ES384');
    const bad = await makeSmartClient('unreadable-key-client', 'ES384');
    const registered = await Promise.all(
      [good, bad].map(async (client) => (await (await register({
        name: client.clientId, baseUrl: ehr.baseUrl, auth: { type: 'smart-backend', clientId: client.clientId, privateKeyJwk: client.privateKeyJwk }, allowInsecureHttp: true,
      })).json()) as EndpointView),
    );
    const badId = registered[1]?.id ?? '';
    // Sealed under another key (a SECRETS_KEY changed without re-sealing): the service cannot open it.
    await svc.service.db.query(`UPDATE endpoints SET sealed_secret = 'v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAA', updated_at = now() WHERE id = $1`, [badId]);

    const published = await fetch(`${svc.url}/.well-known/jwks.json`);
    expect(published.status).toBe(200);
    const kids = ((await published.json()) as Jwks).keys.map((k) => k.kid);
    expect(kids).toContain(good.privateKeyJwk.kid);
    expect(kids).not.toContain(bad.privateKeyJwk.kid);

    const list = await svc.request('GET', '/api/endpoints', { token: admin });
    expect(list.status).toBe(200);
    const views = ((await list.json()) as { items: (EndpointView & { auth: { secretUnreadable?: boolean } })[] }).items;
    expect(views.find((v) => v.id === badId)?.auth).toMatchObject({ type: 'smart-backend', secretStored: true, secretUnreadable: true });
    expect(views.find((v) => v.id === registered[0]?.id)?.auth).not.toHaveProperty('secretUnreadable');

    // A source added at that endpoint fails on our side, not the EHR's: a 500 that does not echo the
    // internal error (it used to be a 502 carrying the crypto library's message).
    const cm = await svc.token('case_manager');
    const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
    const added = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: badId, patient: { id: 'p-1' } } });
    expect(added.status).toBe(500);
    expect(await added.text()).not.toMatch(/authenticate|decipher|Unsupported state/i);
  });
});

describe('credentials go only to the server they are for', () => {
  /** An R4 CapabilityStatement, enough for registration to read. */
  const STATEMENT = { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1', format: ['json'], rest: [{ mode: 'server' }] };

  it('refuses to move a bearer endpoint to another origin without its credentials (400 naming auth): the stored token never reaches the new host', async () => {
    const home = await startSandboxServer({ name: 'bearer-home', auth: 'none' });
    const other = await startTestServer((req, res) => (req.url === '/fhir/metadata' ? sendJson(res, 200, STATEMENT) : sendJson(res, 404, {})));
    try {
      const registered = await register({ name: 'Bearer home', baseUrl: home.baseUrl, auth: { type: 'bearer', token: 'tok-stays-home-123' }, allowInsecureHttp: true });
      const { id } = (await registered.json()) as EndpointView;

      const moved = await svc.request('PATCH', `/api/endpoints/${id}`, { token: admin, body: { baseUrl: `${other.url}/fhir` } });
      expect(moved.status).toBe(400);
      expect(moved.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await moved.json()) as { detail: string; errors: { field: string; detail: string }[] };
      expect(problem.errors.map((e) => e.field)).toEqual(['auth']);
      expect(problem.detail).toMatch(/send the credentials again/);
      expect(other.requests).toEqual([]);
      expect(((await (await svc.request('GET', `/api/endpoints/${id}`, { token: admin })).json()) as EndpointView).baseUrl).toBe(home.baseUrl);

      // With the credentials sent again the move is made, and only those reach the new host.
      const withAuth = await svc.request('PATCH', `/api/endpoints/${id}`, { token: admin, body: { baseUrl: `${other.url}/fhir`, auth: { type: 'bearer', token: 'tok-for-other-456' } } });
      expect(withAuth.status).toBe(200);
      expect(await withAuth.json()).toMatchObject({ baseUrl: `${other.url}/fhir`, capabilitiesError: null });
      expect(other.requests.map((r) => `${r.method} ${r.url} ${String(r.headers.authorization)}`)).toEqual(['GET /fhir/metadata Bearer tok-for-other-456']);
    } finally {
      await Promise.all([home.stop(), other.close()]);
    }
  });

  it('pins the SMART token endpoint discovery names at registration and shows it; a refresh whose discovery names another one is refused and recorded, nothing sent to it; an admin PATCH re-pins', async () => {
    const client = await makeSmartClient('pinned-token-endpoint-client', 'ES384');
    // Another site's token endpoint (care team A), which would mint a valid token for the same client.
    const siteA = await startTestServer((_req, res) => sendJson(res, 200, { access_token: 'tok-from-a', token_type: 'bearer', expires_in: 300 }));
    let named = '';
    const siteB: TestServer = await startTestServer((req, res) => {
      if (req.url === '/fhir/.well-known/smart-configuration') return sendJson(res, 200, { token_endpoint: named });
      if (req.url === '/auth/token') return sendJson(res, 200, { access_token: 'tok-from-b', token_type: 'bearer', expires_in: 300 });
      if (req.url === '/fhir/metadata') return sendJson(res, 200, STATEMENT);
      return sendJson(res, 404, {});
    });
    named = `${siteB.url}/auth/token`;
    try {
      const registered = await register({ name: 'Care team B', baseUrl: `${siteB.url}/fhir`, auth: { type: 'smart-backend', clientId: client.clientId, privateKeyJwk: client.privateKeyJwk }, allowInsecureHttp: true });
      expect(registered.status).toBe(201);
      const endpoint = (await registered.json()) as EndpointView & { auth: { tokenEndpoint?: string | null } };
      expect(endpoint).toMatchObject({ capabilitiesError: null, auth: { tokenEndpoint: `${siteB.url}/auth/token` } });
      const shown = (await (await svc.request('GET', `/api/endpoints/${endpoint.id}`, { token: admin })).json()) as typeof endpoint;
      expect(shown.auth.tokenEndpoint).toBe(`${siteB.url}/auth/token`);

      // B's discovery now names A's token endpoint (the mix-up): refused, recorded, A never asked.
      named = `${siteA.url}/auth/token`;
      const refreshed = (await (await svc.request('POST', `/api/endpoints/${endpoint.id}/capabilities`, { token: admin })).json()) as typeof endpoint;
      expect(refreshed.capabilitiesError).toContain(`names the token endpoint ${siteA.url}/auth/token, not ${siteB.url}/auth/token pinned for this endpoint`);
      expect(refreshed.auth.tokenEndpoint).toBe(`${siteB.url}/auth/token`);
      expect(siteA.requests).toEqual([]);
      expect(siteB.requests.filter((r) => String(r.headers.authorization).includes('tok-from-a'))).toEqual([]);

      // An admin who confirms the change (PATCH of baseUrl or auth) pins what discovery names then.
      const confirmed = await svc.request('PATCH', `/api/endpoints/${endpoint.id}`, { token: admin, body: { baseUrl: `${siteB.url}/fhir` } });
      expect(confirmed.status).toBe(200);
      expect(((await confirmed.json()) as typeof endpoint).auth.tokenEndpoint).toBe(`${siteA.url}/auth/token`);
    } finally {
      await Promise.all([siteA.close(), siteB.close()]);
    }
  });
});
