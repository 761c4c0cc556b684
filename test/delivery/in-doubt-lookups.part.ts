import type { Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import type { SandboxServer } from '../../src/sandbox';
import { startForFile } from '../support/for-file';
import { referredIntake } from '../support/opinion-case';
import { eventually, type TestService } from '../support/service';
import { childLookAlike, otherReports, startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';

/**
 * Deliveries in doubt (a write sent, its answer lost) are looked up at the recipient and what is found
 * decides: a patient record merged away since no longer blocks choosing the record it was merged into
 * (the report found there counts as filed; certainly not there, the doubt is cleared), and a lenient
 * recipient that cannot be looked through to the end never counts as "not there" (no second `final`).
 *
 * Real service, PostgreSQL, Redis and a sandbox referring EHR with fault injection.
 */
let svc: TestService;
let ehr: SandboxServer;
let cm: string;

const CHILD = referredIntake().patient;


const childRecord = (id: string, family: string, extra: Partial<Patient> = {}): Patient => childLookAlike(id, { family, given: ['Doubt'] }, extra);


let world: ReferringEhrWorld;
startForFile(() => startReferringEhrWorld('doubt-lookups'), (w) => {
  world = w;
  ({ svc, ehr, cm } = w);
});

const until = (caseId: string, version: number, states: string[]): Promise<DeliveryView> => world.until(caseId, version, states, 60_000);

/** A case whose child is `record` at the EHR (found by name and birth date), with the EHR as recipient. */
async function caseFor(record: Patient): Promise<{ caseId: string; intake: Intake; recipientId: string }> {
  await ehr.load([record]);
  const intake = referredIntake({ patient: { ...CHILD, name: { family: record.name?.[0]?.family ?? '', given: ['Doubt'] } } });
  return { ...(await world.caseWithRecipient(intake)), intake };
}

/**
 * Version `version` signed and its write sent with its answer lost (`written`: the EHR handled it;
 * else the connection was reset before), every later look-up failing: it ends `failed`, in doubt.
 */
async function signedInDoubt(caseId: string, intake: Intake, version: number, written: boolean): Promise<DeliveryView> {
  const cut = ehr.faults.add({ match: 'POST *', action: written ? { kind: 'truncated', fraction: 0 } : { kind: 'reset' } });
  const before = ehr.requestCount('GET /DiagnosticReport*');
  const lookups = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'server-error' }, from: 2 });
  try {
    await world.sign(caseId, intake, version > 1 ? `Amendment ${version}.` : undefined);
    const d = await until(caseId, version, ['failed', 'delivered', 'needs_review']);
    expect(d).toMatchObject({ state: 'failed', remoteIds: {} });
    expect(ehr.requestCount('GET /DiagnosticReport*')).toBeGreaterThan(before);
    return d;
  } finally {
    ehr.faults.remove(cut);
    ehr.faults.remove(lookups);
  }
}

const choose = (caseId: string, recipientId: string, patientId: string) =>
  svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId } });

async function writeStartedAt(deliveryId: string): Promise<Date | null> {
  const { rows } = await svc.service.db.query<{ write_started_at: Date | null }>('SELECT write_started_at FROM deliveries WHERE id = $1', [deliveryId]);
  return rows[0]?.write_started_at ?? null;
}

