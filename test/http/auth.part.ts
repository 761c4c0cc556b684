import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { API_ROLES } from '../../src/http/auth';
import { apiRoutes } from '../../src/http/routes';
import type { ApiDeps } from '../../src/http/routes';
import { sampleIntake } from '../support/intake';
import { eventually, startTestService, TEST_JWT_SECRET, type TestService } from '../support/service';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

// The route table itself (not a copy) drives these tests, so a new route cannot skip them.
const routes = apiRoutes({} as ApiDeps);
const concretePath = (path: string): string => path.replace(/:[A-Za-z_]+/g, randomUUID());

describe('every /api route has a role rule', () => {
  it.each(routes.map((r) => [r.method.toUpperCase(), r.path, r] as const))('%s %s declares roles', (_m, _p, route) => {
    expect(route.roles).not.toBe('public');
    expect(Array.isArray(route.roles) && route.roles.length > 0).toBe(true);
  });
});

describe.each(routes.map((r) => [r.method.toUpperCase(), r.path, r] as const))('%s %s', (method, path, route) => {
  it('answers 401 with problem+json and WWW-Authenticate without a token', async () => {
    const res = await svc.request(method, concretePath(path), { body: method === 'GET' ? undefined : {} });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/application\/(problem|fhir)\+json/);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    // No token presented: a challenge without an error code (RFC 6750 §3.1).
    expect(res.headers.get('www-authenticate')).not.toContain('error=');
  });

  it('answers 401 for a token signed with another key, an expired token and a malformed header', async () => {
    const forged = await new SignJWT({ roles: [...API_ROLES] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('another-secret-that-is-long-enough-0123456789'));
    const expired = await new SignJWT({ roles: [...API_ROLES] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    for (const [authorization, invalidToken] of [[`Bearer ${forged}`, true], [`Bearer ${expired}`, true], ['Basic YWxpY2U6cGFzcw==', false], ['Bearer', false]] as const) {
      const res = await svc.request(method, concretePath(path), { headers: { authorization }, body: method === 'GET' ? undefined : {} });
      expect(res.status).toBe(401);
      // A bearer token presented and refused: error="invalid_token", so the client knows to get a new one (RFC 6750 §3.1).
      const challenge = res.headers.get('www-authenticate') ?? '';
      expect({ authorization: authorization.slice(0, 12), invalidToken: challenge.includes('error="invalid_token"') }).toEqual({ authorization: authorization.slice(0, 12), invalidToken });
    }
  });

  const roles = route.roles === 'public' ? [] : route.roles;
  const denied = API_ROLES.filter((role) => !roles.includes(role));
  if (denied.length > 0) {
    it(`answers 403 to roles without access (${denied.join(', ')})`, async () => {
      for (const role of denied) {
        const res = await svc.request(method, concretePath(path), { token: await svc.token(role), body: method === 'GET' ? undefined : {} });
        expect(res.status).toBe(403);
        // A good token without the authority the route needs: insufficient_scope, naming the roles
        // that would be let through (RFC 6750 §3.1), so the client does not throw the token away.
        expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="second-opinion-bridge", error="insufficient_scope", scope="${roles.join(' ')}"`);
        // problem+json names the roles in `detail`; a FHIR route's OperationOutcome in `diagnostics`.
        expect(await res.text()).toContain(roles[0]);
      }
    });
  }

  it(`lets an allowed role (${roles.join(', ')}) past authentication`, async () => {
    for (const role of roles) {
      const res = await svc.request(method, concretePath(path), { token: await svc.token(role), body: method === 'GET' ? undefined : {} });
      expect([401, 403]).not.toContain(res.status);
    }
  });
});

describe('public routes', () => {
  it('GET /healthz answers without a token', async () => {
    const res = await svc.request('GET', '/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 when the database and Redis answer', async () => {
    const res = await svc.request('GET', '/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
  });

  it('GET /openapi.json lists every /api route with its roles and the intake schema', async () => {
    const res = await svc.request('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { 'x-roles'?: string[]; requestBody?: unknown }>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const route of routes) {
      const op = doc.paths[route.path.replace(/:([A-Za-z_]+)/g, '{$1}')]?.[route.method];
      expect(op).toBeDefined();
      expect(op?.['x-roles']).toEqual(route.roles);
    }
    const intake = doc.paths['/api/cases']?.post?.requestBody as { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
    expect(Object.keys(intake.content['application/json']?.schema.properties ?? {})).toEqual(
      expect.arrayContaining(['patient', 'requester', 'diagnosis', 'history', 'reason', 'questions', 'urgent', 'referringPhysician']),
    );
    // A FHIR route documents its errors as OperationOutcome, its 406, and _format.
    const fhir = doc.paths['/api/cases/{id}/fhir']?.get as unknown as { responses: Record<string, { content?: Record<string, unknown> }>; parameters: { name: string }[] };
    expect(Object.keys(fhir.responses['401']?.content ?? {})).toEqual(['application/fhir+json']);
    expect(Object.keys(fhir.responses['406']?.content ?? {})).toEqual(['application/fhir+json']);
    expect(fhir.parameters.map((p) => p.name)).toContain('_format');
    expect(Object.keys((doc.paths['/api/cases']?.post as unknown as { responses: Record<string, { content?: Record<string, unknown> }> }).responses['401']?.content ?? {})).toEqual(['application/problem+json']);
  });

  it('GET /openapi.json says which bodies may be left out, and documents the 400 of every route with a params, query or body schema', async () => {
    type Operation = { requestBody?: { required: boolean }; responses: Record<string, { description: string }> };
    const doc = (await (await svc.request('GET', '/openapi.json')).json()) as { paths: Record<string, Record<string, Operation>> };
    const op = (method: string, path: string): Operation | undefined => doc.paths[path.replace(/:([A-Za-z_]+)/g, '{$1}')]?.[method];
    for (const route of routes) {
      const operation = op(route.method, route.path);
      // Required exactly when the route refuses the empty object a bare POST is judged as.
      if (route.body) expect({ route: route.path, required: operation?.requestBody?.required }).toEqual({ route: route.path, required: !route.body.safeParse({}).success });
      if (route.params || route.query || route.body) expect({ route: `${route.method} ${route.path}`, has400: operation?.responses['400'] !== undefined }).toEqual({ route: `${route.method} ${route.path}`, has400: true });
    }
    // The empty POSTs the API takes, and one it does not.
    for (const path of ['/api/cases/:id/bundle/rebuild', '/api/cases/:id/pulls', '/api/cases/:id/pulls/:pullId/cancel', '/api/cases/:id/sources/:sourceId/remove']) {
      expect({ path, required: op('post', path)?.requestBody?.required }).toEqual({ path, required: false });
    }
    expect(op('post', '/api/cases')?.requestBody?.required).toBe(true);
    expect(op('get', '/api/cases/:id')?.responses['400']?.description).toMatch(/path parameter/);
    expect(op('get', '/api/cases')?.responses['400']?.description).toMatch(/query parameter/);
    // POST …/sources: an unknown endpoint (404) and an EHR that cannot be asked (502).
    expect(Object.keys(op('post', '/api/cases/:id/sources')?.responses ?? {})).toEqual(expect.arrayContaining(['201', '400', '404', '409', '502']));
  });
});

describe("a family's upload token on a route that does not take it", () => {
  it('is a 403 insufficient_scope (RFC 6750 §3.1: a valid token without the authority), while an unknown or expired one stays a 401', async () => {
    const cm = await svc.token('case_manager', 'cm-upload-scope');
    const open = async (): Promise<string> => ((await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string }).id;
    const [caseId, other] = [await open(), await open()];
    const issued = await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm });
    expect(issued.status).toBe(201);
    const { token, tokenId } = (await issued.json()) as { token: string; tokenId: string };
    expect(token.startsWith('sobu_')).toBe(true);

    // The routes that take it still do.
    expect((await svc.request('GET', `/api/cases/${caseId}/uploads`, { token })).status).toBe(200);
    for (const [method, route] of [
      ['GET', `/api/cases/${caseId}`],
      ['GET', `/api/cases/${caseId}/fhir`],
      ['POST', `/api/cases/${caseId}/upload-token`],
      ['GET', `/api/cases/${other}`],
      ['GET', '/api/endpoints'],
      ['GET', `/api/endpoints/${randomUUID()}`],
    ] as const) {
      const res = await svc.request(method, route, { token });
      expect({ method, route, status: res.status }).toEqual({ method, route, status: 403 });
      const challenge = res.headers.get('www-authenticate') ?? '';
      expect({ route, challenge }).toEqual({ route, challenge: expect.stringMatching(/^Bearer realm="second-opinion-bridge", error="insufficient_scope", scope="/) });
      expect(await res.text()).toMatch(/does not take a case-upload token/);
    }
    // The refusal is on the case's access log, by the token.
    const admin = await svc.token('admin', 'admin-upload-scope');
    type Log = { items: { actor: string; status?: number }[] };
    const log = await eventually(
      async () => ((await (await svc.request('GET', `/api/cases/${caseId}/access-log`, { token: admin })).json()) as Log).items.filter((e) => e.actor === `upload-token:${tokenId}` && e.status === 403),
      (rows) => rows.length >= 2,
      10_000,
    );
    expect(log.length).toBeGreaterThanOrEqual(2);

    // Unknown (well formed, never issued) or malformed: 401 invalid_token, as before.
    for (const bad of [`sobu_${'A'.repeat(43)}`, 'sobu_short']) {
      const res = await svc.request('GET', `/api/cases/${caseId}`, { token: bad });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // Expired: 401 everywhere.
    await svc.service.db.query("UPDATE upload_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", [tokenId]);
    for (const route of [`/api/cases/${caseId}`, `/api/cases/${caseId}/uploads`]) {
      const res = await svc.request('GET', route, { token });
      expect({ route, status: res.status }).toEqual({ route, status: 401 });
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });
});
