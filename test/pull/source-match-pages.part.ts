import type { Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { DEMOGRAPHIC_MAX_PAGES } from '../../src/pull/patient-match';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureIntake } from '../support/fixture-child';
import { searchSandbox } from '../support/opinion-case';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * Finding the child at a care team by name and exact birth date reads every page of the Patient
 * search (https://hl7.org/fhir/R4/http.html#paging): a server pages as it likes (`_count` is only a
 * hint, https://hl7.org/fhir/R4/search.html#count) and may ignore a parameter it does not support
 * (https://hl7.org/fhir/R4/search.html#errors), so another child with the same name and birth date
 * can be on page 2. Such a source is left for review with both candidates, never resolved to the
 * page-1 child; a search too big to read to its end (more than the bound) is never resolved either.
 */
let svc: TestService;
/** A care team that answers one Patient per page whatever `_count` asks (maxCount 1). */
let ehr: SandboxServer;
let endpointId: string;
let cm: string;

const BIRTH_DATE = '2016-04-02';
const child = (id: string, family: string, given: string, birthDate = BIRTH_DATE): Patient => ({
  resourceType: 'Patient',
  id,
  active: true,
  name: [{ family, given: [given] }],
  gender: 'female',
  birthDate,
});

/** Two children with the same name and birth date: one per page. */
const TWIN_A = child('paged-twin-a', 'Pagewright', 'Ada');
const TWIN_B = child('paged-twin-b', 'Pagewright', 'Ada');
/** One child, and another of the same name born on another day. */
const ONLY = child('only-child', 'Singleton', 'Maya');
const ONLY_NAMESAKE = child('only-namesake', 'Singleton', 'Maya', '2012-11-30');
/** Children with the same given name and birth date as Crowd, each with another family name. */
const CROWD = child('crowd-child', 'Crowd', 'Noor');
const CROWD_OTHERS = Array.from({ length: DEMOGRAPHIC_MAX_PAGES + 1 }, (_, i) => child(`crowd-other-${i}`, `Other${i}`, 'Noor'));
/** A twin: same family name and birth date, a given name the child's is a prefix of (the sandbox, like FHIR string search, matches prefixes). */
const SAMANTHA = child('twin-samantha', 'Twinning', 'Samantha');
/** The child of that case, not at this care team. */
const SAM = child('twin-sam', 'Twinning', 'Sam');

interface SourceView {
  id: string;
  state: string;
  remotePatientId: string | null;
  candidates: { id: string }[];
  reviewReason: string | null;
}

beforeAll(async () => {
  [svc, ehr] = await Promise.all([
    startTestService({}, FAST_CLIENT),
    startSandboxServer({ name: 'care-team-paged', auth: 'none', paging: 'offset', defaultCount: 1, maxCount: 1 }),
  ]);
  await ehr.load([TWIN_A, TWIN_B, ONLY, ONLY_NAMESAKE, CROWD, ...CROWD_OTHERS, SAMANTHA]);
  cm = await svc.token('case_manager', 'cm-match-pages');
  endpointId = await registerOpenEndpoint(svc, 'Care team paging one by one', ehr.baseUrl);
}, 60_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ehr.stop()]);
});

afterEach(() => {
  ehr.faults.clear();
});

/** Opens a case for `patient` (the fixture intake with its name and birth date) and adds the care team as a source found by demographics. */
async function addMatchedSource(patient: Patient): Promise<SourceView> {
  const base = fixtureIntake();
  const name = patient.name?.[0];
  const intake: Intake = { ...base, patient: { ...base.patient, name: { family: name?.family ?? '', given: name?.given ?? [] }, birthDate: patient.birthDate ?? '' } };
  const opened = await svc.request('POST', '/api/cases', { token: cm, body: intake });
  expect(opened.status).toBe(201);
  const { id } = (await opened.json()) as { id: string };
  const res = await svc.request('POST', `/api/cases/${id}/sources`, { token: cm, body: { endpointId, patient: { match: true } } });
  expect(res.status).toBe(201);
  return (await res.json()) as SourceView;
}

/** Pages after the first asked of the care team's Patient searches (next links carry `_offset`). */
const laterPatientPages = (): number => ehr.requestCount('GET /Patient?*_offset=*');

