import { fixturePatientId } from '../support/fixture-child';
import { startForFile } from '../support/for-file';
import { referredIntake } from '../support/opinion-case';
import { startReferringEhrWorld, type DeliveryView, type ReferringEhrWorld } from '../support/referring-ehr-world';
import { eventually, type TestService } from '../support/service';
import { refuseWrites } from '../support/pg-fault';

/**
 * The case manager chooses the child's Patient at a recipient for a delivery waiting in review: the
 * chosen Patient and the deliveries queued again under it are one transaction. Had they been separate
 * statements, a crash (or a failed statement) between them left the recipient with its patient
 * chosen and its delivery in `needs_review` for good: nothing queues a delivery in review again (the
 * stale sweep looks at queued and sending ones), and the report never reached the chart.
 *
 * Real service, PostgreSQL, Redis and a sandbox EHR; the fault is real: a trigger in the test's own
 * database refuses to queue the delivery again, and a sequence counts the refusals (`nextval` is not
 * rolled back with them).
 */
let world: ReferringEhrWorld;
let svc: TestService;
let cm: string;
startForFile(() => startReferringEhrWorld('atomic'), (w) => {
  world = w;
  ({ svc, cm } = w);
});

const CHILD = referredIntake().patient;
const CHILD_ID = fixturePatientId('referring-ehr');

const deliveries = (caseId: string): Promise<DeliveryView[]> => world.deliveries(caseId);

const remotePatientOf = async (recipientId: string): Promise<string | null | undefined> =>
  (await svc.service.db.query<{ remote_patient_id: string | null }>('SELECT remote_patient_id FROM case_recipients WHERE id = $1', [recipientId])).rows[0]?.remote_patient_id;

/** Version 1 of a signed case whose child (named so the recipient finds no match) waits in review at the referring EHR. */
async function deliveryInReview(): Promise<{ caseId: string; recipientId: string; review: DeliveryView }> {
  const intake = referredIntake({ patient: { ...CHILD, name: { family: 'Unmatched', given: ['Atomic'] } } });
  const { caseId, recipientId } = await world.caseWithRecipient(intake);
  await world.sign(caseId, intake);
  const review = await world.until(caseId, 1, ['needs_review', 'delivered', 'failed']);
  expect(review.state).toBe('needs_review');
  return { caseId, recipientId, review };
}

const choose = (caseId: string, recipientId: string, patientId: string) =>
  svc.request('POST', `/api/cases/${caseId}/recipients/${recipientId}/patient`, { token: cm, body: { patientId } });

it('saves neither the chosen patient nor the delivery queued again when the delivery cannot be queued, and delivers once it can', async () => {
  const { caseId, recipientId, review } = await deliveryInReview();
  const fault = await refuseWrites(svc.service.db, {
    name: 'requeue',
    table: 'deliveries',
    operation: 'UPDATE',
    when: `OLD.id = '${review.id}' AND OLD.state = 'needs_review' AND NEW.state = 'queued'`,
  });
  const refusals = () => fault.refusals();
  try {
    expect((await choose(caseId, recipientId, CHILD_ID)).status).toBe(500);
    expect(await refusals()).toBe(1);
    // All or nothing: not a recipient with its patient chosen and its delivery left in review.
    expect(await remotePatientOf(recipientId)).toBeNull();
    expect((await deliveries(caseId)).find((d) => d.id === review.id)).toMatchObject({ state: 'needs_review', attempts: review.attempts, reviewReason: review.reviewReason });
  } finally {
    await fault.remove();
  }

  // The fault gone, the same choice saves the patient, queues the delivery again, and it is written under her.
  expect((await choose(caseId, recipientId, CHILD_ID)).status).toBe(200);
  expect(await remotePatientOf(recipientId)).toBe(CHILD_ID);
  const done = await eventually(() => deliveries(caseId), (d) => ['delivered', 'failed'].includes(d.find((x) => x.id === review.id)?.state ?? ''), 60_000);
  expect(done.find((d) => d.id === review.id)?.state).toBe('delivered');
  const [report] = await world.reportsOf(caseId, 1);
  expect(report?.subject?.reference).toBe(`Patient/${CHILD_ID}`);
}, 120_000);
