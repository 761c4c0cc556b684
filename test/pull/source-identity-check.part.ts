import type { Patient } from 'fhir/r4';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { intakeForChild } from '../support/intake';
import { searchSandbox } from '../support/opinion-case';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * A source added by a patient id or an identifier (MRN) is the case's child only if the record passes
 * the exact demographic match against the intake (exact birth date, family name, first given name
 * whole): an MRN typed for another child — a sibling, a mix-up — leaves the source in `needs_review`
 * with that record as the candidate and what differs, never `resolved` (assembly would link that
 * child's record to the case Patient). The case manager's explicit choice of the patient
 * (`POST …/sources/:id/patient`) stays the override. An identifier search is read to its last page
 * (a server that ignores `identifier` answers with every patient; a second record with the MRN may be
 * on a later page), within a bound; one not read to its end is never resolved from.
 * Real service, PostgreSQL, Redis and sandbox FHIR servers over HTTP.
 */
let svc: TestService;
/** A care team that filters by identifier. */
let ehr: SandboxServer;
/** A care team paging one Patient per page (it is made to ignore `identifier` per test). */
let lenient: SandboxServer;
let endpointId: string;
let lenientEndpointId: string;
let cm: string;

const MRN = 'urn:mrn';
const patient = (id: string, family: string, given: string, birthDate: string, mrn: string): Patient => ({
  resourceType: 'Patient',
  id,
  active: true,
  name: [{ family, given: [given] }],
  birthDate,
  identifier: [{ system: MRN, value: mrn }],
});
const ADA = patient('ada', 'Quill', 'Ada', '2016-01-02', '1001');
const OTHER = patient('other', 'Brandt', 'Leo', '2019-07-30', '1002');
/** Another record of Ada's, carrying her MRN too (a duplicate the care team has not merged). */
const ADA_DUPLICATE = patient('ada-duplicate', 'Quill', 'Ada', '2016-01-02', '1001');
/** Patients the lenient care team is given later, so that an MRN holder sits beyond the page bound. */
const CROWD = Array.from({ length: 6 }, (_, i) => patient(`crowd-${i}`, `Crowd${i}`, 'Kim', '2015-05-05', `9${i}`));
const LATE = patient('late', 'Late', 'Lou', '2014-04-04', '7777');
/** A child whose MRN holds a comma (FHIR search reads an unescaped one as "12 or 34"). */
const CLEO = patient('cleo', 'Quill', 'Cleo', '2017-03-04', '12,34');

interface SourceView {
  id: string;
  state: string;
  remotePatientId: string | null;
  candidates: { id: string; name?: string; birthDate?: string }[];
  reviewReason: string | null;
}

beforeAll(async () => {
  [svc, ehr, lenient] = await Promise.all([
    startTestService({}, FAST_CLIENT),
    startSandboxServer({ name: 'care-team-ids', auth: 'none' }),
    startSandboxServer({ name: 'care-team-lenient', auth: 'none', paging: 'offset', defaultCount: 1, maxCount: 1 }),
  ]);
  await ehr.load([ADA, OTHER, CLEO]);
  await lenient.load([ADA, OTHER, ADA_DUPLICATE]);
  cm = await svc.token('case_manager', 'cm-identity');
  [endpointId, lenientEndpointId] = await Promise.all([
    registerOpenEndpoint(svc, 'Care team by ids', ehr.baseUrl),
    registerOpenEndpoint(svc, 'Care team ignoring identifier', lenient.baseUrl),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop(), lenient.stop()]);
});

afterEach(() => {
  ehr.faults.clear();
  lenient.faults.clear();
});

/** Opens Ada's case (intake: Ada Quill, born 2016-01-02); its id. */
async function openAdasCase(): Promise<string> {
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild('Ada', 'Quill', '2016-01-02') });
  expect(opened.status).toBe(201);
  return ((await opened.json()) as { id: string }).id;
}

async function addSource(caseId: string, patientSelector: unknown, at = endpointId): Promise<SourceView> {
  const res = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: at, patient: patientSelector } });
  expect(res.status).toBe(201);
  return (await res.json()) as SourceView;
}

