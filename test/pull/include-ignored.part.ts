import type { Endpoint as MedplumEndpoint } from '@medplum/fhirtypes';
import type { Bundle, ImagingStudy, Reference } from 'fhir/r4';
import { eventually } from '../support/service';
import { startRepullWorld, type RepullWorld } from './repull-support';

/**
 * A server may ignore a search parameter it does not support, `_include` among them
 * (https://hl7.org/fhir/R4/search.html#errors, https://hl7.org/fhir/R4/search.html#include). The
 * per-type plan relied on `_include=ImagingStudy:endpoint` alone: from an EHR ignoring it the
 * ImagingStudy came without its Endpoint, and the case bundle's study no longer said where its
 * images are (normalize dropped the reference it could not resolve). What a page's `_include` should
 * have brought and did not is now read from the EHR and stored with the page; an `_include` the EHR
 * honours costs no request more.
 */

interface QueryProgress {
  query: string;
  state: string;
  resources: number;
  included: number;
  byType: Record<string, number>;
  serverMessages: { severity: string; code: string; text: string; pages: number }[];
}
interface PullProgress {
  state: string;
  assembledVersion: number | null;
  sources: { resourceTypes: QueryProgress[] }[];
}

/** Care team A's one Endpoint (both ImagingStudies point at it) and the four Medications its five MedicationRequests reference. */
const ENDPOINT_ID = 'e0aONkiYcmjQDNRKh6amQ';
const MEDICATION_IDS = ['eRbZUcAKOQUz3TmY9YlZK', 'eYwvc08FTyatAsFp3R38V', 'eaTOXOz2QiNl92Bf9KhJr', 'eovMZuH59OLcGIgLTU45e'];
/** Requests that read an Endpoint or a Medication (by id, or by an `_id` search), not the searches of the plan. */
const FOLLOW_UP_READS = 'GET ~^/(Endpoint|Medication)(/|\\?|$)';

let world: RepullWorld;

beforeAll(async () => {
  world = await startRepullWorld(() => Date.now());
}, 60_000);
afterAll(async () => {
  await world.stop();
});
afterEach(() => {
  world.teamA.faults.clear();
});

/** A new case for care team A's child, pulled by the searches per type (no `$everything`): the queries with `_include`. */
async function openSearchCase(): Promise<string> {
  return world.openCase({ searchPerType: true });
}

