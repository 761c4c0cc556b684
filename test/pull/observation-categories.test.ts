import type { Observation } from 'fhir/r4';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { referredIntake } from '../support/opinion-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A server searched per type (no `$everything`) is asked for the child's Observations of every
 * category: US Core servers search them by patient and category, so a developmental screening
 * (`survey`) or an exam is found only when its category is asked for.
 */
let svc: TestService;
let teamA: SandboxServer;
beforeAll(async () => {
  [svc, teamA] = await Promise.all([startTestService({}, FAST_CLIENT), startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset' })]);
  await teamA.load(fixtureBundle('care-team-a'));
}, 60_000);
afterAll(async () => {
  await Promise.all([svc.stop(), teamA.stop()]);
});

/** An Observation of the child filed under one US Core category (https://hl7.org/fhir/us/core/STU6.1/CodeSystem-us-core-category.html). */
const usCore = (code: string, loinc: string, display: string): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category', code }] }],
  code: { coding: [{ system: 'http://loinc.org', code: loinc, display }] },
  subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
  effectiveDateTime: '2026-10-03T10:00:00Z',
  valueString: 'Recorded',
});

it('pulls Observations of the categories beyond laboratory and vital signs, US Core ones included, in one query', async () => {
  const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
  const screening: Observation = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '71354-5', display: 'Ages and Stages Questionnaire - 3 [ASQ-3]' }] },
    subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
    effectiveDateTime: '2026-10-02T10:00:00Z',
    valueString: 'No concerns',
  };
  const usCoreOnes = [
    usCore('sdoh', '88122-7', 'Within the past 12 months we worried whether our food would run out before we got money to buy more'),
    usCore('functional-status', '75246-9', 'Mobility - functional status'),
    usCore('cognitive-status', '72106-8', 'Total score [MMSE]'),
    usCore('disability-status', '69859-8', 'Has serious difficulty walking or climbing stairs'),
  ];
  const loaded = await teamA.load([screening, ...usCoreOnes], { preserveLastUpdated: false });
  const observationIds = loaded.ids.Observation ?? [];
  expect(observationIds).toHaveLength(5);
  const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A (searches)', baseUrl: teamA.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
  const endpointId = ((await res.json()) as { id: string }).id;
  await svc.service.db.query(`UPDATE endpoints SET capabilities = jsonb_set(capabilities, '{patientEverything}', 'false') WHERE id = $1`, [endpointId]);
  const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: referredIntake() })).json()) as { id: string }).id;
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string };
  await eventually(async () => (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state, (s) => s === 'complete' || s === 'partial' || s === 'failed', 60_000);
  const { rows } = await svc.service.db.query<{ remote_id: string }>(
    "SELECT remote_id FROM raw_resources WHERE case_id = $1 AND resource_type = 'Observation' AND remote_id = ANY($2::text[]) ORDER BY 1",
    [caseId, observationIds],
  );
  expect(rows.map((r) => r.remote_id)).toEqual([...observationIds].sort());
  const { rows: tasks } = await svc.service.db.query<{ query_key: string; state: string }>("SELECT query_key, state FROM pull_tasks WHERE pull_id = $1 AND resource_type = 'Observation' ORDER BY query_key", [pullId]);
  expect(tasks).toEqual([
    { query_key: 'Observation:laboratory', state: 'complete' },
    { query_key: 'Observation:other-categories', state: 'complete' },
    { query_key: 'Observation:vital-signs', state: 'complete' },
  ]);
}, 90_000);
