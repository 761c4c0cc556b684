/**
 * Hardening of endpoint registration: SMART signing keys are checked as keys (not only as JSON
 * shapes) before they are sealed, our public JWKS survives a key it cannot use, and a new `baseUrl`
 * never keeps the capabilities read from the previous server.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
import { generateKeyPairSync } from 'node:crypto';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox/sandbox-server';
import { SecretBox } from '../../src/security/secret-box';
import { makeSmartClient } from '../support/smart-client';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let ehr: SandboxServer;
let admin: string;

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService(), startSandboxServer({ name: 'care-team-a', auth: 'none' })]);
  admin = await svc.token('admin', 'admin-1');
});
afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

interface Problem {
  status: number;
  detail: string;
  errors: { field: string; detail: string }[];
}
interface EndpointView {
  id: string;
  baseUrl: string;
  capabilities: { software?: string; patientEverything: boolean; resources: Record<string, unknown> } | null;
  capabilitiesFetchedAt: string | null;
  capabilitiesError: string | null;
}

async function registerSmart(name: string, privateKeyJwk: object, nextPrivateKeyJwk?: object): Promise<Response> {
  return svc.request('POST', '/api/endpoints', {
    token: admin,
    body: {
      name,
      baseUrl: ehr.baseUrl,
      allowInsecureHttp: true,
      auth: { type: 'smart-backend', clientId: 'hardening-client', privateKeyJwk, ...(nextPrivateKeyJwk ? { nextPrivateKeyJwk } : {}) },
    },
  });
}

function rsaJwk(bits: number, kid: string): object {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS384' };
}

async function endpointCount(): Promise<number> {
  const { rows } = await svc.service.db.query<{ n: string }>('SELECT count(*) AS n FROM endpoints WHERE deleted_at IS NULL');
  return Number(rows[0]?.n ?? 0);
}

describe('SMART signing keys are checked as keys before they are sealed', () => {
  it('refuses an RSA key under 2048 bits with a 400 naming auth.privateKeyJwk.n, and stores nothing', async () => {
    const before = await endpointCount();
    const res = await registerSmart('Weak RSA', rsaJwk(1024, 'weak-1024'));
    expect(res.status).toBe(400);
    const problem = (await res.json()) as Problem;
    expect(problem.errors).toEqual([expect.objectContaining({ field: 'auth.privateKeyJwk.n', detail: expect.stringMatching(/2048/) })]);
    expect(await endpointCount()).toBe(before);
  });

  it('refuses members that make no key (not a P-384 point) with a 400 naming the field, never echoing the key', async () => {
    const garbage = { kty: 'EC', crv: 'P-384', x: 'AAAA', y: 'AAAA', d: 'c2VjcmV0LXByaXZhdGUtbWVtYmVy', kid: 'garbage', alg: 'ES384' };
    const res = await registerSmart('Garbage EC', garbage);
    const text = await res.text();
    expect(res.status).toBe(400);
    expect((JSON.parse(text) as Problem).errors).toEqual([expect.objectContaining({ field: 'auth.privateKeyJwk', detail: expect.stringMatching(/not a usable private key/) })]);
    expect(text).not.toContain(garbage.d);
  });

  it('refuses a private part that does not belong to its public members (d of one key, x and y of another), for the next key too', async () => {
    const a = await makeSmartClient('mismatch-a', 'ES384');
    const b = await makeSmartClient('mismatch-b', 'ES384');
    const mixed = { ...a.privateKeyJwk, d: b.privateKeyJwk.d };
    const signing = await registerSmart('Mismatched', mixed);
    expect(signing.status).toBe(400);
    expect(((await signing.json()) as Problem).errors).toEqual([expect.objectContaining({ field: 'auth.privateKeyJwk', detail: expect.stringMatching(/does not belong/) })]);
    const next = await registerSmart('Mismatched next', a.privateKeyJwk, { ...mixed, kid: 'mismatch-next' });
    expect(next.status).toBe(400);
    expect(((await next.json()) as Problem).errors.map((e) => e.field)).toEqual(['auth.nextPrivateKeyJwk']);
  });

  it('still registers well-formed RS384 (2048 bits) and ES384 keys', async () => {
    expect((await registerSmart('RSA 2048', rsaJwk(2048, 'rsa-2048'))).status).toBe(201);
    expect((await registerSmart('EC P-384', (await makeSmartClient('ok-ec', 'ES384')).privateKeyJwk)).status).toBe(201);
  });

  it('keeps serving /.well-known/jwks.json when a key stored before these checks yields no public key: that endpoint is left out, the others stay', async () => {
    const good = await makeSmartClient('jwks-good', 'ES384');
    const goodRes = await registerSmart('Good key', good.privateKeyJwk);
    expect(goodRes.status).toBe(201);
    const broken = await makeSmartClient('jwks-broken', 'ES384');
    const { id } = (await (await registerSmart('Broken later', broken.privateKeyJwk)).json()) as EndpointView;
    // A key sealed by an earlier version that did not check it: readable, but no key.
    const box = new SecretBox(svc.config.secretsKey);
    const sealed = box.seal(JSON.stringify({ privateKeyJwk: { kty: 'EC', crv: 'P-384', x: 'AAAA', y: 'AAAA', d: 'AAAA', kid: 'jwks-broken-stored', alg: 'ES384' } }), id);
    await svc.service.db.query('UPDATE endpoints SET sealed_secret = $2, updated_at = now() WHERE id = $1', [id, sealed]);

    const published = await fetch(`${svc.url}/.well-known/jwks.json`);
    expect(published.status).toBe(200);
    const kids = ((await published.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    expect(kids).toContain(good.privateKeyJwk.kid);
    expect(kids).not.toContain('jwks-broken-stored');
  });
});

describe('a new baseUrl', () => {
  it('drops the capabilities read from the previous server, even when the new one cannot be read yet', async () => {
    const created = (await (
      await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Moving EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } })
    ).json()) as EndpointView;
    expect(created.capabilities?.patientEverything).toBe(true);
    expect(created.capabilitiesFetchedAt).not.toBeNull();

    const moved = await startSandboxServer({ name: 'care-team-moved', auth: 'none' });
    try {
      moved.faults.add({ match: 'GET /metadata', action: { kind: 'server-error', message: 'metadata is down' } });
      const res = await svc.request('PATCH', `/api/endpoints/${created.id}`, { token: admin, body: { baseUrl: moved.baseUrl } });
      expect(res.status).toBe(200);
      const patched = (await res.json()) as EndpointView;
      expect(patched.baseUrl).toBe(moved.baseUrl);
      expect(patched.capabilitiesError).toMatch(/\S/);
      // What the old server supports says nothing about the new one: unknown until it is read.
      expect(patched.capabilities).toBeNull();
      expect(patched.capabilitiesFetchedAt).toBeNull();

      moved.faults.clear();
      const refreshed = (await (await svc.request('POST', `/api/endpoints/${created.id}/capabilities`, { token: admin })).json()) as EndpointView;
      expect(refreshed.capabilitiesError).toBeNull();
      expect(refreshed.capabilities?.patientEverything).toBe(true);
    } finally {
      await moved.stop();
    }
  });

  it('keeps the capabilities when only the limits or the name change', async () => {
    const created = (await (
      await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Staying EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } })
    ).json()) as EndpointView;
    const patched = (await (await svc.request('PATCH', `/api/endpoints/${created.id}`, { token: admin, body: { maxConcurrency: 2, baseUrl: ehr.baseUrl } })).json()) as EndpointView;
    expect(patched.capabilities).toEqual(created.capabilities);
    expect(patched.capabilitiesFetchedAt).not.toBeNull();
  });
});
