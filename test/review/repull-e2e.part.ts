import type { Observation } from 'fhir/r4';
import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { referredIntake } from '../support/opinion-case';
import { startServiceAndCareTeamA } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

/**
 * A specialist asks for an incremental re-pull: a new pull of the chosen types, each query `_since`
 * it last completed for the source and patient (in full when it never did), which pauses the SLA until the pull completes and answers the request; the new record
 * reaches the case bundle; the timeline shows the request and its answer.
 */
let svc: TestService;
let teamA: SandboxServer;

startForFile(() => startServiceAndCareTeamA(), (started) => ({ svc, teamA } = started));

interface CaseView {
  status: string;
  sla: { paused: boolean } | null;
  timeline: { type: string; to?: string; data?: Record<string, unknown> }[];
}

it('re-pulls only what changed, pauses the SLA until the pull completes, and answers the request', async () => {
  const [admin, cm, specialist] = await Promise.all([svc.token('admin'), svc.token('case_manager'), svc.token('specialist', 'dr-repull')]);
  const json = async <T>(method: string, route: string, token: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await svc.request(method, route, { token, body });
    return { status: res.status, body: (await res.json()) as T };
  };
  const endpoint = await json<{ id: string }>('POST', '/api/endpoints', admin, { name: 'Care team A', baseUrl: teamA.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true });
  const opened = await json<{ id: string }>('POST', '/api/cases', cm, referredIntake());
  const caseId = opened.body.id;
  expect((await json('POST', `/api/cases/${caseId}/sources`, cm, { endpointId: endpoint.body.id, patient: { id: fixturePatientId('care-team-a') } })).status).toBe(201);
  const first = await json<{ pullId: string }>('POST', `/api/cases/${caseId}/pulls`, cm, {});
  await eventually(async () => (await json<CaseView>('GET', `/api/cases/${caseId}`, cm)).body.status, (s) => s === 'records_complete');
  const firstBundle = await eventually(async () => (await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).headers.get('x-bundle-version'), (v) => v === '1');
  expect(firstBundle).toBe('1');
  // Assignment (payment, specialist) is covered elsewhere; the review starts here.
  await svc.service.db.query(`UPDATE cases SET status = 'assigned', revision = revision + 1 WHERE id = $1`, [caseId]);

  // A result the care team records after the first pull.
  const fresh: Observation = {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }] },
    subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
    effectiveDateTime: '2026-11-20T09:00:00Z',
    valueQuantity: { value: 8.1, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
  };
  const loaded = await teamA.load([fresh], { preserveLastUpdated: false });
  const freshId = loaded.ids.Observation?.[0] ?? '';
  expect(freshId).not.toBe('');

  const asked = await json<{ id: string; state: string; pullId: string; since: string }>('POST', `/api/cases/${caseId}/information-requests`, specialist, {
    kind: 're-pull',
    resourceTypes: ['Observation'],
  });
  expect(asked.status).toBe(201);
  expect(asked.body.pullId).not.toBe(first.body.pullId);
  const paused = (await json<CaseView>('GET', `/api/cases/${caseId}`, cm)).body;
  expect(paused.status).toBe('awaiting_information');
  expect(paused.sla?.paused).toBe(true);

  const answered = await eventually(
    async () => (await json<{ items: { id: string; state: string; answer: string | null }[] }>('GET', `/api/cases/${caseId}/information-requests`, cm)).body.items,
    (items) => items.some((r) => r.id === asked.body.id && r.state === 'answered'),
  );
  expect(answered.find((r) => r.id === asked.body.id)?.answer).toMatch(/re-pull completed/);
  const resumed = (await json<CaseView>('GET', `/api/cases/${caseId}`, cm)).body;
  expect(resumed.status).toBe('in_review');
  expect(resumed.sla?.paused).toBe(false);

  // Incremental: only the Observation query ran, with _since, and it found just the new result; the
  // child's Patient is read again in full by every pull (source-patient-query.ts).
  const { rows: all } = await svc.service.db.query<{ query_key: string; request_params: Record<string, string>; resources: number; type_counts: Record<string, number> }>(
    'SELECT query_key, request_params, resources, type_counts FROM pull_tasks WHERE pull_id = $1',
    [asked.body.pullId],
  );
  const patientTasks = all.filter((t) => t.query_key === 'Patient');
  expect(patientTasks.map((t) => t.request_params)).toEqual([{ _id: expect.any(String) }]);
  const tasks = all.filter((t) => t.query_key !== 'Patient');
  expect(tasks.length).toBeGreaterThan(0);
  expect(tasks.every((t) => typeof t.request_params._since === 'string' || typeof t.request_params._lastUpdated === 'string')).toBe(true);
  expect(tasks.reduce((n, t) => n + (t.type_counts.Observation ?? 0), 0)).toBe(1);
  const bundle = (await (await svc.request('GET', `/api/cases/${caseId}/bundle`, { token: cm })).json()) as { entry: { resource: Partial<Observation> & { resourceType: string } }[] };
  const inBundle = bundle.entry.filter((e) => e.resource.resourceType === 'Observation' && e.resource.effectiveDateTime === fresh.effectiveDateTime && e.resource.valueQuantity?.value === 8.1);
  expect(inBundle).toHaveLength(1);
  const types = resumed.timeline.map((e) => e.type);
  expect(types).toEqual(expect.arrayContaining(['information_requested', 'information_request_answered']));

  // A second re-pull, of documents too: each query from when it last completed. The documents were
  // last pulled by the first pull, not by the Observation re-pull: from then (or in full), never from
  // the re-pull's start (which would miss documents changed between the two).
  const again = await json<{ id: string; pullId: string }>('POST', `/api/cases/${caseId}/information-requests`, specialist, { kind: 're-pull', resourceTypes: ['Observation', 'DocumentReference'] });
  expect(again.status).toBe(201);
  // By the EHR's clock: the time it gave with the first page of that query's last complete run, less a minute (server-time.ts).
  const { rows: earlier } = await svc.service.db.query<{ pull_id: string; query_key: string; server_time: Date | null }>(
    'SELECT pull_id, query_key, server_time FROM pull_tasks WHERE pull_id = ANY($1::uuid[])',
    [[first.body.pullId, asked.body.pullId]],
  );
  const boundOf = (pullId: string, queryKey: string): string => {
    const time = earlier.find((t) => t.pull_id === pullId && t.query_key === queryKey)?.server_time;
    return time ? new Date(time.getTime() - 60_000).toISOString() : 'missing';
  };
  const { rows: planned } = await svc.service.db.query<{ resource_type: string; query_key: string; request_params: Record<string, string> }>(
    'SELECT resource_type, query_key, request_params FROM pull_tasks WHERE pull_id = $1',
    [again.body.pullId],
  );
  const sinceOf = (t: { request_params: Record<string, string> }): string | undefined => t.request_params._since ?? t.request_params._lastUpdated?.replace(/^gt/, '');
  const documents = planned.filter((t) => t.query_key.includes('DocumentReference'));
  const observations = planned.filter((t) => !t.query_key.includes('DocumentReference') && t.query_key !== 'Patient');
  expect(documents.length).toBeGreaterThan(0);
  for (const t of documents) expect([undefined, boundOf(first.body.pullId, t.query_key)]).toContain(sinceOf(t));
  for (const t of observations) expect(sinceOf(t)).toBe(boundOf(asked.body.pullId, t.query_key));
}, 120_000);
