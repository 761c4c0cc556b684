import type { Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import type { SandboxServer } from '../../src/sandbox';
import { startForFile } from '../support/for-file';
import { referredIntake } from '../support/opinion-case';
import { childLookAlike, startReferringEhrWorld, type ReferringEhrWorld } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';

/**
 * The child's Patient on record for a recipient (found for version 1) is read there again before a
 * later version is filed under it: a record the EHR merged into another (`link` replaced-by) or made
 * inactive since is `needs_review` naming why, the record it was merged into as the candidate, and
 * nothing is written; a read that fails for now is retried, as the runner's other reads are.
 *
 * Real service, PostgreSQL, Redis and a sandbox referring EHR whose data the test changes (`load`).
 */
let world: ReferringEhrWorld;
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
startForFile(() => startReferringEhrWorld('standing'), (w) => {
  world = w;
  ({ svc, ehr, cm } = w);
});

const CHILD = referredIntake().patient;

/** A record of the case's child at the referring EHR, its own name so that it is found alone. */
const childRecord = (id: string, family: string, extra: Partial<Patient> = {}): Patient => childLookAlike(id, { family, given: ['Standing'] }, extra);

/** Version 1 delivered under `record` (found by name and birth date, its id kept for the recipient). */
async function deliveredUnder(record: Patient): Promise<{ caseId: string; intake: Intake }> {
  await ehr.load([record]);
  const intake = referredIntake({ patient: { ...CHILD, name: { family: record.name?.[0]?.family ?? '', given: ['Standing'] } } });
  const { caseId } = await world.caseWithRecipient(intake);
  await world.sign(caseId, intake);
  expect((await world.until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const [report] = await world.reportsOf(caseId, 1);
  expect(report?.subject?.reference).toBe(`Patient/${record.id}`);
  return { caseId, intake };
}

it('asks for review instead of filing an amendment under a record merged into another since, naming it as the candidate', async () => {
  const record = childRecord('merged-away', 'Mergedaway');
  const { caseId, intake } = await deliveredUnder(record);

  // Months later the EHR merges the record into another one.
  await ehr.load([childRecord('merge-survivor', 'Mergesurvivor'), { ...record, active: false, link: [{ type: 'replaced-by', other: { reference: 'Patient/merge-survivor' } }] }]);
  await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
  const v2 = await world.until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(v2.state).toBe('needs_review');
  expect(v2.reviewReason).toMatch(/Patient\/merged-away.*replaced by Patient\/merge-survivor/);
  expect(v2.reviewReason).toMatch(/inactive/);
  expect(v2.reviewCode).toBe('patient-on-record-not-child');
  expect(v2.candidates.map((c) => c.id)).toEqual(['merge-survivor']);
  // Nothing of version 2 in the chart.
  expect(await world.reportsOf(caseId, 2)).toHaveLength(0);
  const notes = await eventually(
    async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
    (items) => items.some((n) => n.type === 'delivery.needs_review'),
    30_000,
  );
  expect(notes.find((n) => n.type === 'delivery.needs_review')?.message).toMatch(/version 2.*merged into another, made inactive/);

  // The case manager chooses the record it was merged into: version 1 is in that chart now, so the
  // amendment goes there and replaces it. Any other record stays refused (amendments in another chart).
  const recipientId = ((await (await svc.request('GET', `/api/cases/${caseId}/recipients`, { token: cm })).json()) as { items: { id: string }[] }).items[0]?.id;
  await ehr.load([childRecord('unrelated-record', 'Unrelated')]);
  const elsewhere = await svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId: 'unrelated-record' } });
  expect(elsewhere.status).toBe(409);
  const survivor = await svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId: 'merge-survivor' } });
  expect(survivor.status).toBe(200);
  expect((await world.until(caseId, 2, ['delivered', 'failed'])).state).toBe('delivered');
  const [amended] = await world.reportsOf(caseId, 2);
  const [original] = await world.reportsOf(caseId, 1);
  expect(amended?.status).toBe('amended');
  expect(amended?.subject?.reference).toBe('Patient/merge-survivor');
  expect(JSON.stringify(amended?.extension ?? [])).toContain(`DiagnosticReport/${original?.id ?? '?'}`);
}, 120_000);

it('asks for review instead of filing an amendment under a record made inactive since', async () => {
  const record = childRecord('made-inactive', 'Madeinactive');
  const { caseId, intake } = await deliveredUnder(record);

  await ehr.load([{ ...record, active: false }]);
  await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
  const v2 = await world.until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(v2.state).toBe('needs_review');
  expect(v2.reviewReason).toMatch(/Patient\/made-inactive.*inactive there \(active: false\)/);
  expect(v2.candidates).toEqual([]);
  expect(await world.reportsOf(caseId, 2)).toHaveLength(0);
}, 120_000);

it('retries a read of the record on file that fails for now, then files the amendment under it while it still stands', async () => {
  const record = childRecord('still-standing', 'Stillstanding');
  const { caseId, intake } = await deliveredUnder(record);

  const failing = ehr.faults.add({ match: `GET /Patient/${record.id}`, action: { kind: 'server-error' }, from: 1, to: 4 });
  try {
    await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
    const v2 = await world.until(caseId, 2, ['delivered', 'failed', 'needs_review']);
    expect(v2.state).toBe('delivered');
    expect(ehr.faults.rule(failing)?.fired).toBeGreaterThanOrEqual(1);
  } finally {
    ehr.faults.remove(failing);
  }
  const [report] = await world.reportsOf(caseId, 2);
  expect(report?.status).toBe('amended');
  expect(report?.subject?.reference).toBe(`Patient/${record.id}`);
}, 120_000);
