/**
 * FhirEndpointClient end to end against the project's sandbox FHIR server (src/sandbox): SMART
 * Backend Services auth, paging, $everything, Binary, conditional create, and its fault injection.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import { CircuitOpenError, OffOriginUrlError } from '../../src/fhir/errors';
import type { SearchPage } from '../../src/fhir/fhir-json';
import { generateClientKey, publicJwkOf, startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { makeClient } from './support/client';
import { testRedis, type TestRedis } from './support/redis';

const CLIENT_ID = 'second-opinion-bridge';
const PDF = Buffer.from('%PDF-1.4\n% sandbox attachment\n'.repeat(2000));

let env: TestRedis;
let redis: Redis;
let server: SandboxServer;
let tokenServer: SandboxServer;
let privateJwk: Awaited<ReturnType<typeof generateClientKey>>;

function observations(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    resourceType: 'Observation' as const,
    id: `o${i}`,
    status: 'final' as const,
    code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
    subject: { reference: 'Patient/p1' },
    valueQuantity: { value: 12 + (i % 10) / 10, unit: 'g/dL' },
  }));
}

beforeAll(async () => {
  env = testRedis('sandbox');
  redis = env.connect();
  privateJwk = await generateClientKey('ES384');
  server = await startSandboxServer({ name: 'fhir-e2e', auth: 'smart', paging: 'offset', maxCount: 1000 });
  tokenServer = await startSandboxServer({ name: 'fhir-e2e-token', auth: 'smart', paging: 'token' });
  const data = [
    { resourceType: 'Patient' as const, id: 'p1', gender: 'female' as const },
    ...observations(1200),
    { resourceType: 'Binary' as const, id: 'pdf1', contentType: 'application/pdf', data: PDF.toString('base64') },
  ];
  for (const s of [server, tokenServer]) {
    s.registerClient({ clientId: CLIENT_ID, jwks: { keys: [publicJwkOf(privateJwk)] } });
    await s.load(data);
  }
});

afterAll(async () => {
  await Promise.all([server.stop(), tokenServer.stop()]);
  await env.cleanup();
});

beforeEach(() => {
  server.faults.clear();
});

const client = (s: SandboxServer = server, deps = {}) =>
  makeClient(redis, env.prefix, s.baseUrl, { auth: { type: 'smart-backend', clientId: CLIENT_ID, privateKeyJwk: privateJwk, scope: 'system/*.read system/*.write' } }, deps);

async function pageAll(c: ReturnType<typeof client>['client'], first: () => Promise<SearchPage>): Promise<string[]> {
  const ids: string[] = [];
  let page = await first();
  for (;;) {
    ids.push(...(page.bundle.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`));
    if (!page.nextUrl) return ids;
    page = await c.fetchPage(page.nextUrl);
  }
}

it('pages a search with SMART auth on offset and token paging servers', async () => {
  for (const s of [server, tokenServer]) {
    const { client: c, events } = client(s);
    const ids = await pageAll(c, () => c.search('Observation', { patient: 'p1', _count: '500' }));
    expect(ids).toHaveLength(1200);
    expect(new Set(ids).size).toBe(1200);
    expect(events.filter((e) => e.type === 'token-refreshed')).toHaveLength(1);
    await c.close();
  }
});

it('pulls Patient/$everything through operation()', async () => {
  const { client: c } = client();
  const ids = await pageAll(c, () => c.operation('Patient/p1/$everything', { _count: '1000' }));
  expect(ids).toContain('Patient/p1');
  expect(ids.filter((id) => id.startsWith('Observation/'))).toHaveLength(1200);
  await c.close();
});

it('rides out 429, 503 (HTTP-date), 500, truncated, malformed and reset pages', async () => {
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'rate-limit', retryAfterSeconds: 2 }, nth: 1 });
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'unavailable', retryAfterSeconds: 3, retryAfterFormat: 'http-date' }, nth: 3 });
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'server-error' }, nth: 5 });
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'truncated' }, nth: 7 });
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'malformed-json' }, nth: 9 });
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'reset' }, nth: 11 });
  const { client: c, sleeps, events } = client();
  const ids = await pageAll(c, () => c.search('Observation', { patient: 'p1', _count: '100' }));
  expect(ids).toHaveLength(1200);
  const retries = events.filter((e) => e.type === 'retry');
  expect(retries.map((e) => e.type === 'retry' && e.reason.split(';')[0])).toEqual([
    'http-429',
    'http-503',
    'http-500',
    expect.stringMatching(/^network: /), // truncated: socket closed mid-body
    'malformed: body is not valid JSON',
    expect.stringMatching(/^network: /), // reset
  ]);
  expect(sleeps[0]).toBe(2000);
  // HTTP-date has 1 s resolution: between 2 and 4 s from now.
  expect(sleeps[1]).toBeGreaterThan(1000);
  expect(sleeps[1]).toBeLessThanOrEqual(4000);
  await c.close();
});

it('refreshes the token after an expired-token 401 and retries once', async () => {
  const { client: c, events } = client();
  await c.read('Patient', 'p1');
  server.faults.add({ match: 'GET /Patient/*', action: { kind: 'expired-token' }, nth: 1 });
  await expect(c.read('Patient', 'p1')).resolves.toMatchObject({ id: 'p1' });
  expect(events.filter((e) => e.type === 'token-refreshed').length).toBeGreaterThanOrEqual(1);
  await c.close();
});

it('refuses a foreign next link and an off-origin redirect', async () => {
  server.faults.add({ match: 'GET /Observation*', action: { kind: 'foreign-next-link', origin: 'http://169.254.169.254' } });
  server.faults.add({ match: 'GET /Patient/p1', action: { kind: 'redirect', location: 'http://10.0.0.1/fhir/Patient/p1' } });
  const { client: c } = client();
  const page = await c.search('Observation', { patient: 'p1', _count: '10' });
  expect(page.nextUrl).toMatch(/^http:\/\/169\.254\.169\.254\//);
  await expect(c.fetchPage(page.nextUrl ?? '')).rejects.toThrow(OffOriginUrlError);
  await expect(c.read('Patient', 'p1')).rejects.toMatchObject({ name: 'OffOriginUrlError', context: 'redirect' });
  await c.close();
});

it('streams a Binary with hashes', async () => {
  const { client: c } = client();
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const result = await c.fetchBinaryTo('Binary/pdf1', sink, { maxBytes: 10_000_000, accept: 'application/pdf' });
  expect(result).toMatchObject({ contentType: 'application/pdf', size: PDF.length, sha256: createHash('sha256').update(PDF).digest('hex') });
  expect(Buffer.concat(chunks).equals(PDF)).toBe(true);
  await expect(c.fetchBinary('Binary/pdf1', { maxBytes: 1000, accept: 'application/pdf' })).rejects.toMatchObject({ name: 'AttachmentTooLargeError' });
  await c.close();
});

it('creates conditionally exactly once', async () => {
  const { client: c } = client();
  const report = {
    resourceType: 'DiagnosticReport' as const,
    status: 'final' as const,
    identifier: [{ system: 'urn:sob:opinion', value: 'case-42' }],
    code: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
    subject: { reference: 'Patient/p1' },
  };
  const first = await c.createConditional(report, 'identifier=urn:sob:opinion|case-42');
  const second = await c.createConditional(report, 'identifier=urn:sob:opinion|case-42');
  expect(first.status).toBe(201);
  expect(second.status).toBe(200);
  expect(server.writtenResources('DiagnosticReport')).toHaveLength(1);
  await c.close();
});

it('opens the circuit after repeated failures and stops calling the server', async () => {
  server.faults.add({ match: 'GET /Patient/*', action: { kind: 'unavailable' } });
  const { client: c } = client(server, { retry: { maxAttempts: 2 }, breaker: { failureThreshold: 2, cooldownMs: 60_000 } });
  await c.read('Observation', 'o1'); // token, and a healthy endpoint
  for (let i = 0; i < 2; i += 1) await expect(c.read('Patient', 'p1')).rejects.toMatchObject({ status: 503 });
  const before = server.requestCount('GET /Patient/*');
  await expect(c.read('Patient', 'p1')).rejects.toThrow(CircuitOpenError);
  expect(server.requestCount('GET /Patient/*')).toBe(before);
  await c.close();
});
