import type { Bundle, Patient } from 'fhir/r4';
import { fixturePatientId } from '../support/fixture-child';
import { eventually } from '../support/service';
import { startRepullWorld, type RepullWorld } from './repull-support';

/**
 * The case bundle links the case Patient to the child's Patient at each source, and patient matching
 * rests on that record; the care team may correct it at any time (a name, a new identifier, a birth
 * date, `active: false`, a `link` replaced-by after a merge: https://hl7.org/fhir/R4/patient-definitions.html#Patient.link).
 * Pulls limited to some types, pulls `since` an instant and a specialist's incremental re-pulls never
 * asked for the Patient again, so such a change was never seen after the first pull. Every pull reads
 * it again now, through the same query (and checks) as the first pull.
 */

const DAY = 24 * 3600_000;
const MRN = 'http://care-team-a.example.org/fhir/sid/mrn';
const NEW_IDS = 'http://care-team-a.example.org/fhir/sid/enterprise';

let ehrNow = Date.now() - 10 * DAY;
let world: RepullWorld;
const childId = fixturePatientId('care-team-a');

beforeAll(async () => {
  world = await startRepullWorld(() => ehrNow);
}, 60_000);
afterAll(async () => {
  await world.stop();
});

/** Care team A changes the child's Patient (a day later on its clock). */
async function correctPatient(change: (p: Patient) => Patient): Promise<void> {
  ehrNow += DAY;
  const current = world.teamA.read('Patient', childId) as Patient;
  const { meta: _meta, ...rest } = current;
  await world.teamA.load([change(rest as Patient)], { preserveLastUpdated: false });
}

/** The child's Patient rows stored by `pullId`. */
async function patientStoredBy(caseId: string, pullId: string): Promise<Patient[]> {
  const { rows } = await world.svc.service.db.query<{ resource: Patient }>(
    `SELECT resource FROM raw_resources WHERE case_id = $1 AND resource_type = 'Patient' AND remote_id = $2 AND pull_id = $3`,
    [caseId, childId, pullId],
  );
  return rows.map((r) => r.resource);
}

const withIdentifier = (value: string) => (p: Patient): Patient => ({ ...p, identifier: [...(p.identifier ?? []), { system: NEW_IDS, value }] });

it('reads the source Patient again in a pull limited to other types, a pull since an instant and an incremental re-pull; the bundle shows the new version', async () => {
  const caseId = await world.openCase();
  expect((await world.pull(caseId, {})).state).toBe('complete');

  // Limited to Conditions: the Patient is asked for all the same.
  await correctPatient(withIdentifier('E-1'));
  const limited = await world.pull(caseId, { types: ['Condition'] });
  expect(limited.state).toBe('complete');
  expect((await patientStoredBy(caseId, limited.pullId)).map((p) => p.identifier?.map((i) => i.value))).toEqual([['BSC00417722', 'E-1']]);

  // Since an instant after the correction's: the Patient is read in full, not only when it changed since.
  await correctPatient((p) => ({ ...withIdentifier('E-2')(p), name: [{ use: 'official', family: 'Halvorsen', given: ['Nora', 'Elisabeth'] }] }));
  const since = await world.pull(caseId, { since: new Date(ehrNow + DAY).toISOString(), types: ['Condition'] });
  expect(since.state).toBe('complete');
  expect((await patientStoredBy(caseId, since.pullId)).map((p) => p.name?.[0]?.given)).toEqual([['Nora', 'Elisabeth']]);

  // The specialist's incremental re-pull: the care team linked another record of hers (`seealso`: both
  // stay in use, so the source stays resolved; a merge, `replaced-by`, puts it in review:
  // repull-source-patient-merged.part.ts).
  await correctPatient((p) => ({ ...p, active: true, link: [{ type: 'seealso', other: { reference: 'Patient/older-record' } }] }));
  const again = await world.pull(caseId, { incremental: true, types: ['Condition'] });
  expect(again.state).toBe('complete');
  expect((await patientStoredBy(caseId, again.pullId)).map((p) => [p.active, p.link?.[0]?.type])).toEqual([[true, 'seealso']]);

  // Stored once per version (the Patient task run again stores nothing twice)…
  const { rows } = await world.svc.service.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1 AND resource_type = 'Patient' AND remote_id = $2`,
    [caseId, childId],
  );
  expect(rows[0]?.n).toBe(4);
  // …and the bundle the re-pull assembled carries the source's Patient as it is now.
  const cm = await world.svc.token('case_manager');
  const pull = await eventually(
    async () => (await (await world.svc.request('GET', `/api/cases/${caseId}/pulls/${again.pullId}`, { token: cm })).json()) as { assembledVersion: number | null },
    (p) => p.assembledVersion !== null,
  );
  const bundle = (await (await world.svc.request('GET', `/api/cases/${caseId}/bundle?version=${pull.assembledVersion ?? ''}`, { token: cm })).json()) as Bundle;
  const sourcePatient = bundle.entry?.map((e) => e.resource).find((r): r is Patient => r?.resourceType === 'Patient' && (r.identifier ?? []).some((i) => i.system === MRN));
  expect(sourcePatient?.identifier?.map((i) => i.value)).toEqual(['BSC00417722', 'E-1', 'E-2']);
  expect(sourcePatient?.name?.[0]?.given).toEqual(['Nora', 'Elisabeth']);
  expect(sourcePatient?.active).toBe(true);
}, 180_000);

it("stops the Patient query of a limited pull when the server answers it with other patients, as the first pull's does", async () => {
  const caseId = await world.openCase();
  expect((await world.pull(caseId, {})).state).toBe('complete');
  // After a merge the server answers the child's Patient search with other records (it ignores `_id`).
  await world.teamA.load([
    { resourceType: 'Patient', id: 'other-child-1', name: [{ family: 'Lind', given: ['Ola'] }], birthDate: '2015-03-03' },
    { resourceType: 'Patient', id: 'other-child-2', name: [{ family: 'Berg', given: ['Ida'] }], birthDate: '2014-04-04' },
  ]);
  const rule = world.teamA.faults.add({ match: 'GET /Patient', action: { kind: 'ignore-parameter', name: '_id' } });
  try {
    const limited = await world.pull(caseId, { types: ['Condition'] });
    expect(world.teamA.faults.rule(rule)?.fired).toBeGreaterThan(0);
    expect(limited.state).toBe('partial');
    const { rows: tasks } = await world.svc.service.db.query<{ query_key: string; state: string; last_error: string | null }>(
      'SELECT query_key, state, last_error FROM pull_tasks WHERE pull_id = $1 ORDER BY query_key',
      [limited.pullId],
    );
    expect(tasks.find((t) => t.query_key === 'Patient')).toMatchObject({ state: 'failed', last_error: expect.stringMatching(/^the server answered this query with records of \d+ other patients/) });
    expect(await world.storedBy(caseId, 'Patient', 'other-child-1')).toEqual([]);
    expect(await world.storedBy(caseId, 'Patient', 'other-child-2')).toEqual([]);
  } finally {
    world.teamA.faults.remove(rule);
  }
}, 120_000);
