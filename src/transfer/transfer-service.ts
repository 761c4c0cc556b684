/**
 * Transfer of care: the family asks that the program's specialists take over the child's care.
 * Recorded as a FHIR ServiceRequest (https://hl7.org/fhir/R4/servicerequest.html) — intent
 * `proposal` (the family proposes; the program decides), code SNOMED CT 308292007 "Transfer of care",
 * requester the family's RelatedPerson, based on the case's second-opinion ServiceRequest — plus a
 * timeline event and a case-manager notification.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { ServiceRequest } from 'fhir/r4';
import { caseFhirIds } from '../cases/fhir-ids';
import { findCase, insertCaseEvent } from '../db/case-repository';
import { createOnce, keyReused } from '../http/idempotency-key';
import type { Database } from '../db/database';
import { unauthorized, type Principal } from '../http/auth';
import { conflict, notFound } from '../http/problem';
import { logger } from '../log';
import { enqueueAfterCommit } from '../util/enqueue-after-commit';
import { recordEvent, type WorkDispatch } from '../notify/events';
import { uploadTokenStillValid } from '../uploads/upload-tokens';

/** Identifier system of transfer requests (value = request id). */
export const TRANSFER_REQUEST_SYSTEM = 'https://second-opinion.example.org/fhir/transfer-request';

/** What the case manager records of the family's request. */
export interface TransferBody {
  readonly reason: string;
  readonly destination?: { readonly organization?: string; readonly physician?: string };
  readonly note?: string;
}

/** The ServiceRequest of a transfer request (pure). */
export function buildTransferServiceRequest(id: string, caseId: string, body: TransferBody, at: Date): ServiceRequest {
  const ids = caseFhirIds(caseId);
  const performer = [body.destination?.organization, body.destination?.physician].filter((s): s is string => Boolean(s));
  return {
    resourceType: 'ServiceRequest',
    id,
    identifier: [{ system: TRANSFER_REQUEST_SYSTEM, value: id }],
    basedOn: [{ reference: `ServiceRequest/${ids.ServiceRequest}`, type: 'ServiceRequest' }],
    status: 'active',
    intent: 'proposal',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '308292007', display: 'Transfer of care' }], text: 'Transfer of care to the specialist program' },
    subject: { reference: `Patient/${ids.Patient}`, type: 'Patient' },
    authoredOn: at.toISOString(),
    requester: { reference: `RelatedPerson/${ids.RelatedPerson}`, type: 'RelatedPerson' },
    ...(performer.length > 0 ? { performer: performer.map((display) => ({ display })) } : {}),
    reasonCode: [{ text: body.reason }],
    ...(body.note ? { note: [{ text: body.note, time: at.toISOString() }] } : {}),
  };
}

const TAKES_TRANSFER = ['report_signed', 'delivered', 'closed', 'in_review', 'awaiting_information', 'assigned', 'records_complete'];

/**
 * Records the family's transfer request; 409 when the case never got that far (or ended without a
 * report), 401 when the portal's upload token was revoked meanwhile. With an `Idempotency-Key`
 * (`keyedId`), a portal's resend answers the request already recorded (`replayed`).
 */
export async function requestTransfer(deps: { db: Database; dispatch: WorkDispatch }, caseId: string, body: TransferBody, actor: Principal, keyedId?: string) {
  const record = await findCase(deps.db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  if (!TAKES_TRANSFER.includes(record.status)) {
    throw conflict(`A transfer of care can be requested once the case is under review; this case is ${record.status}.`, { currentStatus: record.status });
  }
  const { value, replayed } = await createOnce(keyedId, (id) => recordedAs(deps.db, caseId, id, body), async () => {
    const id = keyedId ?? randomUUID();
    const at = new Date();
    const serviceRequest = buildTransferServiceRequest(id, caseId, body, at);
    await deps.db.transaction(async (tx) => {
      // As uploads are recorded: the case row locked (serialised with its transitions), then what may
      // have changed since the checks above is checked again. A cancel (which deletes the case's upload
      // tokens) or a token revocation racing this request is either seen here or waits for its commit;
      // the insert's own key-share lock on the case waits for neither.
      const locked = await findCase(tx, caseId, true);
      if (!locked) throw notFound(`Case ${caseId}`);
      if (!TAKES_TRANSFER.includes(locked.status)) {
        throw conflict(`The case moved to ${locked.status} meanwhile: a transfer of care is not requested for it.`, { currentStatus: locked.status });
      }
      if (!(await uploadTokenStillValid(tx, actor, caseId))) {
        throw unauthorized('The upload token was revoked while the request was sent; nothing was recorded. Ask the case manager for a new one.', true);
      }
      await tx.query('INSERT INTO transfer_requests (id, case_id, service_request, requested_by, created_at) VALUES ($1, $2, $3, $4, $5)', [
        id,
        caseId,
        JSON.stringify(serviceRequest),
        actor.sub,
        at,
      ]);
      await insertCaseEvent(tx, { caseId, type: 'transfer_requested', actorSub: actor.sub, actorRole: actor.roles[0], at, data: { transferRequestId: id } });
      await recordEvent(tx, 'transfer.requested', caseId, { caseId, transferRequestId: id });
    });
    // Committed: the outbox event is drained by the notify worker's NOTIFY_POLL_MS schedule if this kick is lost.
    await enqueueAfterCommit(() => deps.dispatch.notify(), { what: 'outbox kick', sweep: 'the notify poll', ids: { caseId, transferRequestId: id } });
    logger.info('transfer of care requested', { caseId });
    return { id, caseId, createdAt: at.toISOString(), serviceRequest };
  });
  return { ...value, replayed };
}

/** The transfer request recorded under `id` for the case, if any; 422 when it was made from another request. */
async function recordedAs(db: Database, caseId: string, id: string, body: TransferBody) {
  const { rows } = await db.query<{ service_request: ServiceRequest; created_at: Date }>(
    'SELECT service_request, created_at FROM transfer_requests WHERE id = $1 AND case_id = $2',
    [id, caseId],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (!isDeepStrictEqual(row.service_request, JSON.parse(JSON.stringify(buildTransferServiceRequest(id, caseId, body, row.created_at))))) throw keyReused('transfer request');
  return { id, caseId, createdAt: row.created_at.toISOString(), serviceRequest: row.service_request };
}

/** The case's transfer requests with their ServiceRequests. */
export async function listTransferRequests(db: Database, caseId: string) {
  const { rows } = await db.query<{ id: string; service_request: ServiceRequest; created_at: Date }>(
    'SELECT id, service_request, created_at FROM transfer_requests WHERE case_id = $1 ORDER BY created_at',
    [caseId],
  );
  return rows.map((r) => ({ id: r.id, caseId, createdAt: r.created_at.toISOString(), serviceRequest: r.service_request }));
}
