import dns from 'node:dns';
import type { HostResolver } from '../../src/fhir';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox/sandbox-server';
import { startTestService, type TestService } from '../support/service';

/**
 * A temporary DNS failure while a URL is checked at registration or edit (EAI_AGAIN, a timeout) is a
 * 503 with Retry-After naming the field — the same request may pass in a moment — not a 500, and not
 * a 400 that says the URL is wrong. A name that does not exist (ENOTFOUND) stays a 400.
 * The lookup is this process's outbound resolver, injected as FhirClientDeps.resolve.
 */
const dnsError = (code: string): Error => Object.assign(new Error(`getaddrinfo ${code}`), { code });
const resolve: HostResolver = async (hostname) => {
  if (hostname.endsWith('.dns-trouble.test')) throw dnsError('EAI_AGAIN');
  if (hostname.endsWith('.no-such-host.test')) throw dnsError('ENOTFOUND');
  return dns.promises.lookup(hostname, { all: true, verbatim: true });
};

let svc: TestService;
let ehr: SandboxServer;
let admin: string;

beforeAll(async () => {
  [svc, ehr] = await Promise.all([startTestService({}, { clientOptions: { resolve } }), startSandboxServer({ name: 'dns-ehr', auth: 'none' })]);
  admin = await svc.token('admin', 'admin-dns');
});
afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

interface Problem {
  status: number;
  errors: { field: string; pointer: string; detail: string }[];
}

async function expectRetryLater(res: Response, field: string): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  const problem = (await res.json()) as Problem;
  expect(problem.errors).toEqual([expect.objectContaining({ field, pointer: `#/${field}`, detail: expect.stringMatching(/temporary DNS failure/) })]);
}

it('answers an endpoint registration whose host cannot be looked up right now 503 with Retry-After naming baseUrl, and keeps nothing', async () => {
  const before = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM endpoints');
  const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'DNS trouble', baseUrl: 'https://ehr.dns-trouble.test/fhir', auth: { type: 'none' } } });
  await expectRetryLater(res, 'baseUrl');
  const after = await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM endpoints');
  expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
  // A name that does not exist is still the caller's mistake.
  const missing = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Missing', baseUrl: 'https://ehr.no-such-host.test/fhir', auth: { type: 'none' } } });
  expect(missing.status).toBe(400);
  expect(((await missing.json()) as Problem).errors[0]?.field).toBe('baseUrl');
});

it('answers an endpoint edit moving it to such a host 503 naming baseUrl, and leaves the endpoint as it was', async () => {
  const created = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Loopback', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const res = await svc.request('PATCH', `/api/endpoints/${id}`, { token: admin, body: { baseUrl: 'http://ehr.dns-trouble.test:8080/fhir' } });
  await expectRetryLater(res, 'baseUrl');
  const kept = (await (await svc.request('GET', `/api/endpoints/${id}`, { token: admin })).json()) as { baseUrl: string };
  expect(kept.baseUrl).toBe(ehr.baseUrl);
});

it('answers a webhook registration whose host cannot be looked up right now 503 naming url (not a 400 saying the URL is refused)', async () => {
  const body = { secret: 's'.repeat(40), events: ['opinion.signed'] };
  const res = await svc.request('POST', '/api/webhooks', { token: admin, body: { ...body, url: 'https://hooks.dns-trouble.test/sob' } });
  await expectRetryLater(res, 'url');
  const listed = (await (await svc.request('GET', '/api/webhooks', { token: admin })).json()) as { items: unknown[] };
  expect(listed.items).toEqual([]);
  const missing = await svc.request('POST', '/api/webhooks', { token: admin, body: { ...body, url: 'https://hooks.no-such-host.test/sob' } });
  expect(missing.status).toBe(400);
  expect(((await missing.json()) as Problem).errors[0]?.field).toBe('url');
});