it('lets the case manager choose the record a chart was merged into while a report is in doubt there: found, it is amended there', async () => {
  const record = childRecord('doubt-merged-away', 'Doubtmergedaway');
  const { caseId, intake, recipientId } = await caseFor(record);
  await world.sign(caseId, intake);
  expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const v2 = await signedInDoubt(caseId, intake, 2, true);
  expect(await world.reportsOf(caseId, 2)).toHaveLength(1);

  // The EHR merges the record into another; version 2 retried goes to review with the survivor as candidate.
  await ehr.load([childRecord('doubt-survivor', 'Doubtsurvivor'), { ...record, active: false, link: [{ type: 'replaced-by', other: { reference: 'Patient/doubt-survivor' } }] }]);
  expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${v2.id}/retry`, { token: cm })).status).toBe(202);
  const review = await until(caseId, 2, ['needs_review', 'delivered', 'failed']);
  expect(review.state).toBe('needs_review');
  expect(review.candidates.map((c) => c.id)).toEqual(['doubt-survivor']);

  // Choosing the survivor: version 2 is looked up, found there (filed), so the survivor rule applies.
  const chosen = await choose(caseId, recipientId, 'doubt-survivor');
  expect(chosen.status).toBe(200);
  expect((await until(caseId, 2, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const [report2] = await world.reportsOf(caseId, 2);
  expect(await world.reportsOf(caseId, 2)).toHaveLength(1);
  expect((await world.deliveries(caseId)).find((d) => d.version === 2)?.remoteIds.DiagnosticReport).toBe(report2?.id);
  expect(report2?.status).toBe('amended');
}, 150_000);

it('clears the doubt of a write that is certainly not at the recipient, so the record a chart was merged into can be chosen', async () => {
  const record = childRecord('doubt-reset-merged', 'Doubtresetmerged');
  const { caseId, intake, recipientId } = await caseFor(record);
  const v1 = await signedInDoubt(caseId, intake, 1, false);
  expect(await writeStartedAt(v1.id)).not.toBeNull();
  expect(await world.reportsOf(caseId, 1)).toHaveLength(0);

  await ehr.load([childRecord('doubt-reset-survivor', 'Doubtresetsurvivor'), { ...record, active: false, link: [{ type: 'replaced-by', other: { reference: 'Patient/doubt-reset-survivor' } }] }]);
  expect((await svc.request('POST', `/api/cases/${caseId}/deliveries/${v1.id}/retry`, { token: cm })).status).toBe(202);
  expect((await until(caseId, 1, ['needs_review', 'delivered', 'failed'])).state).toBe('needs_review');

  const chosen = await choose(caseId, recipientId, 'doubt-reset-survivor');
  expect(chosen.status).toBe(200);
  expect((await until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const [report] = await world.reportsOf(caseId, 1);
  expect(report?.status).toBe('final');
  expect(report?.subject?.reference).toBe('Patient/doubt-reset-survivor');
}, 150_000);

it('never writes a version blind beside an earlier one in doubt that a lenient recipient could not be looked through for', async () => {
  // The child's chart holds more reports than a look-up reads (20 pages of 50).
  const record = childRecord('doubt-heavy-chart', 'Doubtheavychart');
  await ehr.load(otherReports(record.id as string, 1010));
  const { caseId, intake } = await caseFor(record);
  const v1 = await signedInDoubt(caseId, intake, 1, true);
  expect(await world.reportsOf(caseId, 1)).toHaveLength(1);

  const lenient = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'ignore-parameter', name: 'identifier' } });
  try {
    await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
    const v2 = await until(caseId, 2, ['delivered', 'failed', 'needs_review']);
    expect(v2.state).toBe('needs_review');
    expect(v2.reviewReason).toMatch(/Version 1 of the report may already be in the chart.*could not be confirmed/);
  } finally {
    ehr.faults.remove(lenient);
  }
  expect(await world.reportsOf(caseId, 2)).toHaveLength(0);
  // The doubt is kept for the next look-up, and the case managers are told.
  expect(await writeStartedAt(v1.id)).not.toBeNull();
  await eventually(
    async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string }[] }).items,
    (items) => items.some((n) => n.type === 'delivery.needs_review'),
    30_000,
  );
}, 180_000);

it('finds an earlier version in doubt at a lenient recipient by narrowing the look-up to the child\'s chart', async () => {
  // Many reports at the EHR in other charts, ahead of ours: an unnarrowed look-up stops before it.
  await ehr.load(otherReports('someone-else', 1010));
  const record = childRecord('doubt-light-chart', 'Doubtlightchart');
  const { caseId, intake } = await caseFor(record);
  await signedInDoubt(caseId, intake, 1, true);
  const [report1] = await world.reportsOf(caseId, 1);

  const lenient = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'ignore-parameter', name: 'identifier' } });
  try {
    await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
    expect((await until(caseId, 2, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  } finally {
    ehr.faults.remove(lenient);
  }
  const [report2] = await world.reportsOf(caseId, 2);
  expect(report2?.status).toBe('amended');
  expect(JSON.stringify(report2?.extension ?? [])).toContain(`DiagnosticReport/${report1?.id ?? '?'}`);
}, 180_000);
