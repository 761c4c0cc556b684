import type { Patient } from 'fhir/r4';
import { fixtureBundle, fixturePatientId } from '../support/fixture-child';
import { startRepullWorld, type RepullWorld } from './repull-support';

/**
 * A source is never resolved to a Patient record that no longer stands for its person at the EHR
 * (`fhir/patient-standing.ts`: merged into another record, `link` of type `replaced-by`, or inactive,
 * https://hl7.org/fhir/R4/patient-definitions.html#Patient.link) — the rule every pull and delivery
 * apply: adding a source by id leaves it in `needs_review` with the merge's survivor as the candidate,
 * choosing such a record is a 422 naming `patientId`, and a demographic match resolves to the survivor
 * when the only other match is the record the server merged into it (never otherwise). Real service,
 * PostgreSQL, Redis and a sandbox FHIR server over HTTP.
 */

let world: RepullWorld;
let original: Patient;
const childId = fixturePatientId('care-team-a');
const SURVIVOR = 'nora-survivor';
const OTHER = 'nora-duplicate';

interface SourceView { id: string; state: string; remotePatientId: string | null; reviewReason: string | null; candidates: { id: string }[] }

beforeAll(async () => {
  world = await startRepullWorld(() => Date.now());
  original = world.teamA.read('Patient', childId) as Patient;
}, 60_000);
afterEach(async () => {
  // The next test finds care team A as the fixture has it (no survivor, no duplicate).
  world.teamA.reset();
  await world.teamA.load(fixtureBundle('care-team-a'));
});
afterAll(async () => {
  await world.stop();
});

/** The child's record merged into `SURVIVOR` (a copy of it, current) at care team A. */
async function mergeChildRecord(): Promise<void> {
  const { meta: _meta, ...child } = original;
  await world.teamA.load(
    [
      { ...(child as Patient), id: SURVIVOR, active: true, link: [{ other: { reference: `Patient/${childId}` }, type: 'replaces' }] },
      { ...(child as Patient), active: false, link: [{ other: { reference: `Patient/${SURVIVOR}` }, type: 'replaced-by' }] },
    ],
    { preserveLastUpdated: false },
  );
}

async function addSource(caseId: string, patient: unknown): Promise<{ status: number; body: SourceView }> {
  const [admin, cm] = await Promise.all([world.svc.token('admin'), world.svc.token('case_manager')]);
  const endpoint = await world.svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A again', baseUrl: world.teamA.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
  const endpointId = ((await endpoint.json()) as { id: string }).id;
  const res = await world.svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient } });
  return { status: res.status, body: (await res.json()) as SourceView };
}

/** A new case whose only source (care team A, by the child's id) is then removed, so another can be added. */
async function caseWithoutSource(): Promise<string> {
  const caseId = await world.openCase();
  const cm = await world.svc.token('case_manager');
  const sources = ((await (await world.svc.request('GET', `/api/cases/${caseId}/sources`, { token: cm })).json()) as { items: SourceView[] }).items;
  for (const s of sources) await world.svc.request('DELETE', `/api/cases/${caseId}/sources/${s.id}`, { token: cm, body: { reason: 'added again below' } });
  return caseId;
}

it('adding a source by the id of a merged record leaves it in review, offering the survivor; choosing the merged record is a 422, the survivor resolves', async () => {
  await mergeChildRecord();
  const caseId = await caseWithoutSource();
  const added = await addSource(caseId, { id: childId });
  expect(added.status).toBe(201);
  expect(added.body).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [{ id: SURVIVOR }] });
  expect(added.body.reviewReason).toBe(
    `Patient/${childId} no longer stands for its person at this endpoint: it was replaced by Patient/${SURVIVOR} there (link replaced-by): choose that record instead; it is inactive there (active: false).`,
  );

  const cm = await world.svc.token('case_manager');
  const choose = (patientId: string) => world.svc.request('POST', `/api/cases/${caseId}/sources/${added.body.id}/patient`, { token: cm, body: { patientId } });
  const refused = await choose(childId);
  expect(refused.status).toBe(422);
  const problem = (await refused.json()) as { detail: string; errors: { field: string; detail: string }[] };
  expect(problem.errors[0]?.field).toBe('patientId');
  expect(problem.detail).toMatch(/no longer stands for its person at this endpoint: it was replaced by Patient\/nora-survivor/);
  const chosen = await choose(SURVIVOR);
  expect(chosen.status).toBe(200);
  expect(await chosen.json()).toMatchObject({ state: 'resolved', remotePatientId: SURVIVOR });
}, 60_000);

it('an inactive record chosen by id: review, no candidate', async () => {
  const { meta: _meta, ...child } = original;
  await world.teamA.load([{ ...(child as Patient), active: false }], { preserveLastUpdated: false });
  const caseId = await caseWithoutSource();
  const added = await addSource(caseId, { id: childId });
  expect(added.body).toMatchObject({ state: 'needs_review', remotePatientId: null, candidates: [] });
  expect(added.body.reviewReason).toMatch(/it is inactive there \(active: false\)\.$/);
}, 60_000);

it('a demographic match resolves to the survivor when the only other match is the record merged into it', async () => {
  await mergeChildRecord();
  const caseId = await caseWithoutSource();
  const added = await addSource(caseId, { match: true });
  expect(added.status).toBe(201);
  expect(added.body).toMatchObject({ state: 'resolved', remotePatientId: SURVIVOR });
}, 60_000);

it('but never picks between two matches when the server says of no merge between them', async () => {
  const { meta: _meta, ...child } = original;
  // The child's record current, a copy made inactive without a link: two children as far as we know.
  await world.teamA.load([{ ...(child as Patient), id: OTHER, active: false }], { preserveLastUpdated: false });
  const caseId = await caseWithoutSource();
  const added = await addSource(caseId, { match: true });
  expect(added.body.state).toBe('needs_review');
  expect(added.body.candidates.map((c) => c.id).sort()).toEqual([childId, OTHER].sort());
}, 60_000);
