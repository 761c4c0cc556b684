/**
 * Recipients and deliveries, as the case manager sees them: add the referring physician's EHR as a
 * recipient (the report goes there at signing, or at once when a signed version exists), list the
 * deliveries with state, attempts, remote ids and last error, choose the patient of a delivery in
 * review, and re-queue a failed one.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { findCase } from '../db/case-repository';
import type { Database } from '../db/database';
import { requireEndpoint } from '../endpoints/endpoint-service';
import type { Principal } from '../http/auth';
import { conflict, fieldProblem, HttpProblem, notFound } from '../http/problem';
import { logger } from '../log';
import type { WorkDispatch } from '../notify/events';
import { findVersion } from '../opinion/opinion-repository';
import type { PatientSelector } from '../pull/source-repository';
import { createDeliveries, findDelivery, listDeliveries, requeueDelivery, type DeliveryRow } from './delivery-repository';
import { findRecipient, insertRecipient, listRecipients, setRecipientPatient, type RecipientRow } from './recipient-repository';
import { grantedScope, mayWriteReports } from './report-writer';

/** What the recipient and delivery routes need. */
export interface DeliveryServiceDeps {
  readonly db: Database;
  readonly dispatch: WorkDispatch;
}

const CLOSED = ['ineligible', 'cancelled', 'closed'];

async function requireOpenCase(db: Database, caseId: string) {
  const record = await findCase(db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  return record;
}

/** A recipient as the API shows it. */
export function recipientView(r: RecipientRow) {
  return {
    id: r.id,
    endpointId: r.endpointId,
    patient: r.selector,
    remotePatientId: r.remotePatientId,
    createdAt: r.createdAt.toISOString(),
  };
}

/** A delivery as the API shows it: state, attempts, remote ids, last error, review reason. */
export function deliveryView(d: DeliveryRow) {
  return {
    id: d.id,
    recipientId: d.recipientId,
    version: d.version,
    state: d.state,
    attempts: d.attempts,
    remoteIds: d.remoteIds,
    mode: d.mode,
    lastError: d.lastError,
    reviewReason: d.reviewReason,
    candidates: d.candidates,
    lastAttemptAt: d.lastAttemptAt?.toISOString() ?? null,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
  };
}

/** Adds a recipient; when the case already has a signed version, its delivery starts now. */
export async function addRecipient(deps: DeliveryServiceDeps, caseId: string, body: { endpointId: string; patient?: PatientSelector }, actor: Principal) {
  const record = await requireOpenCase(deps.db, caseId);
  if (CLOSED.includes(record.status)) throw conflict(`A ${record.status} case takes no recipients.`);
  const endpoint = await requireEndpoint(deps.db, body.endpointId);
  // A SMART registration that may not create DiagnosticReports there would fail every delivery with
  // 403 only at signing: refused now, naming the field (SMART scopes:
  // https://hl7.org/fhir/smart-app-launch/STU2/scopes-and-launch-context.html).
  if (!mayWriteReports(endpoint)) {
    const detail = `endpoint ${endpoint.id} asks for the SMART scope "${grantedScope(endpoint) ?? ''}", which does not allow creating DiagnosticReports: add system/DiagnosticReport.write to the endpoint's scope first.`;
    throw new HttpProblem(422, 'Endpoint cannot receive reports', detail, [fieldProblem(['endpointId'], detail)]);
  }
  const id = randomUUID();
  const selector: PatientSelector = body.patient ?? { match: true };
  const created = await deps.db.transaction(async (tx) => {
    // A patient id given here is read at the recipient before the first write (it may not exist
    // there: needs_review, not a report filed against a missing patient); a chosen one is trusted.
    const inserted = await insertRecipient(tx, { id, caseId, endpointId: body.endpointId, selector, remotePatientId: null, createdBy: actor.sub });
    if (!inserted) throw conflict('This endpoint is already a recipient of the case.');
    const latest = await findVersion(tx, caseId);
    return latest ? createDeliveries(tx, caseId, latest.version, [id]) : [];
  });
  await Promise.all(created.map((deliveryId) => deps.dispatch.deliver(deliveryId, 0)));
  logger.info('recipient added', { caseId, endpointId: body.endpointId, count: created.length });
  return recipientView((await findRecipient(deps.db, id)) as RecipientRow);
}

/** The case's recipients (404 for an unknown case). */
export async function getRecipients(deps: Pick<DeliveryServiceDeps, 'db'>, caseId: string) {
  await requireOpenCase(deps.db, caseId);
  return (await listRecipients(deps.db, caseId)).map(recipientView);
}

/** The case's deliveries with each recipient's endpoint (404 for an unknown case). */
export async function getDeliveries(deps: Pick<DeliveryServiceDeps, 'db'>, caseId: string) {
  await requireOpenCase(deps.db, caseId);
  const [deliveries, recipients] = await Promise.all([listDeliveries(deps.db, caseId), listRecipients(deps.db, caseId)]);
  const endpointOf = new Map(recipients.map((r) => [r.id, r.endpointId]));
  return deliveries.map((d) => ({ ...deliveryView(d), endpointId: endpointOf.get(d.recipientId) ?? null }));
}

/** The case manager chooses the child's Patient at the recipient; deliveries waiting on it are re-queued. */
export async function chooseRecipientPatient(deps: DeliveryServiceDeps, caseId: string, recipientId: string, patientId: string) {
  const recipient = await findRecipient(deps.db, recipientId);
  if (!recipient || recipient.caseId !== caseId) throw notFound(`Recipient ${recipientId}`);
  await setRecipientPatient(deps.db, recipientId, patientId);
  const waiting = (await listDeliveries(deps.db, caseId)).filter((d) => d.recipientId === recipientId && d.state === 'needs_review');
  for (const d of waiting) {
    const requeues = await requeueDelivery(deps.db, d.id);
    if (requeues !== undefined) await deps.dispatch.deliver(d.id, requeues);
  }
  return recipientView((await findRecipient(deps.db, recipientId)) as RecipientRow);
}

/** Re-queues a failed or needs_review delivery (409 otherwise). */
export async function retryDelivery(deps: DeliveryServiceDeps, caseId: string, deliveryId: string) {
  const delivery = await findDelivery(deps.db, deliveryId);
  if (!delivery || delivery.caseId !== caseId) throw notFound(`Delivery ${deliveryId}`);
  const requeues = await requeueDelivery(deps.db, deliveryId);
  if (requeues === undefined) throw conflict(`Only a failed or needs_review delivery can be retried; this one is ${delivery.state}.`, { state: delivery.state });
  await deps.dispatch.deliver(deliveryId, requeues);
  return deliveryView((await findDelivery(deps.db, deliveryId)) as DeliveryRow);
}
