import { sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';

/**
 * Bodies are read per route, after authentication: who may not call a route learns nothing from
 * how its body is parsed, a path no route has is a 404 whatever the body, and a POST whose fields
 * are all optional may be sent without a body.
 */
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ BODY_LIMIT: '64kb' });
});
afterAll(async () => {
  await svc.stop();
});

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
