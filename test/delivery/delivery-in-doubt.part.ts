import type { DiagnosticReport, DocumentReference, Patient } from 'fhir/r4';
import { DIAGNOSTIC_REPORT_REPLACES, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { holdLock, lockWaiters, someoneWaitsFor, type HeldLock } from '../support/held-rows';
import { openCaseIn, referredIntake, searchSandbox } from '../support/opinion-case';
import { startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';
import { registerOpenEndpoint } from '../support/sandbox-case';
import { eventually, type TestService } from '../support/service';

/**
 * A report whose write started may be in the chart though we never heard back, and a delivery, the
 * recipient's patient and a new version signed meanwhile must not race each other into a second
 * `final` report, a chart of another child, or a recipient that gets only an old version.
 *
 * Real service, PostgreSQL, Redis and a sandbox referring EHR with fault injection; the races are
 * made deterministic with row locks held from a separate PostgreSQL connection (the service is seen
 * waiting on them in `pg_stat_activity` before the test goes on), no sleeps.
 */
let world: ReferringEhrWorld;
let svc: TestService;
let ehr: SandboxServer;
let cm: string;

const CHILD = referredIntake().patient;
const CHILD_ID = fixturePatientId('referring-ehr');
/** Another record at the recipient with the child's birth date: a case manager could choose it. */
const OTHER_ID = 'other-chart-same-birth-date';

const OTHER_CHART: Patient = { resourceType: 'Patient', id: OTHER_ID, active: true, birthDate: CHILD.birthDate, name: [{ family: 'Otherchart', given: ['Quinn'] }] };

startForFile(() => startReferringEhrWorld('in-doubt', {}, { load: [OTHER_CHART] }), (w) => {
  world = w;
  ({ svc, ehr, cm } = w);
});

const deliveries = (caseId: string): Promise<DeliveryView[]> => world.deliveries(caseId);
const sign = (caseId: string, followUp?: string): Promise<void> => world.sign(caseId, referredIntake(), followUp);

const byIdentifier = <T extends DiagnosticReport | DocumentReference>(type: string, caseId: string, version: number) =>
  searchSandbox<T>(ehr, 'none', type, { identifier: `${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v${version}` });

/**
 * Version 1 written at the EHR with its answer lost, every later look-up failing: the delivery ends
 * `failed` with no ids on record while the EHR holds the report. Faults removed on return.
 */
async function v1InDoubt(): Promise<{ caseId: string; recipientId: string; v1: DeliveryView }> {
  const { caseId, recipientId } = await world.caseWithRecipient();
  const cut = ehr.faults.add({ match: 'POST *', action: { kind: 'truncated', fraction: 0 } });
  const lookups = ehr.faults.add({ match: 'GET /DiagnosticReport', action: { kind: 'server-error' }, from: 2 });
  let v1: DeliveryView;
  try {
    await sign(caseId);
    v1 = await world.until(caseId, 1, ['failed', 'delivered', 'needs_review']);
    expect(ehr.faults.rule(cut)?.fired).toBeGreaterThanOrEqual(1);
  } finally {
    ehr.faults.remove(cut);
    ehr.faults.remove(lookups);
  }
  expect(v1).toMatchObject({ state: 'failed', remoteIds: {} });
  // The EHR holds it all the same.
  expect(await byIdentifier('DiagnosticReport', caseId, 1)).toHaveLength(1);
  return { caseId, recipientId, v1 };
}

it('amends a report whose answer was lost: version 2 replaces version 1 found at the EHR, and its note is superseded; the patient is not changed under it', async () => {
  const { caseId, recipientId, v1 } = await v1InDoubt();

  // Version 1 may be in Patient/CHILD_ID's chart: another patient is refused, naming the field.
  const moved = await svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId: OTHER_ID } });
  expect(moved.status).toBe(409);
  expect(((await moved.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['patientId']);

  await sign(caseId, 'Amended: endocrinology review in 6 weeks.');
  const v2 = await world.until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(v2.state).toBe('delivered');
  const [report1] = await byIdentifier<DiagnosticReport>('DiagnosticReport', caseId, 1);
  const [note1] = await byIdentifier<DocumentReference>('DocumentReference', caseId, 1);
  const [report2] = await byIdentifier<DiagnosticReport>('DiagnosticReport', caseId, 2);
  const [note2] = await byIdentifier<DocumentReference>('DocumentReference', caseId, 2);
  expect(report2?.status).toBe('amended');
  expect(report2?.extension).toEqual([{ url: DIAGNOSTIC_REPORT_REPLACES, valueReference: { reference: `DiagnosticReport/${report1?.id}` } }]);
  expect(note2?.relatesTo?.[0]).toEqual({ code: 'replaces', target: { reference: `DocumentReference/${note1?.id}` } });
  expect(note1?.status).toBe('superseded');
  // What was found is on record with version 1 (superseded: never sent again).
  const first = (await deliveries(caseId)).find((d) => d.id === v1.id);
  expect(first).toMatchObject({ state: 'superseded', remoteIds: { DiagnosticReport: report1?.id, DocumentReference: note1?.id } });
  expect(report2?.subject?.reference).toBe(`Patient/${CHILD_ID}`);
}, 150_000);

it('lets a version still being written finish, and the newer version waits for it, then amends it', async () => {
  const { caseId } = await world.caseWithRecipient();
  // Version 1's write is held at the EHR until the test releases it (no timing window), and version 2
  // is signed while version 1's request is on its way: version 2 waits, writing nothing, spending no attempt.
  const { hold } = await world.amendWhileFirstWriteHeld(caseId, 'Amended while version 1 was being written.');
  let v1: DeliveryView;
  try {
    const waiting = await eventually(
      () => deliveries(caseId),
      (d) => /^waiting: version 1 is being written/.test(d.find((x) => x.version === 2)?.lastError ?? ''),
      30_000,
    );
    expect(waiting.find((x) => x.version === 1)?.state).toBe('sending');
    expect(waiting.find((x) => x.version === 2)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await byIdentifier('DiagnosticReport', caseId, 2)).toHaveLength(0);
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
  }
  v1 = await world.until(caseId, 1, ['delivered', 'failed', 'superseded', 'needs_review']);
  expect(v1.state).toBe('delivered');
  const v2 = await world.until(caseId, 2, ['delivered', 'failed', 'needs_review']);
  expect(v2.state).toBe('delivered');
  const [report2] = await byIdentifier<DiagnosticReport>('DiagnosticReport', caseId, 2);
  const [note1] = await byIdentifier<DocumentReference>('DocumentReference', caseId, 1);
  expect(report2?.status).toBe('amended');
  expect(report2?.extension).toEqual([{ url: DIAGNOSTIC_REPORT_REPLACES, valueReference: { reference: `DiagnosticReport/${v1.remoteIds.DiagnosticReport}` } }]);
  expect(note1?.status).toBe('superseded');
}, 120_000);

it('records a report found in doubt and its timeline event in one transaction', async () => {
  const { caseId, v1 } = await v1InDoubt();
  // Version 2's look-up of version 1 held at the EHR while the timeline is locked against inserts.
  const hold = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'hold' }, nth: 1 });
  let locker: HeldLock | undefined;
  try {
    await sign(caseId, 'Amended: endocrinology review in 6 weeks.');
    await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
    locker = await holdLock(svc.config.databaseUrl, 'LOCK TABLE case_events IN SHARE MODE', []);
    const notesLookedUp = ehr.requestCount('GET /DocumentReference*');
    ehr.faults.release(hold);
    // Version 1's note looked up too: what was found is recorded next.
    await eventually(async () => ehr.requestCount('GET /DocumentReference*'), (n) => n > notesLookedUp, 15_000);
    // The service waits to insert report_found_at_recipient: the ids found must not be visible before it.
    const deadline = Date.now() + 15_000;
    for (;;) {
      if ((await lockWaiters(locker.client, locker.pid)) > 0) break;
      if (Date.now() > deadline) {
        const activity = await locker.client.query('SELECT pid, state, wait_event_type, pg_blocking_pids(pid) AS blockers, left(query, 80) AS query FROM pg_stat_activity WHERE datname = current_database()');
        throw new Error(`the service never waited to insert its timeline event: ${JSON.stringify(activity.rows)} ${JSON.stringify(ehr.faults.list())} ${JSON.stringify(await deliveries(caseId))}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const { rows } = await svc.service.db.query<{ remote_ids: Record<string, string> }>('SELECT remote_ids FROM deliveries WHERE id = $1', [v1.id]);
    expect(rows[0]?.remote_ids).toEqual({});
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
    await locker?.client.query('ROLLBACK').catch(() => undefined);
    await locker?.client.end();
  }
  expect((await world.until(caseId, 2, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const first = (await deliveries(caseId)).find((d) => d.id === v1.id);
  expect(first?.remoteIds.DiagnosticReport).toBeDefined();
}, 150_000);

it('tells the case managers when a cancelled case has a report that may be in the chart', async () => {
  const { caseId } = await v1InDoubt();
  const cancel = await svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew consent.' } });
  expect(cancel.status).toBe(200);
  expect((await deliveries(caseId))[0]?.state).toBe('cancelled');
  const notes = await eventually(
    async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
    (items) => items.some((n) => n.type === 'delivery.in_doubt'),
    30_000,
  );
  expect(notes.find((n) => n.type === 'delivery.in_doubt')?.message).toMatch(/version 1\).*may already be in the referring physician's EHR/);
}, 120_000);

it('delivers the version signed while a recipient was being added: adding waits for the case row', async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  await sign(caseId);
  // Another registration of the EHR: the recipient added while version 2 is being signed.
  const second = await registerOpenEndpoint(svc, 'Referring EHR (second registration)', ehr.baseUrl);
  const { client, pid } = await holdLock(svc.config.databaseUrl, 'SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE', [caseId]);
  let adding: Promise<Response> | undefined;
  try {
    adding = svc.request('POST', `/api/cases/${caseId}/recipients`, { token: cm, body: { endpointId: second } });
    await someoneWaitsFor(client, pid);
    // Version 2 committed by the transaction holding the case row, as signing does.
    await client.query(
      `INSERT INTO opinion_versions (case_id, version, content, specialist, signed_by, signed_at, fhir_status, pdf, pdf_sha1_base64, pdf_sha256, pdf_bytes, bundle_version)
       SELECT case_id, 2, content, specialist, signed_by, now(), 'amended', pdf, pdf_sha1_base64, pdf_sha256, pdf_bytes, bundle_version FROM opinion_versions WHERE case_id = $1 AND version = 1`,
      [caseId],
    );
    await client.query('COMMIT');
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end();
  }
  expect((await (adding as Promise<Response>)).status).toBe(201);
  expect((await deliveries(caseId)).map((d) => d.version)).toEqual([2]);
}, 90_000);

it('never overwrites a patient chosen at the recipient while a delivery was finding its own', async () => {
  const { caseId, recipientId } = await world.caseWithRecipient();
  // The recipient row held: the delivery finds the child by name and birth date, then waits to save her id.
  const { client, pid } = await holdLock(svc.config.databaseUrl, 'SELECT id FROM case_recipients WHERE id = $1 FOR NO KEY UPDATE', [recipientId]);
  try {
    await sign(caseId);
    await someoneWaitsFor(client, pid);
    // Meanwhile another patient is chosen there (checked at the recipient: same birth date, active).
    await client.query('UPDATE case_recipients SET remote_patient_id = $2 WHERE id = $1', [recipientId, OTHER_ID]);
    await client.query('COMMIT');
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end();
  }
  expect((await world.until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const { rows } = await svc.service.db.query<{ remote_patient_id: string }>('SELECT remote_patient_id FROM case_recipients WHERE id = $1', [recipientId]);
  expect(rows[0]?.remote_patient_id).toBe(OTHER_ID);
  const [report] = await byIdentifier<DiagnosticReport>('DiagnosticReport', caseId, 1);
  expect(report?.subject?.reference).toBe(`Patient/${OTHER_ID}`);
}, 90_000);