it('finds a child by an MRN holding a comma: the search value is escaped', async () => {
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: intakeForChild('Cleo', 'Quill', '2017-03-04') });
  expect(opened.status).toBe(201);
  const source = await addSource(((await opened.json()) as { id: string }).id, { identifier: { system: MRN, value: '12,34' } });
  expect(source).toMatchObject({ state: 'resolved', remotePatientId: 'cleo' });
  expect(ehr.requestCount('GET /Patient?*identifier=urn%3Amrn%7C12%5C%2C34*')).toBe(1);
}, 60_000);

describe("a source added by an id or an MRN for Ada's case", () => {
  it("leaves another child's MRN in review with that child as the candidate, never resolved", async () => {
    const source = await addSource(await openAdasCase(), { identifier: { system: MRN, value: '1002' } });

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [{ id: 'other', birthDate: '2019-07-30' }] });
    expect(source.reviewReason).toMatch(/^Patient\/other, found by the identifier, does not match the child of this case/);
    expect(source.reviewReason).toMatch(/birth date/);
    expect(source.reviewReason).toMatch(/family name/);
    // What differs is said without the other child's data.
    expect(source.reviewReason).not.toMatch(/Brandt|Leo|2019/);
  }, 60_000);

  it("leaves another child's id in review the same way", async () => {
    const source = await addSource(await openAdasCase(), { id: 'other' });

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [{ id: 'other' }] });
    expect(source.reviewReason).toMatch(/^Patient\/other, found by its id, does not match the child of this case/);
  }, 60_000);

  it("resolves Ada's own MRN and id", async () => {
    const byMrn = await addSource(await openAdasCase(), { identifier: { system: MRN, value: '1001' } });
    expect(byMrn).toMatchObject({ state: 'resolved', remotePatientId: 'ada', reviewReason: null });
    const byId = await addSource(await openAdasCase(), { id: 'ada' });
    expect(byId).toMatchObject({ state: 'resolved', remotePatientId: 'ada', reviewReason: null });
  }, 60_000);

  it("lets the case manager choose the record explicitly (the override)", async () => {
    const caseId = await openAdasCase();
    const source = await addSource(caseId, { id: 'other' });
    expect(source.state).toBe('needs_review');

    const chosen = await svc.request('POST', `/api/cases/${caseId}/sources/${source.id}/patient`, { token: cm, body: { patientId: 'other' } });

    expect(chosen.status).toBe(200);
    expect(await chosen.json()).toMatchObject({ state: 'resolved', remotePatientId: 'other', patientChanged: false });
  }, 60_000);
});

describe('a care team that ignores the identifier parameter (one patient per page)', () => {
  beforeEach(() => {
    lenient.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: 'identifier' } });
  });

  it("reads every page: a second record with Ada's MRN on a later page leaves the source in review with both", async () => {
    // The premise: the first page holds Ada alone.
    expect((await searchSandbox<Patient>(lenient, '', 'Patient', { identifier: `${MRN}|1001` })).map((p) => p.id)).toEqual(['ada']);
    const searches = lenient.requestCount('GET /Patient');

    const source = await addSource(await openAdasCase(), { identifier: { system: MRN, value: '1001' } }, lenientEndpointId);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null });
    expect(source.candidates.map((c) => c.id).sort()).toEqual(['ada', 'ada-duplicate']);
    expect(source.reviewReason).toMatch(/^2 patients at this endpoint match the identifier/);
    // Every page: the first and its two next links.
    expect(lenient.requestCount('GET /Patient') - searches).toBe(3);
  }, 60_000);

  it('never resolves from a search it could not read to its end', async () => {
    // More patients than the bound of pages: the one with the MRN is beyond it.
    await lenient.load([...CROWD, LATE]);
    const source = await addSource(await openAdasCase(), { identifier: { system: MRN, value: '7777' } }, lenientEndpointId);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [] });
    expect(source.reviewReason).toMatch(/ignores the parameter.*could not be read to its end \(it has more than 5 pages\)/);
  }, 60_000);
});
