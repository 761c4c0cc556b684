import { Queue } from 'bullmq';
import type { Communication, DiagnosticReport, DocumentReference, Patient } from 'fhir/r4';
import { deliveryJobId } from '../../queues/deliver-report';
import { QUEUES } from '../../queues/names';
import type { Intake } from '../../src/cases/intake-schema';
import { REPORT_COMMUNICATION_SYSTEM, REPORT_IDENTIFIER_SYSTEM } from '../../src/delivery/report-resources';
import { bullConnectionOptions } from '../../src/redis';
import type { SandboxServer } from '../../src/sandbox';
import { fixturePatientId } from '../support/fixture-child';
import { holdLock, lockWaiters, someoneWaitsFor, type HeldLock } from '../support/held-rows';
import { referredIntake } from '../support/opinion-case';
import { otherReports, startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';

/**
 * A delivery run reads its delivery, case and recipient without locks and then spends round trips at
 * the recipient; what a case manager (or a cancellation) commits meanwhile must win:
 * - a delivery cancelled after the run read it `queued` is not brought back to `sending` (its
 *   attempt), nor ended `needs_review` over `cancelled` (its end), with no spurious alert;
 * - a patient chosen at the recipient, or an earlier version in doubt settled, while the run looked
 *   for them does not leave the delivery waiting in review for a choice already made;
 * - the "delivered" transaction locks the case row before the delivery, as a cancellation does.
 *
 * Real service, PostgreSQL, Redis and a sandbox referring EHR. The interleavings are made with the
 * EHR's `hold` faults (a request kept until the test releases it) and locks held from a separate
 * PostgreSQL session (the service is seen waiting on them in `pg_stat_activity`), no sleeps.
 */
let world: ReferringEhrWorld;
let svc: TestService;
let ehr: SandboxServer;
let cm: string;
let jobs: Queue;

const CHILD = referredIntake().patient;
const CHILD_ID = fixturePatientId('referring-ehr');

beforeAll(async () => {
  world = await startReferringEhrWorld('run-races');
  ({ svc, ehr, cm } = world);
  jobs = new Queue(QUEUES.deliverReport, { connection: bullConnectionOptions(svc.config.redisUrl), prefix: svc.config.queuePrefix });
}, 60_000);

afterAll(async () => {
  await jobs.close();
  await world.stop();
});

/** A case in review (`intake`: {@link unmatched} for a child the EHR does not know by name) with the referring EHR as recipient. */
async function caseWithRecipient(intake: Intake = referredIntake()): Promise<{ caseId: string; recipientId: string; intake: Intake }> {
  return { ...(await world.caseWithRecipient(intake)), intake };
}

const unmatched = (given: string): Intake => referredIntake({ patient: { ...CHILD, name: { family: 'Unmatched', given: [given] } } });

const cancel = (caseId: string) => svc.request('POST', `/api/cases/${caseId}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew consent.' } });

/** The state the delivery's first job ended with (what `runDelivery` returned), once it completed. */
async function runEnded(deliveryId: string, requeues = 0): Promise<string | undefined> {
  return (await jobEnded(deliveryId, requeues)).state;
}

/** The delivery's job once it ended: the state its run returned, and the errors of its attempts that failed. */
async function jobEnded(deliveryId: string, requeues = 0): Promise<{ state: string | undefined; errors: string[] }> {
  const jobId = deliveryJobId(deliveryId, requeues);
  await eventually(() => jobs.getJobState(jobId), (s) => s === 'completed' || s === 'failed', 60_000);
  const job = await jobs.getJob(jobId);
  return { state: (job?.returnvalue as { state?: string } | undefined)?.state, errors: job?.stacktrace ?? [] };
}

/** The case's timeline event types and outbox event types about `deliveryId`. */
async function eventsAbout(caseId: string, deliveryId: string): Promise<{ timeline: string[]; outbox: string[] }> {
  const timeline = await svc.service.db.query<{ type: string }>(`SELECT type FROM case_events WHERE case_id = $1 AND data->>'deliveryId' = $2 ORDER BY at`, [caseId, deliveryId]);
  const outbox = await svc.service.db.query<{ type: string }>(`SELECT type FROM outbox WHERE case_id = $1 AND data->>'deliveryId' = $2 ORDER BY id`, [caseId, deliveryId]);
  return { timeline: timeline.rows.map((r) => r.type), outbox: outbox.rows.map((r) => r.type) };
}

it('does not bring back a delivery cancelled after its run read it queued: no attempt, no review, no alert', async () => {
  const { caseId, intake } = await caseWithRecipient(unmatched('Readqueued'));
  // The run reads the delivery queued and the case signed, then waits to read its endpoint.
  const { client, pid } = await holdLock(svc.config.databaseUrl, 'LOCK TABLE endpoints IN ACCESS EXCLUSIVE MODE', []);
  let delivery: DeliveryView | undefined;
  try {
    await world.sign(caseId, intake);
    await someoneWaitsFor(client, pid);
    expect((await cancel(caseId)).status).toBe(200);
    [delivery] = await world.deliveries(caseId);
    expect(delivery).toMatchObject({ state: 'cancelled', attempts: 0 });
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end();
  }
  const id = (delivery as DeliveryView).id;
  expect(await runEnded(id)).toBe('cancelled');
  expect((await world.deliveries(caseId))[0]).toMatchObject({ state: 'cancelled', attempts: 0, reviewCode: null });
  const events = await eventsAbout(caseId, id);
  expect(events.timeline).not.toContain('delivery_needs_review');
  expect(events.outbox).not.toContain('delivery.needs_review');
}, 120_000);

it('does not end a delivery cancelled while its run searched the patient in needs_review', async () => {
  const { caseId, intake } = await caseWithRecipient(unmatched('Searching'));
  const hold = ehr.faults.add({ match: 'GET /Patient', action: { kind: 'hold' }, nth: 1 });
  let delivery: DeliveryView | undefined;
  try {
    await world.sign(caseId, intake);
    await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
    expect((await world.deliveries(caseId))[0]).toMatchObject({ state: 'sending', attempts: 1 });
    expect((await cancel(caseId)).status).toBe(200);
    [delivery] = await world.deliveries(caseId);
    expect(delivery?.state).toBe('cancelled');
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
  }
  const id = (delivery as DeliveryView).id;
  // The search found no one: the run ends, the delivery still cancelled.
  expect(await runEnded(id)).toBe('cancelled');
  expect((await world.deliveries(caseId))[0]).toMatchObject({ state: 'cancelled', reviewCode: null, candidates: [] });
  const events = await eventsAbout(caseId, id);
  expect(events.timeline).not.toContain('delivery_needs_review');
  expect(events.outbox).not.toContain('delivery.needs_review');
}, 120_000);

it('queues a delivery again when its patient is chosen while its run looks for one, and delivers it under her', async () => {
  const { caseId, recipientId, intake } = await caseWithRecipient(unmatched('Chosen'));
  const hold = ehr.faults.add({ match: 'GET /Patient', action: { kind: 'hold' }, nth: 1 });
  let delivery: DeliveryView | undefined;
  try {
    await world.sign(caseId, intake);
    await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
    // The case manager chooses the child's record while the run is searching: the delivery is
    // `sending`, so the choice queues nothing again.
    const chosen = await svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId: CHILD_ID } });
    expect(chosen.status).toBe(200);
    [delivery] = await world.deliveries(caseId);
    expect(delivery?.state).toBe('sending');
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
  }
  const id = (delivery as DeliveryView).id;
  // The search finds no one by name; the run sees the patient chosen meanwhile and queues it again.
  expect(await runEnded(id)).toBe('queued');
  expect((await world.until(caseId, 1, ['delivered', 'failed', 'needs_review'])).state).toBe('delivered');
  const [report] = await world.reportsOf(caseId, 1);
  expect(report?.subject?.reference).toBe(`Patient/${CHILD_ID}`);
  const events = await eventsAbout(caseId, id);
  expect(events.timeline).not.toContain('delivery_needs_review');
  expect(events.outbox).not.toContain('delivery.needs_review');
}, 120_000);

it('queues a later version again when the earlier one in doubt is settled while its run looks that one up', async () => {
  // A recipient that cannot be looked through: it ignores `identifier`, and the chart holds more reports than a look-up reads.
  const record: Patient = { resourceType: 'Patient', id: 'race-settle', active: true, name: [{ family: 'Racesettle', given: ['Doubt'] }], gender: 'female', birthDate: CHILD.birthDate };
  await ehr.load([record, ...otherReports('race-settle', 1010)]);
  const { caseId, intake } = await caseWithRecipient(referredIntake({ patient: { ...CHILD, name: { family: 'Racesettle', given: ['Doubt'] } } }));

  // Version 1's write sent, its answer lost (nothing written), its look-ups failing: failed, in doubt.
  const cut = ehr.faults.add({ match: 'POST *', action: { kind: 'reset' } });
  const lookups = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'server-error' }, from: 2 });
  let v1: DeliveryView;
  try {
    await world.sign(caseId, intake);
    v1 = await world.until(caseId, 1, ['failed', 'delivered', 'needs_review'], 90_000);
    expect(v1).toMatchObject({ state: 'failed', remoteIds: {}, inDoubt: true });
  } finally {
    ehr.faults.remove(cut);
    ehr.faults.remove(lookups);
  }

  const lenient = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'ignore-parameter', name: 'identifier' } });
  const hold = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'hold' }, nth: 1 });
  try {
    await world.sign(caseId, intake, 'Amended: endocrinology review in 6 weeks.');
    // Version 2's look-up of version 1 is on its way when the case manager settles version 1: the
    // later version is `sending`, not in review, so the settlement queues nothing again.
    await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
    const settled = await svc.request('POST', `/api/cases/${caseId}/deliveries/${v1.id}/settle`, { token: cm, body: { absent: true } });
    expect(settled.status).toBe(200);
    expect(await settled.json()).toMatchObject({ id: v1.id, inDoubt: false, requeued: [] });
    const v2 = (await world.deliveries(caseId)).find((d) => d.version === 2) as DeliveryView;
    expect(v2.state).toBe('sending');
    ehr.faults.release(hold);
    // The look-up cannot say; the run sees version 1 settled meanwhile and queues version 2 again.
    expect(await runEnded(v2.id)).toBe('queued');
    expect((await world.until(caseId, 2, ['delivered', 'failed', 'needs_review'], 90_000)).state).toBe('delivered');
    const events = await eventsAbout(caseId, v2.id);
    expect(events.timeline).not.toContain('delivery_needs_review');
    expect(events.outbox).not.toContain('delivery.needs_review');
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
    ehr.faults.remove(lenient);
  }
  const [report2] = await world.reportsOf(caseId, 2);
  expect(report2?.status).toBe('final');
}, 300_000);

it('locks the case row before the delivery when recording it delivered, as a cancellation does: no deadlock', async () => {
  const { caseId, intake } = await caseWithRecipient();
  // Everything of version 1 is already in the chart (written there before: another registration of
  // this EHR, say): the run finds it all, writes nothing, and never marks a write started, so the
  // delivery is one a cancellation still cancels while the run records it delivered.
  const value = `${caseId}-v1`;
  const subject = { reference: `Patient/${CHILD_ID}` };
  await ehr.load([
    { resourceType: 'DiagnosticReport', id: `pre-${caseId}`, status: 'final', code: { text: 'Second opinion' }, subject, identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value }] } satisfies DiagnosticReport,
    { resourceType: 'DocumentReference', id: `pre-doc-${caseId}`, status: 'current', content: [{ attachment: { contentType: 'application/pdf' } }], subject, identifier: [{ system: REPORT_IDENTIFIER_SYSTEM, value }] } satisfies DocumentReference,
    { resourceType: 'Communication', id: `pre-com-${caseId}`, status: 'completed', subject, identifier: [{ system: REPORT_COMMUNICATION_SYSTEM, value }] } satisfies Communication,
  ]);
  const hold = ehr.faults.add({ match: 'GET /DiagnosticReport*', action: { kind: 'hold' }, nth: 1 });
  let locker: HeldLock | undefined;
  let delivery: DeliveryView | undefined;
  try {
    await world.sign(caseId, intake);
    await eventually(async () => ehr.faults.rule(hold)?.fired ?? 0, (n) => n === 1, 30_000);
    // A cancellation's transaction: the case row first…
    locker = await holdLock(svc.config.databaseUrl, 'SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE', [caseId]);
    ehr.faults.release(hold);
    await someoneWaitsFor(locker.client, locker.pid);
    // …then the deliveries not sent yet (cancelUnsentDeliveries): the run must hold no lock of it.
    const cancelled = await locker.client.query<{ id: string }>(
      `UPDATE deliveries SET state = 'cancelled', last_error = 'the case was cancelled', updated_at = now()
       WHERE case_id = $1 AND (state IN ('queued', 'needs_review', 'failed') OR (state = 'sending' AND write_started_at IS NULL)) RETURNING id`,
      [caseId],
    );
    expect(cancelled.rows).toHaveLength(1);
    // The run still waits for the case row (it was neither a deadlock's victim nor past it).
    expect(await lockWaiters(locker.client, locker.pid)).toBe(1);
    await locker.client.query(`UPDATE cases SET status = 'cancelled', revision = revision + 1 WHERE id = $1`, [caseId]);
    await locker.client.query('COMMIT');
    delivery = (await world.deliveries(caseId))[0];
  } finally {
    ehr.faults.release(hold);
    ehr.faults.remove(hold);
    await locker?.client.query('ROLLBACK').catch(() => undefined);
    await locker?.client.end();
  }
  const id = (delivery as DeliveryView).id;
  // Its first attempt ended it, no deadlock in between (neither session was PostgreSQL's victim).
  expect(await jobEnded(id)).toEqual({ state: 'cancelled', errors: [] });
  // The report is in the chart: its ids are kept; the delivery stays cancelled and nothing announces it delivered.
  expect((await world.deliveries(caseId))[0]).toMatchObject({ state: 'cancelled', attempts: 1, lastError: 'the case was cancelled', remoteIds: { DiagnosticReport: `pre-${caseId}` } });
  const events = await eventsAbout(caseId, id);
  expect(events.timeline).not.toContain('report_delivered');
  expect(events.outbox).not.toContain('report.delivered');
  const { rows } = await svc.service.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [caseId]);
  expect(rows[0]?.status).toBe('cancelled');
}, 120_000);
