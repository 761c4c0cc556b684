import type { DiagnosticReport, Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { DEMOGRAPHIC_MAX_PAGES } from '../../src/pull/patient-match';
import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { openCaseIn, opinionFor, referredIntake, searchSandbox } from '../support/opinion-case';
import { childLookAlike, listDeliveries, startServiceAndReferringEhr, type DeliveryView } from '../support/referring-ehr-world';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

/**
 * Finding the child in the referring physician's EHR by name and exact birth date, before the
 * signed opinion is filed in her chart there, reads every page of the Patient search
 * (https://hl7.org/fhir/R4/http.html#paging): `_count` is only a hint
 * (https://hl7.org/fhir/R4/search.html#count) and a server may ignore a parameter
 * (https://hl7.org/fhir/R4/search.html#errors). Another child with the same name and birth date on
 * page 2, or a search that does not end within the bound, sends the delivery to `needs_review`:
 * nothing is written into anyone's chart.
 */
let svc: TestService;
/** The referring EHR, answering one Patient per page whatever `_count` asks (maxCount 1). */
let ehr: SandboxServer;
let endpointId: string;
let cm: string;
let specialist: string;

const CHILD = referredIntake().patient;
const CHILD_ID = fixturePatientId('referring-ehr');

const lookAlike = (id: string, name: { family: string; given: string[] }, birthDate = CHILD.birthDate): Patient => childLookAlike(id, name, { birthDate });

const TWIN_NAME = { family: 'Pagewright', given: ['Bea'] };
const TWIN_A = lookAlike('paged-twin-a', TWIN_NAME);
const TWIN_B = lookAlike('paged-twin-b', TWIN_NAME);
const LONE_NAME = { family: 'Lonesome', given: ['Iris'] };
const LONE = lookAlike('lone-child', LONE_NAME);
/** Two records carrying one MRN (a registration error the EHR has not merged yet), one per page. */
const SHARED_MRN = { system: 'urn:oid:2.16.840.1.113883.19.5.99', value: 'MRN-DUP-77' };
const MRN_A: Patient = { ...lookAlike('mrn-dup-a', { family: 'Doubleday', given: ['Ann'] }), identifier: [SHARED_MRN] };
const MRN_B: Patient = { ...lookAlike('mrn-dup-b', { family: 'Doubleday', given: ['Anna'] }), identifier: [SHARED_MRN] };
/** The fixture child's namesake, born on another day. */
const NAMESAKE = lookAlike('child-namesake', { family: CHILD.name.family, given: [...CHILD.name.given] }, '2011-06-15');

startForFile(
  () =>
    startServiceAndReferringEhr({
      env: { DELIVERY_BACKOFF_MS: '50', DELIVERY_ATTEMPTS: '3' },
      ehr: { name: 'referring-ehr-paged', defaultCount: 1, maxCount: 1 },
      load: [TWIN_A, TWIN_B, LONE, NAMESAKE, MRN_A, MRN_B],
    }),
  (started) => ({ svc, ehr } = started),
);

beforeAll(async () => {
  cm = await svc.token('case_manager', 'cm-recipient-pages');
  specialist = await svc.token('specialist', 'spec-recipient-pages');
  endpointId = await registerOpenEndpoint(svc, 'Referring EHR paging one by one', ehr.baseUrl);
});

afterEach(() => {
  ehr.faults.clear();
});

/** A case for a child named `name` (the fixture child's birth date), signed, its one recipient the referring EHR (found by demographics). */
async function signedCase(name: { family: string; given: string[] }): Promise<{ caseId: string; recipientId: string }> {
  const intake: Intake = referredIntake({ patient: { ...CHILD, name } });
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const added = await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId } });
  expect(added.status).toBe(201);
  const recipientId = ((await added.json()) as { id: string }).id;
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  return { caseId, recipientId };
}

/** A signed case whose one recipient, the referring EHR, names the child by MRN. */
async function signedCaseByMrn(): Promise<{ caseId: string; recipientId: string }> {
  const intake: Intake = referredIntake({ patient: { ...CHILD, name: { family: 'Doubleday', given: ['Ann'] } } });
  const caseId = await openCaseIn(svc, cm, 'assigned', intake);
  const added = await svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId, patient: { identifier: SHARED_MRN } } });
  expect(added.status).toBe(201);
  const recipientId = ((await added.json()) as { id: string }).id;
  expect((await svc.request('PUT', `/api/cases/${caseId}/opinion`, { token: specialist, body: opinionFor(intake) })).status).toBe(200);
  expect((await svc.request('POST', `/api/cases/${caseId}/opinion/sign`, { token: specialist })).status).toBe(201);
  return { caseId, recipientId };
}

/** The case's version 1 delivery once it ended (the queue runs it; nothing pushes its end to a test). */
async function settled(caseId: string): Promise<DeliveryView> {
  const mine = (all: DeliveryView[]) => all.find((d) => d.version === 1 && d.endpointId === endpointId);
  const all = await eventually(
    () => listDeliveries(svc, cm, caseId),
    (d) => ['delivered', 'failed', 'needs_review'].includes(mine(d)?.state ?? ''),
    60_000,
  );
  return mine(all) as DeliveryView;
}

