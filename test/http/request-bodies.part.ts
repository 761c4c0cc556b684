import { randomUUID } from 'node:crypto';
import { startForFile } from '../support/for-file';
import { sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';

/**
 * Bodies are read per route, after authentication: who may not call a route learns nothing from
 * how its body is parsed, a path no route has is a 404 whatever the body, and a POST whose fields
 * are all optional may be sent without a body.
 */
let svc: TestService;
startForFile(() => startTestService({ BODY_LIMIT: '64kb' }), (started) => (svc = started));

it('answers 401 before looking at the body, and 404 for a path no route has', async () => {
  const json = { 'content-type': 'application/json' };
  expect((await svc.request('POST', '/api/cases', { body: '{bad', headers: json })).status).toBe(401);
  expect((await svc.request('POST', '/api/cases', { body: `{"history":"${'x'.repeat(100_000)}"}`, headers: json })).status).toBe(401);
  const cm = await svc.token('case_manager');
  expect((await svc.request('POST', '/api/nope', { token: cm, body: '{bad', headers: json })).status).toBe(404);
  // With the role, the body's problems are answered as before.
  expect((await svc.request('POST', '/api/cases', { token: cm, body: '{bad', headers: json })).status).toBe(400);
  expect((await svc.request('POST', '/api/cases', { token: cm, body: `{"history":"${'x'.repeat(100_000)}"}`, headers: json })).status).toBe(413);
});

it('takes a bare POST as an empty JSON object, and still refuses a body of another type', async () => {
  const cm = await svc.token('case_manager');
  const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  // Every field of a rebuild is optional: no body, no Content-Type.
  const bare = await fetch(`${svc.url}/api/cases/${id}/bundle/rebuild`, { method: 'POST', headers: { authorization: `Bearer ${cm}` } });
  expect(bare.status).toBe(201);
  // A route whose body has required fields names them, instead of asking for a media type.
  const transition = await fetch(`${svc.url}/api/cases/${id}/transitions`, { method: 'POST', headers: { authorization: `Bearer ${cm}` } });
  expect(transition.status).toBe(400);
  expect(JSON.stringify(await transition.json())).toMatch(/"field":"to"/);
  const text = await svc.request('POST', `/api/cases/${id}/bundle/rebuild`, { token: cm, body: 'rebuild please', headers: { 'content-type': 'text/plain' } });
  expect(text.status).toBe(415);
});

it('says which members of an intake it does not know (dropped, not stored), and none of a correct one', async () => {
  const cm = await svc.token('case_manager');
  const correct = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() });
  expect(correct.status).toBe(201);
  expect(((await correct.json()) as { ignoredFields: string[] }).ignoredFields).toEqual([]);

  const intake = sampleIntake();
  const misspelt = {
    ...intake,
    medicalHistory: 'Seizures since age six.',
    requester: { ...intake.requester, phoneNumber: '+1 719 555 0199' },
    diagnosis: { ...intake.diagnosis, codes: [{ ...intake.diagnosis.codes?.[0], sytem: 'http://snomed.info/sct' }] },
  };
  const res = await svc.request('POST', '/api/cases', { token: cm, body: misspelt });
  expect(res.status).toBe(201);
  const { id, ignoredFields } = (await res.json()) as { id: string; ignoredFields: string[] };
  expect(ignoredFields).toEqual(['requester.phoneNumber', 'diagnosis.codes[0].sytem', 'medicalHistory']);
  // Not stored: the case's intake is what the schema knows.
  const detail = (await (await svc.request('GET', `/api/cases/${id}`, { token: cm })).json()) as { intake: Record<string, unknown> };
  expect(detail.intake).not.toHaveProperty('medicalHistory');
  expect(detail.intake.requester).not.toHaveProperty('phoneNumber');
});

interface Problem {
  title: string;
  detail: string;
  errors?: { field: string; pointer: string; detail: string }[];
}

it('names each member a strict body does not know, at the member itself (not "(body)")', async () => {
  const cm = await svc.token('case_manager');
  const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  const res = await svc.request('POST', `/api/cases/${id}/bundle/rebuild`, { token: cm, body: { reason: 'new mappings', reasn: 'typo', force: true } });
  expect(res.status).toBe(400);
  const problem = (await res.json()) as Problem;
  expect(problem.errors).toEqual([
    { field: 'reasn', pointer: '#/reasn', detail: expect.stringContaining('"reasn"') },
    { field: 'force', pointer: '#/force', detail: expect.stringContaining('"force"') },
  ]);
  expect(problem.detail).toMatch(/^reasn: .*; force: /);
  // Nested: the unknown member's whole path (a strict object inside the body).
  const nested = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId: randomUUID(), patient: { identifier: { system: 'urn:x', value: '1', use: 'official' } } } });
  expect(nested.status).toBe(400);
  expect(((await nested.json()) as Problem).errors?.map((e) => [e.field, e.pointer])).toContainEqual(['patient.identifier.use', '#/patient/identifier/use']);
});