/** The first page of the demographic search, as the care team answers it. */
const firstPage = (p: Patient): Promise<Patient[]> =>
  searchSandbox<Patient>(ehr, '', 'Patient', { family: p.name?.[0]?.family ?? '', given: p.name?.[0]?.given?.[0] ?? '', birthdate: `eq${p.birthDate}`, _count: '20' });

describe('a care team whose Patient search pages one by one', () => {
  it('leaves the source for review with both candidates when the second same-name same-birth-date child is on page 2', async () => {
    // The premise: page 1 shows one exact match only.
    expect((await firstPage(TWIN_A)).map((p) => p.id)).toHaveLength(1);
    const pagesBefore = laterPatientPages();

    const source = await addMatchedSource(TWIN_A);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null });
    expect(source.candidates.map((c) => c.id).sort()).toEqual(['paged-twin-a', 'paged-twin-b']);
    expect(source.reviewReason).toMatch(/^2 patients at this endpoint match the child's name and exact birth date; choose one/);
    expect(laterPatientPages() - pagesBefore).toBe(1);
  }, 60_000);

  it('resolves the one exact match after reading every page (another birth date on page 2 does not count)', async () => {
    // A server that ignores `birthdate` answers with both namesakes, one per page.
    ehr.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: 'birthdate' } });
    const pagesBefore = laterPatientPages();

    const source = await addMatchedSource(ONLY);

    expect(source).toMatchObject({ state: 'resolved', remotePatientId: 'only-child', reviewReason: null, candidates: [{ id: 'only-child' }] });
    expect(laterPatientPages() - pagesBefore).toBe(1);
  }, 60_000);

  it('resolves a single match on a single page with one search', async () => {
    const searches = ehr.requestCount('GET /Patient');

    const source = await addMatchedSource(ONLY);

    expect(source).toMatchObject({ state: 'resolved', remotePatientId: 'only-child' });
    expect(ehr.requestCount('GET /Patient') - searches).toBe(1);
  }, 60_000);

  it('leaves the source for review, not resolved, when the search pages in a circle', async () => {
    // A server that ignores `family` (the crowd, one per page) and whose later pages link `next` to
    // themselves: the one exact match seen is not known to be the only one.
    const loop = ehr.faults.add({ match: 'GET /Patient', action: { kind: 'paging-loop' }, from: 2 });
    ehr.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: 'family' } });
    const searches = ehr.requestCount('GET /Patient');

    const source = await addMatchedSource(CROWD);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [{ id: 'crowd-child' }] });
    expect(source.reviewReason).toMatch(/pages in a circle/);
    // The first page, then page 2 once: its next link back to itself is not followed.
    expect(ehr.requestCount('GET /Patient') - searches).toBe(2);
    expect(ehr.faults.rule(loop)?.fired).toBe(1);
  }, 60_000);

  it(`leaves the source for review, not resolved, when the search has more than ${DEMOGRAPHIC_MAX_PAGES} pages`, async () => {
    // A server that ignores `family` answers with every child of that given name and birth date.
    ehr.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: 'family' } });
    const searches = ehr.requestCount('GET /Patient');

    const source = await addMatchedSource(CROWD);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null });
    expect(source.reviewReason).toMatch(new RegExp(`more than ${DEMOGRAPHIC_MAX_PAGES} pages.*too many to be sure`));
    // Candidates are the exact matches read (the crowd's others have another family name).
    expect(source.candidates.map((c) => c.id)).toEqual(['crowd-child']);
    // The bound: the first page and its next links, no more.
    expect(ehr.requestCount('GET /Patient') - searches).toBe(DEMOGRAPHIC_MAX_PAGES);
  }, 60_000);

  it("never takes a twin whose given name the child's only begins (given=Sam finds Samantha) for the child", async () => {
    // The premise: the care team's search answers with the twin.
    expect((await firstPage(SAM)).map((p) => p.id)).toEqual(['twin-samantha']);

    const source = await addMatchedSource(SAM);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [] });
    expect(source.reviewReason).toMatch(/^No patient at this endpoint matches the child's name and exact birth date/);
  }, 60_000);

  it('never takes the twin either when the server ignores the given name', async () => {
    ehr.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: 'given' } });

    const source = await addMatchedSource(SAM);

    expect(source).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [] });
  }, 60_000);
});