async function recipientPatient(caseId: string, recipientId: string): Promise<string | null | undefined> {
  const res = await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm });
  return ((await res.json()) as { items: { id: string; remotePatientId: string | null }[] }).items.find((r) => r.id === recipientId)?.remotePatientId;
}

const reportsOf = (caseId: string) => searchSandbox<DiagnosticReport>(ehr, '', 'DiagnosticReport', { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1` });

/** The first page of the demographic search, as the EHR answers it. */
const firstPage = (name: { family: string; given: string[] }): Promise<Patient[]> =>
  searchSandbox<Patient>(ehr, '', 'Patient', { family: name.family, given: name.given[0] ?? '', birthdate: `eq${CHILD.birthDate}`, _count: '20' });

describe('a referring EHR whose Patient search pages one by one', () => {
  it('sends the delivery to needs_review with both children when the second same-name same-birth-date child is on page 2, writing nothing', async () => {
    // The premise: page 1 shows one exact match only.
    expect(await firstPage(TWIN_NAME)).toHaveLength(1);
    const writesBefore = ehr.writtenResources().length;

    const { caseId, recipientId } = await signedCase(TWIN_NAME);
    const delivery = await settled(caseId);

    expect(delivery.state).toBe('needs_review');
    expect(delivery.candidates.map((c) => c.id).sort()).toEqual(['paged-twin-a', 'paged-twin-b']);
    expect(delivery.reviewReason).toMatch(/^2 patients at the recipient match the child's name and exact birth date; choose one/);
    expect(await recipientPatient(caseId, recipientId)).toBeNull();
    expect(ehr.writtenResources()).toHaveLength(writesBefore);
    expect(await reportsOf(caseId)).toHaveLength(0);
  }, 90_000);

  it(`sends the delivery to needs_review when the search goes on past ${DEMOGRAPHIC_MAX_PAGES} pages, writing nothing`, async () => {
    // Paging that never ends: the page after the last links to another (empty) one, and so on.
    ehr.faults.add({ match: 'GET /Patient', action: { kind: 'endless-paging' } });
    const writesBefore = ehr.writtenResources().length;
    const searches = ehr.requestCount('GET /Patient');

    const { caseId, recipientId } = await signedCase(LONE_NAME);
    const delivery = await settled(caseId);

    expect(delivery.state).toBe('needs_review');
    expect(delivery.reviewReason).toMatch(new RegExp(`^Not resolved at the recipient: .*more than ${DEMOGRAPHIC_MAX_PAGES} pages.*too many to be sure`));
    expect(delivery.candidates.map((c) => c.id)).toEqual(['lone-child']);
    expect(ehr.requestCount('GET /Patient') - searches).toBe(DEMOGRAPHIC_MAX_PAGES);
    expect(await recipientPatient(caseId, recipientId)).toBeNull();
    expect(ehr.writtenResources()).toHaveLength(writesBefore);
    expect(await reportsOf(caseId)).toHaveLength(0);
  }, 90_000);

  it('reads every page of a search by MRN: a second record with the same MRN on page 2 sends the delivery to needs_review, writing nothing', async () => {
    expect(await searchSandbox<Patient>(ehr, '', 'Patient', { identifier: `${SHARED_MRN.system}|${SHARED_MRN.value}` })).toHaveLength(1);
    const writesBefore = ehr.writtenResources().length;

    const { caseId, recipientId } = await signedCaseByMrn();
    const delivery = await settled(caseId);

    expect(delivery.state).toBe('needs_review');
    expect(delivery.candidates.map((c) => c.id).sort()).toEqual(['mrn-dup-a', 'mrn-dup-b']);
    expect(delivery.reviewReason).toMatch(/^2 patients at the recipient match the identifier; choose one/);
    expect(await recipientPatient(caseId, recipientId)).toBeNull();
    expect(ehr.writtenResources()).toHaveLength(writesBefore);
  }, 90_000);

  it('delivers under the one exact match after reading every page (a namesake born another day on page 2 does not count)', async () => {
    // A server that ignores `birthdate` answers with both namesakes, one per page.
    ehr.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: 'birthdate' } });
    const pagesBefore = ehr.requestCount('GET /Patient?*_offset=*');

    const { caseId, recipientId } = await signedCase({ family: CHILD.name.family, given: [...CHILD.name.given] });
    const delivery = await settled(caseId);

    expect(delivery.state).toBe('delivered');
    expect(ehr.requestCount('GET /Patient?*_offset=*') - pagesBefore).toBe(1);
    expect(await recipientPatient(caseId, recipientId)).toBe(CHILD_ID);
    const [report] = await reportsOf(caseId);
    expect(report?.subject?.reference).toBe(`Patient/${CHILD_ID}`);
  }, 90_000);
});
