import { randomBytes } from 'node:crypto';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox/sandbox-server';
import { makeSmartClient } from '../support/smart-client';
import { startTestService, type TestService } from '../support/service';

/**
 * The service reopened with another `SECRETS_KEY` over the same database (a key changed without
 * re-sealing): every endpoint whose sealed secret it cannot open is flagged `secretUnreadable`,
 * bearer ones too, and the admin actions that need the secret answer 409 naming `auth` (register it
 * again) instead of a bare 500.
 */
let keyA: TestService;
let keyB: TestService;
let smartEhr: SandboxServer;
let openEhr: SandboxServer;

interface View {
  id: string;
  auth: { type: string; secretStored: boolean; secretUnreadable?: boolean; keyId?: string; nextKeyId?: string };
}
interface Problem {
  status: number;
  detail: string;
  errors: { field: string; detail: string }[];
}

const ids: Record<'smart' | 'bearer' | 'none', string> = { smart: '', bearer: '', none: '' };

beforeAll(async () => {
  [keyA, smartEhr, openEhr] = await Promise.all([
    startTestService({ SECRETS_KEY: randomBytes(32).toString('base64') }),
    startSandboxServer({ name: 'smart-ehr', auth: 'smart' }),
    startSandboxServer({ name: 'open-ehr', auth: 'none' }),
  ]);
  const [client, next] = await Promise.all([makeSmartClient('rekeyed-client', 'ES384'), makeSmartClient('rekeyed-next', 'ES384')]);
  smartEhr.registerClient({ clientId: client.clientId, jwks: client.publicJwks });
  const admin = await keyA.token('admin', 'admin-a');
  const register = async (body: Record<string, unknown>): Promise<string> => {
    const res = await keyA.request('POST', '/api/endpoints', { token: admin, body: { allowInsecureHttp: true, ...body } });
    if (res.status !== 201) throw new Error(`registration refused: ${res.status} ${await res.text()}`);
    return ((await res.json()) as View).id;
  };
  ids.smart = await register({
    name: 'SMART',
    baseUrl: smartEhr.baseUrl,
    auth: { type: 'smart-backend', clientId: client.clientId, privateKeyJwk: client.privateKeyJwk, nextPrivateKeyJwk: next.privateKeyJwk },
  });
  ids.bearer = await register({ name: 'Bearer', baseUrl: openEhr.baseUrl, auth: { type: 'bearer', token: 'bearer-token-sealed-under-a' } });
  ids.none = await register({ name: 'None', baseUrl: openEhr.baseUrl, auth: { type: 'none' } });
  // Key A reads its own secrets: nothing flagged, the key set served.
  const views = ((await (await keyA.request('GET', '/api/endpoints', { token: admin })).json()) as { items: View[] }).items;
  expect(views.filter((v) => v.auth.secretUnreadable)).toEqual([]);
  expect((await keyA.request('GET', `/api/endpoints/${ids.smart}/jwks`, { token: admin })).status).toBe(200);
  // The same database, reopened with key B.
  keyB = await startTestService({ DATABASE_URL: keyA.config.databaseUrl ?? '', SECRETS_KEY: randomBytes(32).toString('base64') });
});
afterAll(async () => {
  await keyB?.stop();
  await Promise.all([keyA?.stop(), smartEhr?.stop(), openEhr?.stop()]);
});

it('flags every endpoint whose sealed secret this key cannot open, bearer ones too, in the list and the single view', async () => {
  const admin = await keyB.token('admin', 'admin-b');
  const views = ((await (await keyB.request('GET', '/api/endpoints', { token: admin })).json()) as { items: View[] }).items;
  const auth = (id: string) => views.find((v) => v.id === id)?.auth;
  expect(auth(ids.smart)).toMatchObject({ type: 'smart-backend', secretStored: true, secretUnreadable: true });
  expect(auth(ids.bearer)).toMatchObject({ type: 'bearer', secretStored: true, secretUnreadable: true });
  expect(auth(ids.none)).toEqual({ type: 'none', secretStored: false });
  const one = (await (await keyB.request('GET', `/api/endpoints/${ids.bearer}`, { token: admin })).json()) as View;
  expect(one.auth).toMatchObject({ type: 'bearer', secretUnreadable: true });
});

it("answers the endpoint's JWKS and a key promotion with 409 naming auth (register it again), not a 500; nothing changes", async () => {
  const admin = await keyB.token('admin', 'admin-b');
  for (const [method, path] of [['GET', `/api/endpoints/${ids.smart}/jwks`], ['POST', `/api/endpoints/${ids.smart}/keys/promote`]] as const) {
    const res = await keyB.request(method, path, { token: admin });
    expect({ path, status: res.status }).toEqual({ path, status: 409 });
    const problem = (await res.json()) as Problem;
    expect(problem.errors).toEqual([expect.objectContaining({ field: 'auth', detail: expect.stringContaining('register its auth again') })]);
    expect(JSON.stringify(problem)).not.toMatch(/decipher|authenticate|Unsupported state/i);
  }
  // Key A still opens it: the promotion changed nothing.
  const row = await keyA.service.db.query<{ sealed_secret: string }>('SELECT sealed_secret FROM endpoints WHERE id = $1', [ids.smart]);
  expect(row.rows).toHaveLength(1);
  const stillA = (await (await keyA.request('GET', `/api/endpoints/${ids.smart}`, { token: await keyA.token('admin') })).json()) as View;
  expect(stillA.auth).toMatchObject({ keyId: 'rekeyed-client-es384', nextKeyId: 'rekeyed-next-es384' });
  expect(stillA.auth).not.toHaveProperty('secretUnreadable');
  // Our public JWKS leaves the unreadable key out rather than failing.
  expect((await fetch(`${keyB.url}/.well-known/jwks.json`)).status).toBe(200);
});

it('opens again once the auth is registered under the new key', async () => {
  const admin = await keyB.token('admin', 'admin-b');
  const res = await keyB.request('PATCH', `/api/endpoints/${ids.bearer}`, { token: admin, body: { auth: { type: 'bearer', token: 'bearer-token-sealed-under-b' } } });
  expect(res.status).toBe(200);
  expect(((await res.json()) as View).auth).toEqual({ type: 'bearer', secretStored: true });
});
