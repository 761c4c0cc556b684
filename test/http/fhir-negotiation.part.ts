import { startTestService, type TestService } from '../support/service';
import { sampleIntake } from '../support/intake';
import { openCaseIn } from '../support/opinion-case';

/**
 * `_format` on the FHIR routes (https://hl7.org/fhir/R4/http.html#parameters): it wins over
 * `Accept`, so each value it is given must name FHIR R4 JSON, or the answer is a 406
 * OperationOutcome — never JSON to a client that asked for something else.
 */
let svc: TestService;
let token: string;
let caseId: string;

beforeAll(async () => {
  svc = await startTestService();
  const cm = await svc.token('case_manager', 'cm-negotiation');
  token = await svc.token('ehr', 'ehr-negotiation');
  const res = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() });
  expect(res.status).toBe(201);
  caseId = ((await res.json()) as { id: string }).id;
});
afterAll(async () => {
  await svc.stop();
});

const get = (query: string) => svc.request('GET', `/api/cases/${caseId}/fhir${query}`, { token, headers: { accept: 'application/fhir+json' } });

it('_format sent more than once, or naming another FHIR version, is a 406 OperationOutcome, not JSON', async () => {
  for (const query of ['?_format=xml&_format=xml', '?_format=json&_format=application/fhir%2Bxml', '?_format=application/fhir%2Bjson;%20fhirVersion=3.0']) {
    const res = await get(query);
    expect({ query, status: res.status }).toEqual({ query, status: 406 });
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(await res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] });
  }
  for (const query of ['?_format=json&_format=json', '?_format=application/fhir%2Bjson;%20fhirVersion=4.0', '?_format=application/fhir+json;fhirVersion=4.0.1']) {
    const res = await get(query);
    expect({ query, status: res.status }).toEqual({ query, status: 200 });
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('Bundle');
  }
});

it('answers a method a FHIR route does not take with 405, Allow and an OperationOutcome (not a 404 saying the path does not exist); varies on Accept', async () => {
  const res = await svc.request('POST', `/api/cases/${caseId}/fhir`, { token, body: {} });
  expect(res.status).toBe(405);
  expect(res.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
  expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  expect(await res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported' }] });
  // Other API routes answer problem+json; a path no route has stays a 404.
  const other = await svc.request('DELETE', `/api/cases/${caseId}/transitions`, { token });
  expect(other.status).toBe(405);
  expect(other.headers.get('allow')).toBe('POST, OPTIONS');
  expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect((await svc.request('GET', '/api/no-such-thing', { token })).status).toBe(404);

  const ok = await get('');
  expect(ok.status).toBe(200);
  expect(ok.headers.get('vary')).toMatch(/\bAccept\b/);
});

it('answers OPTIONS on a path the API has with 204 and Allow naming its methods (RFC 9110 §9.3.7); a path no route has stays a 404', async () => {
  const options = (path: string, headers: Record<string, string> = {}) => fetch(`${svc.url}${path}`, { method: 'OPTIONS', headers });
  for (const [path, allow] of [
    [`/api/cases/${caseId}/fhir`, 'GET, HEAD, OPTIONS'],
    [`/api/cases/${caseId}/transitions`, 'POST, OPTIONS'],
    ['/api/cases', 'POST, GET, HEAD, OPTIONS'],
    [`/api/cases/${caseId}/assignment`, 'POST, PUT, GET, HEAD, OPTIONS'],
    ['/healthz', 'GET, HEAD, OPTIONS'],
    ['/openapi.json', 'GET, HEAD, OPTIONS'],
  ] as const) {
    // Without a token (it tells only what the 405 tells), and with one.
    for (const headers of [{}, { authorization: `Bearer ${token}` }] as Record<string, string>[]) {
      const res = await options(path, headers);
      expect({ path, status: res.status, allow: res.headers.get('allow') }).toEqual({ path, status: 204, allow });
      expect(await res.text()).toBe('');
    }
  }
  const unknown = await options('/api/no-such-thing');
  expect(unknown.status).toBe(404);
  expect(unknown.headers.get('allow')).toBeNull();
  // The probes take GET (and HEAD) only, as the API's paths do: another method is a 405 naming them.
  const post = await svc.request('POST', '/healthz', { body: {} });
  expect(post.status).toBe(405);
  expect(post.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
});

it('the case bundle, 200 and 304 alike, varies on Accept (200 or 406) and on Accept-Encoding (gzip or not)', async () => {
  const cm = await svc.token('case_manager', 'cm-negotiation');
  const bundleCase = await openCaseIn(svc, cm, 'records_complete');
  expect((await svc.request('POST', `/api/cases/${bundleCase}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  const route = `/api/cases/${bundleCase}/bundle`;
  const varied = (res: Response): string[] => (res.headers.get('vary') ?? '').split(',').map((f) => f.trim().toLowerCase()).sort();

  const ok = await svc.request('GET', route, { token: cm, headers: { accept: 'application/fhir+json' } });
  expect(ok.status).toBe(200);
  expect(varied(ok)).toEqual(['accept', 'accept-encoding']);
  const etag = ok.headers.get('etag') ?? '';
  await ok.body?.cancel();

  const notModified = await svc.request('GET', route, { token: cm, headers: { accept: 'application/fhir+json', 'if-none-match': etag } });
  expect(notModified.status).toBe(304);
  expect(varied(notModified)).toEqual(['accept', 'accept-encoding']);

  const refused = await svc.request('GET', route, { token: cm, headers: { accept: 'application/fhir+xml' } });
  expect(refused.status).toBe(406);
  expect(varied(refused)).toContain('accept');
});

it('answers a FHIR path whose %-encoding does not decode with a 400 OperationOutcome, as the route would', async () => {
  const res = await svc.request('GET', '/api/cases/%ZZ/fhir', { token, headers: { accept: 'application/fhir+json' } });
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  expect(await res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] });
  // Not a FHIR path: problem+json, as before.
  const other = await svc.request('GET', '/api/cases/%ZZ', { token });
  expect(other.status).toBe(400);
  expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
});
