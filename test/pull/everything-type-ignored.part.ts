import type { FhirResource } from 'fhir/r4';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A server that ignores `_type` on `Patient/$everything` answers each of the plan's `_type` streams
 * with the whole record: before, each of the 7 streams downloaded all of it and the progress counted
 * it 7 times (16 resources shown as 112). Now a stream's first page shows it (matches of types its
 * `_type` does not name): one stream asks again for everything, without `_type`, with an information message among
 * its server messages, and the others end with nothing stored, saying which stream brings their types.
 * The record is downloaded once and counted once. Real service, PostgreSQL, Redis and a sandbox EHR
 * with the `ignore-parameter` fault.
 */
let svc: TestService;
let ehr: SandboxServer;
let endpointId: string;
let cm: string;

const PAGE = 5;
const subject = { reference: 'Patient/p1' };
const RECORD: FhirResource[] = [
  { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
  ...[1, 2, 3, 4].map((n): FhirResource => ({ resourceType: 'Observation', id: `obs${n}`, status: 'final', code: { text: `test ${n}` }, subject })),
  ...[1, 2].map((n): FhirResource => ({ resourceType: 'Condition', id: `cond${n}`, code: { text: `condition ${n}` }, subject })),
  ...[1, 2].map((n): FhirResource => ({ resourceType: 'Encounter', id: `enc${n}`, status: 'finished', class: { code: 'AMB' }, subject })),
  { resourceType: 'DiagnosticReport', id: 'dr1', status: 'final', code: { text: 'panel' }, subject },
  { resourceType: 'Immunization', id: 'imm1', status: 'completed', vaccineCode: { text: 'MMR' }, patient: subject, occurrenceDateTime: '2017-01-02' },
  { resourceType: 'AllergyIntolerance', id: 'all1', patient: subject, code: { text: 'peanut' } },
  { resourceType: 'Procedure', id: 'proc1', status: 'completed', code: { text: 'biopsy' }, subject },
  { resourceType: 'Medication', id: 'med1', code: { text: 'insulin' } },
  { resourceType: 'MedicationRequest', id: 'mr1', status: 'active', intent: 'order', medicationReference: { reference: 'Medication/med1' }, subject },
  { resourceType: 'ImagingStudy', id: 'img1', status: 'available', subject },
];

interface PullView {
  state: string;
  assembledVersion: number | null;
  totals: { resources: number; tasks: number; tasksComplete: number };
  sources: { resourceTypes: { query: string; state: string; pages: number; resources: number; serverMessages: { severity: string; text: string }[] }[] }[];
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50' }, FAST_CLIENT);
  cm = await svc.token('case_manager');
  // Small pages, so that the record takes several of them.
  ehr = await startSandboxServer({ name: 'ehr', auth: 'none', defaultCount: PAGE, maxCount: PAGE });
  await ehr.load(RECORD);
  endpointId = await registerOpenEndpoint(svc, 'EHR', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

afterEach(() => {
  ehr.faults.clear();
});

async function pulledCase(): Promise<{ caseId: string; pull: PullView }> {
  const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild('Ada', 'Quill', '2016-01-02') })).json()) as { id: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: 'p1' } } })).status).toBe(201);
  const started = await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} });
  expect(started.status).toBe(202);
  const { pullId } = (await started.json()) as { pullId: string };
  const pull = await eventually(
    async () => (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullView,
    (p) => ['complete', 'partial', 'failed'].includes(p.state) && p.assembledVersion !== null,
    60_000,
  );
  return { caseId, pull };
}

const rawRows = async (caseId: string): Promise<number> =>
  (await svc.service.db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1', [caseId])).rows[0]?.n ?? 0;

it('downloads and counts the record once when the server ignores _type on $everything', async () => {
  ehr.faults.add({ match: 'GET /Patient/*', action: { kind: 'ignore-parameter', name: '_type' } });
  const requestsBefore = ehr.requestCount();

  const { caseId, pull } = await pulledCase();

  expect(pull.state).toBe('complete');
  const streams = pull.sources[0]?.resourceTypes ?? [];
  expect(streams.length).toBe(7);
  expect(streams.every((s) => s.state === 'complete')).toBe(true);
  // Counted once: as many as stored, which is the whole record.
  expect(await rawRows(caseId)).toBe(RECORD.length);
  expect(pull.totals.resources).toBe(RECORD.length);
  // One stream brought it all, with an information message; the six others stored nothing and say which one did.
  const leads = streams.filter((s) => s.resources > 0);
  expect(leads).toHaveLength(1);
  const lead = leads[0];
  expect(lead?.query).toBe('Patient/$everything:Patient,AllergyIntolerance,Condition,Immunization,Procedure');
  expect(lead?.pages).toBe(Math.ceil(RECORD.length / PAGE));
  expect(lead?.serverMessages).toEqual([expect.objectContaining({ severity: 'information', text: expect.stringMatching(/^The server ignored _type on Patient\/\$everything/) })]);
  for (const other of streams.filter((s) => s !== lead)) {
    expect(other).toMatchObject({ pages: 0, resources: 0 });
    expect(other.serverMessages).toEqual([expect.objectContaining({ severity: 'information', text: expect.stringContaining(`come with the stream ${lead?.query ?? ''}`) })]);
  }
  // About one stream's worth of requests: the lead's pages, and each stream's first page (read, not
  // stored); and the read of the Patient when the source was added.
  expect(ehr.requestCount() - requestsBefore).toBe((lead?.pages ?? 0) + streams.length + 1);
}, 120_000);

it('changes nothing for a server that honours _type', async () => {
  const requestsBefore = ehr.requestCount();

  const { caseId, pull } = await pulledCase();

  expect(pull.state).toBe('complete');
  const streams = pull.sources[0]?.resourceTypes ?? [];
  expect(streams.every((s) => s.serverMessages.length === 0)).toBe(true);
  expect(await rawRows(caseId)).toBe(RECORD.length);
  expect(pull.totals.resources).toBe(RECORD.length);
  // Each stream's pages, and the read of the Patient when the source was added.
  expect(ehr.requestCount() - requestsBefore).toBe(streams.reduce((n, s) => n + s.pages, 0) + 1);
}, 120_000);