it('ignores a query parameter it does not know on GET …/bundle/changes, as on every other GET (a cache-buster ?_=1)', async () => {
  const cm = await svc.token('case_manager');
  const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${id}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  expect((await svc.request('POST', `/api/cases/${id}/bundle/rebuild`, { token: cm, body: {} })).status).toBe(201);
  for (const route of [`/api/cases/${id}/bundle/changes?_=1`, `/api/cases/${id}/bundle/versions?_=1`, '/api/cases?_=1']) {
    const res = await svc.request('GET', route, { token: cm });
    expect({ route, status: res.status }).toEqual({ route, status: 200 });
  }
  // A parameter it knows is still judged.
  const bad = await svc.request('GET', `/api/cases/${id}/bundle/changes?_=1&limit=0`, { token: cm });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as Problem).errors?.map((e) => e.field)).toEqual(['query.limit']);
});

it('judges a top-level JSON value that is no object by the route schema ("(body): expected object"), not as invalid JSON', async () => {
  const cm = await svc.token('case_manager');
  for (const body of ['null', '"x"', '5', 'true', '[]']) {
    const res = await svc.request('POST', '/api/cases', { token: cm, body, headers: { 'content-type': 'application/json' } });
    expect({ body, status: res.status }).toEqual({ body, status: 400 });
    const problem = (await res.json()) as Problem;
    expect({ body, title: problem.title }).toEqual({ body, title: 'Invalid request' });
    expect(problem.errors?.[0]).toMatchObject({ field: '(body)', pointer: '#/' });
    expect(problem.detail).toMatch(/^\(body\): .*expected object/);
  }
  // Text that is not JSON at all is still "Malformed JSON".
  const broken = await svc.request('POST', '/api/cases', { token: cm, body: 'nul', headers: { 'content-type': 'application/json' } });
  expect(broken.status).toBe(400);
  expect(((await broken.json()) as Problem).title).toBe('Malformed JSON');
});

it('names the path parameter whose %-encoding does not decode (params.<name>), an OperationOutcome on a FHIR route', async () => {
  const cm = await svc.token('case_manager');
  const res = await svc.request('GET', '/api/cases/%E0%A4%A', { token: cm });
  expect(res.status).toBe(400);
  const problem = (await res.json()) as Problem;
  expect(problem.errors).toEqual([{ field: 'params.id', pointer: '#/params/id', detail: expect.stringMatching(/percent-encoding/) }]);
  expect(problem.detail).toMatch(/^params\.id/);
  const source = await svc.request('POST', `/api/cases/${randomUUID()}/sources/%zz/patient`, { token: cm, body: { patientId: 'p1' } });
  expect(source.status).toBe(400);
  expect(((await source.json()) as Problem).errors?.[0]?.field).toBe('params.sourceId');
  const fhir = await svc.request('GET', '/api/cases/%zz/fhir', { token: cm });
  expect(fhir.status).toBe(400);
  expect(fhir.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  expect(await fhir.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', location: ['http.id'] }] });
  // With its trailing slash, the same route; a path no route has stays a 404.
  const slash = await svc.request('GET', '/api/cases/%zz/', { token: cm });
  expect(slash.status).toBe(400);
  expect(((await slash.json()) as Problem).errors?.[0]?.field).toBe('params.id');
  expect((await svc.request('GET', '/api/nothing/%zz', { token: cm })).status).toBe(404);
});

it('refuses a JSON body in another charset than UTF-8 with 415 naming the charset (RFC 8259 §8.1)', async () => {
  const cm = await svc.token('case_manager');
  for (const [charset, named] of [['utf-16', 'utf-16'], ['UTF-16LE', 'utf-16le'], ['"latin1"', 'latin1'], ['iso-8859-1', 'iso-8859-1']] as const) {
    const res = await svc.request('POST', '/api/cases', { token: cm, body: JSON.stringify(sampleIntake()), headers: { 'content-type': `application/json; charset=${charset}` } });
    expect({ charset, status: res.status }).toEqual({ charset, status: 415 });
    const problem = (await res.json()) as Problem;
    expect(problem.detail).toContain(`"${named}"`);
    expect(problem.errors?.[0]?.field).toBe('content-type');
  }
  // UTF-8, said or not, is read.
  for (const contentType of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json']) {
    const res = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: { 'content-type': contentType } });
    expect({ contentType, status: res.status }).toEqual({ contentType, status: 201 });
  }
  // A Content-Encoding it cannot decode: 415 naming it.
  const encoded = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: { 'content-encoding': 'compress' } });
  expect(encoded.status).toBe(415);
  const problem = (await encoded.json()) as Problem;
  expect(problem.detail).toContain('"compress"');
  expect(problem.errors?.[0]?.field).toBe('content-encoding');
  // A body that is not what its Content-Encoding says: 400 naming the header, not "could not be read".
  for (const encoding of ['gzip', 'deflate', 'br']) {
    const bad = await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake(), headers: { 'content-encoding': encoding } });
    expect({ encoding, status: bad.status }).toEqual({ encoding, status: 400 });
    expect(((await bad.json()) as Problem).errors?.[0]?.field).toBe('content-encoding');
  }
});