/** Pulls the case's ImagingStudies and MedicationRequests; the pull's progress once its bundle is assembled. */
async function pullImagingAndMedications(caseId: string): Promise<{ pullId: string; progress: PullProgress }> {
  const { pullId, state } = await world.pull(caseId, { types: ['ImagingStudy', 'MedicationRequest'] });
  expect(state).toBe('complete');
  const cm = await world.svc.token('case_manager');
  const progress = await eventually(
    async () => (await (await world.svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as PullProgress,
    (p) => p.assembledVersion !== null,
  );
  return { pullId, progress };
}

async function storedIds(caseId: string, resourceType: string): Promise<string[]> {
  const { rows } = await world.svc.service.db.query<{ remote_id: string }>(
    'SELECT remote_id FROM raw_resources WHERE case_id = $1 AND resource_type = $2 ORDER BY remote_id',
    [caseId, resourceType],
  );
  return rows.map((r) => r.remote_id);
}

function query(progress: PullProgress, key: string): QueryProgress | undefined {
  return progress.sources.flatMap((s) => s.resourceTypes).find((q) => q.query === key);
}

/** Every `endpoint` reference of the bundle's ImagingStudies (top level and per series), and the bundle's Endpoint entries' fullUrls. */
async function studyEndpoints(caseId: string, version: number): Promise<{ references: (string | undefined)[]; endpointEntries: string[] }> {
  const res = await world.svc.request('GET', `/api/cases/${caseId}/bundle?version=${version}`, { token: await world.svc.token('case_manager') });
  expect(res.status).toBe(200);
  const bundle = (await res.json()) as Bundle;
  const studies = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is ImagingStudy => r?.resourceType === 'ImagingStudy');
  expect(studies).toHaveLength(2);
  const references = studies.flatMap((s): Reference[] => [...(s.endpoint ?? []), ...(s.series ?? []).flatMap((series) => series.endpoint ?? [])]);
  const endpointEntries = (bundle.entry ?? []).filter((e) => e.resource?.resourceType === 'Endpoint').map((e) => e.fullUrl ?? '');
  return { references: references.map((r) => r.reference), endpointEntries };
}

it('sends no request more when the EHR honours _include', async () => {
  const caseId = await openSearchCase();
  const before = world.teamA.requestCount(FOLLOW_UP_READS);
  const { progress } = await pullImagingAndMedications(caseId);

  expect(world.teamA.requestCount(FOLLOW_UP_READS)).toBe(before);
  expect(await storedIds(caseId, 'Endpoint')).toEqual([ENDPOINT_ID]);
  expect(query(progress, 'ImagingStudy')).toMatchObject({ state: 'complete', included: 1, byType: { ImagingStudy: 2, Endpoint: 1 }, serverMessages: [] });
}, 120_000);

it('reads what an ignored _include should have brought, stores it with the page, and the bundle resolves the references', async () => {
  const caseId = await openSearchCase();
  world.teamA.faults.add({ match: 'GET /ImagingStudy', action: { kind: 'ignore-parameter', name: '_include' } });
  world.teamA.faults.add({ match: 'GET /MedicationRequest', action: { kind: 'ignore-parameter', name: '_include' } });
  const endpointReads = world.teamA.requestCount(`GET /Endpoint/${ENDPOINT_ID}`);
  const medicationRequests = world.teamA.requestCount('GET ~^/Medication(/|\\?|$)');
  const { pullId, progress } = await pullImagingAndMedications(caseId);

  // The EHR sent the matches alone; the Endpoint both studies point at was read once, the Medications by one `_id` search.
  expect(world.teamA.requestCount(`GET /Endpoint/${ENDPOINT_ID}`) - endpointReads).toBe(1);
  expect(world.teamA.requestCount('GET ~^/Medication(/|\\?|$)') - medicationRequests).toBe(1);
  expect(await storedIds(caseId, 'Endpoint')).toEqual([ENDPOINT_ID]);
  expect(await storedIds(caseId, 'Medication')).toEqual(MEDICATION_IDS);
  // Counted as the included resources the EHR would have sent.
  expect(query(progress, 'ImagingStudy')).toMatchObject({ state: 'complete', resources: 3, included: 1, byType: { ImagingStudy: 2, Endpoint: 1 }, serverMessages: [] });
  expect(query(progress, 'MedicationRequest')).toMatchObject({ state: 'complete', resources: 9, included: 4, byType: { MedicationRequest: 5, Medication: 4 } });
  // Stored as received: the bytes the EHR sent for the Endpoint.
  const { rows } = await world.svc.service.db.query<{ pull_id: string; resource: { id: string; address: string } }>(
    `SELECT pull_id, resource FROM raw_resources WHERE case_id = $1 AND resource_type = 'Endpoint'`,
    [caseId],
  );
  expect(rows).toEqual([{ pull_id: pullId, resource: expect.objectContaining({ id: ENDPOINT_ID, address: world.teamA.read<MedplumEndpoint>('Endpoint', ENDPOINT_ID)?.address }) }]);

  // The bundle's studies say where their images are: each endpoint reference points at the bundle's Endpoint entry.
  const { references, endpointEntries } = await studyEndpoints(caseId, progress.assembledVersion ?? 0);
  expect(endpointEntries).toHaveLength(1);
  expect(references).toHaveLength(4);
  for (const reference of references) expect(reference).toBe(endpointEntries[0]);

  // Pulled again: what the raw store holds for the source is not read again, nor stored twice.
  const again = await pullImagingAndMedications(caseId);
  expect(world.teamA.requestCount(`GET /Endpoint/${ENDPOINT_ID}`) - endpointReads).toBe(1);
  expect(world.teamA.requestCount('GET ~^/Medication(/|\\?|$)') - medicationRequests).toBe(1);
  expect(await storedIds(caseId, 'Endpoint')).toEqual([ENDPOINT_ID]);
  expect(query(again.progress, 'ImagingStudy')).toMatchObject({ state: 'complete', serverMessages: [] });
}, 180_000);

it('says an Endpoint the EHR no longer has among the query\'s server messages, and the query completes', async () => {
  // Last in the file: the Endpoint is deleted at the EHR.
  const deleted = await fetch(`${world.teamA.baseUrl}/Endpoint/${ENDPOINT_ID}`, { method: 'DELETE' });
  expect(deleted.ok).toBe(true);
  const caseId = await openSearchCase();
  world.teamA.faults.add({ match: 'GET /ImagingStudy', action: { kind: 'ignore-parameter', name: '_include' } });
  const endpointReads = world.teamA.requestCount(`GET /Endpoint/${ENDPOINT_ID}`);
  const { progress } = await pullImagingAndMedications(caseId);

  expect(world.teamA.requestCount(`GET /Endpoint/${ENDPOINT_ID}`) - endpointReads).toBe(1);
  expect(await storedIds(caseId, 'Endpoint')).toEqual([]);
  const imaging = query(progress, 'ImagingStudy');
  expect(imaging).toMatchObject({ state: 'complete', resources: 2, included: 0 });
  expect(imaging?.serverMessages).toEqual([
    { severity: 'warning', code: 'not-found', text: expect.stringMatching(new RegExp(`^Endpoint/${ENDPOINT_ID}, which the results reference \\(_include=ImagingStudy:endpoint\\), could not be read: HTTP (404|410)$`)), pages: 1 },
  ]);
}, 120_000);
