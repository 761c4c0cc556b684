/**
 * Recipients and deliveries, as the case manager sees them: add the referring physician's EHR as a
 * recipient (the report goes there at signing, or at once when a signed version exists), list the
 * deliveries with state, attempts, remote ids and last error, choose the patient of a delivery in
 * review (read and checked at the recipient first), and re-queue a failed one.
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { Intake } from '../cases/intake-schema';
import { findCase, insertCaseEvent } from '../db/case-repository';
import type { Database, Queryable } from '../db/database';
import type { EndpointClients } from '../endpoints/endpoint-clients';
import { requireEndpoint } from '../endpoints/endpoint-service';
import { CircuitOpenError, FhirClientError, isGoneError } from '../fhir';
import { primaryRole, type Principal } from '../http/auth';
import { conflict, fieldProblem, HttpProblem, notFound } from '../http/problem';
import { errorFields, logger } from '../log';
import { enqueueAfterCommit } from '../util/enqueue-after-commit';
import type { WorkDispatch } from '../notify/events';
import { findVersion } from '../opinion/opinion-repository';
import type { PatientSelector } from '../pull/source-repository';
import type { SecretBox } from '../security/secret-box';
import {
  createDeliveries, earlierInDoubt, findDelivery, isInDoubt, listDeliveries, recordSettled, reportsFiledAtRecipient, requeueDelivery, reviewsWaitingOnDoubt, unsettledWritesAt,
  type DeliveryRow, type RemoteIds,
} from './delivery-repository';
import { checkRecipientPatient, lookUpInDoubt, type RecipientPatientCheck } from './delivery-runner';
import type { Patient } from 'fhir/r4';
import { survivorIds } from '../pull/source-patient-standing';
import { findRecipient, insertRecipient, listRecipients, setRecipientPatient, type RecipientRow } from './recipient-repository';
import { findWrittenReport, mayWriteReports, planWrite, requestedScope } from './report-writer';
import { reportIdentifierToken } from './report-resources';
import { carriesIdentifier, parseIdentifierToken } from '../fhir/identifier-match';
import type { DiagnosticReport } from 'fhir/r4';
import type { EndpointCapabilities } from '../endpoints/capabilities';
import { fhirVersionMessage, unsupportedFhirVersion } from '../endpoints/fhir-version';

/** What the recipient and delivery routes need; the endpoint clients and sealed secrets to read a chosen patient at the recipient. */
export interface DeliveryServiceDeps {
  readonly db: Database;
  readonly dispatch: WorkDispatch;
  readonly secrets: SecretBox;
  readonly clients: EndpointClients;
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
    /** Why it waits in needs_review, as a code: patient-not-found, patient-on-record-not-child or earlier-in-doubt (null otherwise). */
    reviewCode: d.reviewCode,
    candidates: d.candidates,
    lastAttemptAt: d.lastAttemptAt?.toISOString() ?? null,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
    /** When its write may first have been sent to the recipient (null: never, or its doubt was cleared). */
    writeStartedAt: d.writeStartedAt?.toISOString() ?? null,
    /** Its write was sent, no DiagnosticReport id is on record and it is not writing now: its report may be in the chart (settle it). */
    inDoubt: isInDoubt(d),
  };
}

/** Adds a recipient; when the case already has a signed version, its delivery starts now. */
export async function addRecipient(deps: DeliveryServiceDeps, caseId: string, body: { endpointId: string; patient?: PatientSelector }, actor: Principal) {
  const record = await requireOpenCase(deps.db, caseId);
  if (CLOSED.includes(record.status)) throw conflict(`A ${record.status} case takes no recipients.`);
  const endpoint = await requireEndpoint(deps.db, body.endpointId, { bodyField: 'endpointId' });
  // A SMART registration that may not create DiagnosticReports there would fail every delivery with
  // 403 only at signing: refused now, naming the field (SMART scopes:
  // https://hl7.org/fhir/smart-app-launch/STU2/scopes-and-launch-context.html).
  if (!mayWriteReports(endpoint)) {
    const detail = `endpoint ${endpoint.id} asks for the SMART scope "${requestedScope(endpoint) ?? ''}", which does not allow creating DiagnosticReports: add system/DiagnosticReport.write to the endpoint's scope first.`;
    throw new HttpProblem(422, 'Endpoint cannot receive reports', detail, [fieldProblem(['endpointId'], detail)]);
  }
  // A server declaring another FHIR version than R4 would fail every delivery: refused now, naming it.
  const otherFhirVersion = unsupportedFhirVersion(endpoint.capabilities);
  if (otherFhirVersion !== undefined) {
    const detail = `endpoint ${endpoint.id}: ${fhirVersionMessage(otherFhirVersion)}.`;
    throw new HttpProblem(422, 'Endpoint cannot receive reports', detail, [fieldProblem(['endpointId'], detail)], { fhirVersion: otherFhirVersion });
  }
  const id = randomUUID();
  const selector: PatientSelector = body.patient ?? { match: true };
  const created = await deps.db.transaction(async (tx) => {
    // The case row locked first, as signing locks it before listing the recipients: a version signed
    // meanwhile either lists this recipient (its delivery made there) or is committed before the
    // latest version is read here; never a recipient that gets only the version before.
    const locked = await findCase(tx, caseId, true);
    if (!locked) throw notFound(`Case ${caseId}`);
    if (CLOSED.includes(locked.status)) throw conflict(`A ${locked.status} case takes no recipients.`);
    // A patient id given here is read and checked at the recipient before the first write (it may
    // not exist there, or be another child: needs_review, not a report filed under it); a chosen
    // one is checked when chosen (chooseRecipientPatient).
    const inserted = await insertRecipient(tx, { id, caseId, endpointId: body.endpointId, selector, remotePatientId: null, createdBy: actor.sub });
    if (!inserted) throw conflict('This endpoint is already a recipient of the case.');
    const latest = await findVersion(tx, caseId);
    return latest ? createDeliveries(tx, caseId, latest.version, [id]) : [];
  });
  await enqueueAfterCommit(() => Promise.all(created.map((deliveryId) => deps.dispatch.deliver(deliveryId, 0))), {
    what: 'deliveries to a new recipient', sweep: 'the notify stale-delivery sweep', ids: { caseId, count: created.length },
  });
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

/**
 * The recipient could not be asked about the patient (network, 5xx, open circuit, refused token…):
 * 503 while its circuit is open (with `retryAt`), else 502, saying what it answered. Errors that are
 * this service's own (database, Redis) stay 500s, their text in the log only. The text does not name
 * the patient id: a 5xx is logged (`errorHandler`), and some EHRs use the MRN as the Patient id.
 */
function recipientUnreachable(err: unknown): unknown {
  if (err instanceof HttpProblem || !(err instanceof FhirClientError)) return err;
  const detail = `The recipient endpoint could not be asked for the patient: ${err.message}. Nothing was saved; choose the patient again once it answers.`;
  if (err instanceof CircuitOpenError) return new HttpProblem(503, 'Service Unavailable', detail, [], { retryAt: new Date(err.retryAt).toISOString() });
  return new HttpProblem(502, 'Bad Gateway', detail);
}

/** 422 naming `patientId`: the Patient read at the recipient is not the case's child there. */
function notTheChild(reason: string): HttpProblem {
  return new HttpProblem(422, "Not the child's record at the recipient", reason, [fieldProblem(['patientId'], reason)]);
}

/**
 * Reads `Patient/{patientId}` at the recipient's endpoint (its current client, as the delivery does)
 * and checks it is the case's child ({@link checkRecipientPatient}): a typo must not file one child's
 * second opinion in another child's chart.
 * @throws HttpProblem 422 (not the child, naming `patientId`), 502/503 (the recipient could not be asked)
 */
async function confirmChildAtRecipient(deps: DeliveryServiceDeps, recipient: RecipientRow, patientId: string, intake: Intake): Promise<string> {
  let check: RecipientPatientCheck;
  try {
    check = await deps.clients.withCurrentClient(() => requireEndpoint(deps.db, recipient.endpointId), deps.secrets, (client) =>
      checkRecipientPatient(client, patientId, intake.patient.birthDate),
    );
  } catch (err) {
    logger.warn('chosen recipient patient could not be read', { caseId: recipient.caseId, recipientId: recipient.id, ...errorFields(err) });
    throw recipientUnreachable(err);
  }
  if ('reason' in check) throw notTheChild(check.reason);
  return check.id;
}

/**
 * 409 naming `patientId` when the recipient's patient may not change to `patientId`:
 * - a report version is filed there under another Patient: a later version is an amendment there
 *   (`statusAtRecipient`), whose DocumentReference `replaces` the note in that chart, so choosing
 *   another patient would file amendments of one chart's report in another. The filing is corrected
 *   at the EHR (or the recipient removed and added again), not here. Except `mergedInto`: the record
 *   the EHR merged the one on record into ({@link settleReportsInDoubt}), where the filed reports are now;
 * - a delivery there is writing now under the current Patient (`sending`, its write started): choose
 *   again once it is done;
 * - a delivery there is in doubt (its write started, its answer was lost) and the look-up at the
 *   recipient when choosing could not say whether its report is there: it may be in that chart.
 * Deliveries in doubt are looked up at the recipient first ({@link settleReportsInDoubt}): found, they
 * count as filed; certainly not there, no longer in doubt. Checked again in the transaction that
 * saves the choice, with the recipient row locked.
 */
async function refuseMovingFiledReports(db: Queryable, recipient: RecipientRow, patientId: string, mergedInto?: string): Promise<void> {
  if (recipient.remotePatientId === null || recipient.remotePatientId === patientId) return;
  const versions = (await reportsFiledAtRecipient(db, recipient.id)).map((d) => d.version);
  if (versions.length > 0 && mergedInto !== patientId) {
    const detail = `Version ${versions.join(', ')} of the report is filed at this recipient under Patient/${recipient.remotePatientId}; later versions amend it there. Choosing Patient/${patientId} would file amendments in another chart: correct the filing at the EHR first.`;
    throw new HttpProblem(409, 'Conflict', detail, [fieldProblem(['patientId'], detail)], { remotePatientId: recipient.remotePatientId, filedVersions: versions });
  }
  const { writing, inDoubt } = await unsettledWritesAt(db, recipient.id);
  if (writing.length > 0) {
    const detail = `Version ${writing.map((d) => d.version).join(', ')} of the report is being written at this recipient under Patient/${recipient.remotePatientId} (its answer not received yet). Choosing Patient/${patientId} now could file its amendments in another chart: choose again once it is delivered.`;
    throw new HttpProblem(409, 'Conflict', detail, [fieldProblem(['patientId'], detail)], {
      remotePatientId: recipient.remotePatientId,
      writingVersions: writing.map((d) => d.version),
    });
  }
  if (inDoubt.length > 0) {
    const detail = `Version ${inDoubt.map((d) => d.version).join(', ')} of the report may have been written at this recipient under Patient/${recipient.remotePatientId} (its write was sent, its answer never came) and the recipient could not be looked through to confirm it. Choosing Patient/${patientId} now could leave it beside its amendment in another chart: check the chart there first.`;
    throw new HttpProblem(409, 'Conflict', detail, [fieldProblem(['patientId'], detail)], {
      remotePatientId: recipient.remotePatientId,
      writingVersions: inDoubt.map((d) => d.version),
    });
  }
}

/**
 * Before the recipient's patient is chosen again, what the choice depends on is read at the recipient
 * (its current client):
 * - the records the EHR merged the patient on record into (its `replaced-by` links), when a report is
 *   filed or in doubt there: the filed reports are in that chart now, so choosing one of them is not
 *   moving them to another chart (https://hl7.org/fhir/R4/patient-definitions.html#Patient.link);
 * - every delivery there in doubt and not writing now (its write started, its answer lost), looked up
 *   by our identifier (`lookUpInDoubt`), narrowed to the chart of the patient on record and of those
 *   records at a recipient ignoring the identifier: found, its ids are recorded (it is filed: the
 *   survivor rule applies); certainly not there, it is no longer in doubt; else it stays in doubt.
 * A read or look-up that fails leaves everything as it was (the choice is then refused as a move, or
 * for the doubt), logged.
 * @returns the ids of the records the patient on record was merged into (none when not read)
 */
async function settleReportsInDoubt(deps: DeliveryServiceDeps, recipient: RecipientRow): Promise<string[]> {
  const onRecord = recipient.remotePatientId;
  if (onRecord === null) return [];
  const inDoubt = await earlierInDoubt(deps.db, recipient.id);
  if (inDoubt.length === 0 && (await reportsFiledAtRecipient(deps.db, recipient.id)).length === 0) return [];
  try {
    return await deps.clients.withCurrentClient(() => requireEndpoint(deps.db, recipient.endpointId), deps.secrets, async (client, endpoint) => {
      let survivors: string[] | undefined;
      try {
        const old = await client.read<Patient>('Patient', onRecord);
        survivors = survivorIds(old, client.endpoint.baseUrl);
      } catch (err) {
        if (!isGoneError(err)) throw err;
      }
      if (inDoubt.length > 0) {
        const plan = planWrite(endpoint.capabilities as EndpointCapabilities | null, await client.grantedScope());
        const subjects = survivors === undefined ? undefined : [onRecord, ...survivors].map((id) => `Patient/${id}`);
        await lookUpInDoubt(deps.db, client, plan, inDoubt, subjects, { what: "found when the recipient's patient was chosen again: later versions amend it" });
      }
      return survivors ?? [];
    });
  } catch (err) {
    logger.warn('recipient patient on record or reports in doubt could not be looked up', { caseId: recipient.caseId, recipientId: recipient.id, ...errorFields(err) });
    return [];
  }
}

/**
 * The case manager chooses the child's Patient at the recipient (one of a delivery's `candidates`,
 * or another id); deliveries waiting on it are re-queued. The id is read there and checked first
 * (exists, the child's birth date, active, not replaced by another record); nothing is saved when
 * it is refused or cannot be read. Deliveries in doubt there are looked up first ({@link settleReportsInDoubt}).
 */
export async function chooseRecipientPatient(deps: DeliveryServiceDeps, caseId: string, recipientId: string, patientId: string) {
  const record = await requireOpenCase(deps.db, caseId);
  const recipient = await findRecipient(deps.db, recipientId);
  if (!recipient || recipient.caseId !== caseId) throw notFound(`Recipient ${recipientId}`);
  const survivors = recipient.remotePatientId === patientId ? [] : await settleReportsInDoubt(deps, recipient);
  const mergedInto = survivors.includes(patientId) ? patientId : undefined;
  // Refused early (nothing more read at the recipient), and again under the recipient row lock below.
  await refuseMovingFiledReports(deps.db, recipient, patientId, mergedInto);
  const confirmedId = await confirmChildAtRecipient(deps, recipient, patientId, record.intake as Intake);
  // The patient and the deliveries queued again under it: all or nothing, so a recipient is never left
  // with its patient chosen and its deliveries in review (nothing else queues one in review again).
  // Their jobs are added after the commit (a lost one is re-queued by the stale-delivery sweep).
  // The recipient row locked: a delivery marks its write started only under a share lock of it, so it
  // either sees this choice or is seen writing here.
  const requeued = await deps.db.transaction(async (tx) => {
    const locked = await findRecipient(tx, recipientId, true);
    if (!locked) throw notFound(`Recipient ${recipientId}`);
    await refuseMovingFiledReports(tx, locked, confirmedId, locked.remotePatientId === recipient.remotePatientId ? mergedInto : undefined);
    await setRecipientPatient(tx, recipientId, confirmedId);
    const waiting = (await listDeliveries(tx, caseId)).filter((d) => d.recipientId === recipientId && d.state === 'needs_review');
    const jobs: { id: string; requeues: number }[] = [];
    for (const d of waiting) {
      const requeues = await requeueDelivery(tx, d.id);
      if (requeues !== undefined) jobs.push({ id: d.id, requeues });
    }
    return jobs;
  });
  await enqueueAfterCommit(async () => {
    for (const job of requeued) await deps.dispatch.deliver(job.id, job.requeues);
  }, { what: 'deliveries under the chosen patient', sweep: 'the notify stale-delivery sweep', ids: { caseId, count: requeued.length } });
  return recipientView((await findRecipient(deps.db, recipientId)) as RecipientRow);
}

/** Re-queues a failed or needs_review delivery (409 otherwise). */
export async function retryDelivery(deps: DeliveryServiceDeps, caseId: string, deliveryId: string) {
  const delivery = await findDelivery(deps.db, deliveryId);
  if (!delivery || delivery.caseId !== caseId) throw notFound(`Delivery ${deliveryId}`);
  const requeues = await requeueDelivery(deps.db, deliveryId);
  if (requeues === undefined) throw conflict(`Only a failed or needs_review delivery can be retried; this one is ${delivery.state}.`, { state: delivery.state });
  await enqueueAfterCommit(() => deps.dispatch.deliver(deliveryId, requeues), { what: 'a delivery retried', sweep: 'the notify stale-delivery sweep', ids: { caseId, deliveryId } });
  return deliveryView((await findDelivery(deps.db, deliveryId)) as DeliveryRow);
}

/** What a case manager found in the child's chart at the recipient for a delivery in doubt. */
export type SettleInDoubt = { readonly found: string } | { readonly absent: true };

/** The request's field a settlement names in its problems. */
const fieldOf = (settled: SettleInDoubt): 'found' | 'absent' => ('found' in settled ? 'found' : 'absent');

/** 409 naming the field: the delivery is not in doubt (or no longer). */
function notInDoubt(d: DeliveryRow, settled: SettleInDoubt): HttpProblem {
  const why =
    d.state === 'sending'
      ? 'it is being written now: wait for its answer'
      : d.remoteIds.DiagnosticReport
        ? `its report is on record at the recipient as DiagnosticReport/${d.remoteIds.DiagnosticReport}`
        : 'no write of it was ever sent, or its doubt was already cleared';
  const detail = `Delivery ${d.id} (version ${d.version}) is not in doubt: ${why}. Only a delivery whose write was sent and whose answer never came can be settled.`;
  return new HttpProblem(409, 'Conflict', detail, [fieldProblem([fieldOf(settled)], detail)], { state: d.state, remoteIds: d.remoteIds });
}

/** 422 naming `found`: that id at the recipient is not this version's report. */
function notOurReport(detail: string): HttpProblem {
  return new HttpProblem(422, 'Not this version\'s report at the recipient', detail, [fieldProblem(['found'], detail)]);
}

/**
 * Reads `DiagnosticReport/{id}` at the recipient (its current client) and checks it carries our
 * identifier of this case and version (`{case}-v{n}`); the note (DocumentReference) of that version is
 * looked up too (best effort: one not found is left out, the amendment then replaces the report only).
 * @throws HttpProblem 422 naming `found` (not there, or not this version's report), 502/503 (the recipient could not be asked)
 */
async function confirmFoundReport(deps: DeliveryServiceDeps, recipient: RecipientRow, delivery: DeliveryRow, reportId: string): Promise<RemoteIds> {
  const token = reportIdentifierToken(delivery.caseId, delivery.version);
  try {
    return await deps.clients.withCurrentClient(() => requireEndpoint(deps.db, recipient.endpointId), deps.secrets, async (client, endpoint) => {
      let report: DiagnosticReport;
      try {
        report = await client.read<DiagnosticReport>('DiagnosticReport', reportId);
      } catch (err) {
        if (isGoneError(err)) throw notOurReport(`DiagnosticReport/${reportId} does not exist at the recipient; nothing was recorded.`);
        throw err;
      }
      if (!carriesIdentifier(report, parseIdentifierToken(token))) {
        throw notOurReport(`DiagnosticReport/${reportId} at the recipient does not carry this report's identifier (${token}): it is not version ${delivery.version} of this case's report; nothing was recorded.`);
      }
      const ids: RemoteIds = { DiagnosticReport: report.id ?? reportId };
      try {
        const plan = planWrite(endpoint.capabilities as EndpointCapabilities | null, await client.grantedScope());
        const subjects = report.subject?.reference ? [report.subject.reference] : undefined;
        const found = await findWrittenReport(client, plan, delivery, { known: ids, ...(subjects ? { subjects } : {}) });
        if (found.outcome === 'found' && found.ids.DiagnosticReport === ids.DiagnosticReport && found.ids.DocumentReference) ids.DocumentReference = found.ids.DocumentReference;
      } catch (err) {
        if (err instanceof HttpProblem) throw err;
        logger.warn('the note of a report settled found could not be looked up; the report alone is recorded', { caseId: delivery.caseId, deliveryId: delivery.id, ...errorFields(err) });
      }
      return ids;
    });
  } catch (err) {
    if (err instanceof HttpProblem || !(err instanceof FhirClientError)) throw err;
    logger.warn('a report settled found could not be read at the recipient', { caseId: delivery.caseId, deliveryId: delivery.id, ...errorFields(err) });
    // Not naming the report id: a 5xx's text is logged (`errorHandler`), and ids at an EHR are its to mint.
    const detail = `The recipient endpoint could not be asked for the report: ${err.message}. Nothing was recorded; settle it again once it answers.`;
    if (err instanceof CircuitOpenError) throw new HttpProblem(503, 'Service Unavailable', detail, [], { retryAt: new Date(err.retryAt).toISOString() });
    throw new HttpProblem(502, 'Bad Gateway', detail);
  }
}

/**
 * A case manager records what they found in the child's chart at the recipient for a delivery in
 * doubt (its write was sent, its answer never came, and a look-up there could not say whether its
 * report is there): `found`, the recipient's id of its DiagnosticReport (read there first and checked
 * to carry this version's identifier: 422 naming `found` otherwise), recorded as that version's report
 * in the chart (later versions amend it and replace it); or `absent`, the doubt cleared (later versions
 * are `final` there). In one transaction with the delivery locked and checked again (409 naming the
 * field when it is not in doubt, or no longer), the timeline event naming who settled it and how, and
 * the later versions' deliveries to that recipient in `needs_review` because of a version in doubt
 * queued again (their jobs after the commit).
 */
export async function settleDeliveryInDoubt(deps: DeliveryServiceDeps, caseId: string, deliveryId: string, settled: SettleInDoubt, actor: Principal) {
  await requireOpenCase(deps.db, caseId);
  const delivery = await findDelivery(deps.db, deliveryId);
  if (!delivery || delivery.caseId !== caseId) throw notFound(`Delivery ${deliveryId}`);
  if (!isInDoubt(delivery)) throw notInDoubt(delivery, settled);
  const recipient = await findRecipient(deps.db, delivery.recipientId);
  if (!recipient) throw notFound(`Recipient ${delivery.recipientId}`);
  const found = 'found' in settled ? await confirmFoundReport(deps, recipient, delivery, settled.found) : undefined;
  const requeued = await deps.db.transaction(async (tx) => {
    const locked = await findDelivery(tx, deliveryId, true);
    if (!locked) throw notFound(`Delivery ${deliveryId}`);
    if (!isInDoubt(locked) || !(await recordSettled(tx, deliveryId, found ? { found } : { absent: true }))) throw notInDoubt(locked, settled);
    await insertCaseEvent(tx, {
      caseId,
      type: 'delivery_in_doubt_settled',
      actorSub: actor.sub,
      actorRole: primaryRole(actor),
      reason: found
        ? `${actor.sub} checked the child's chart at the recipient: version ${delivery.version}'s report is there as DiagnosticReport/${found.DiagnosticReport ?? ''}; later versions amend it and replace it.`
        : `${actor.sub} checked the child's chart at the recipient: version ${delivery.version}'s report is not there; it is no longer in doubt, and a later version is filed there as final.`,
      data: { deliveryId, version: delivery.version, recipientId: delivery.recipientId, settledBy: actor.sub, ...(found ? { settled: 'found', remoteIds: { ...found } } : { settled: 'absent' }) },
    });
    const jobs: { id: string; requeues: number }[] = [];
    for (const d of await reviewsWaitingOnDoubt(tx, delivery)) {
      const requeues = await requeueDelivery(tx, d.id);
      if (requeues !== undefined) jobs.push({ id: d.id, requeues });
    }
    return jobs;
  });
  await enqueueAfterCommit(async () => {
    for (const job of requeued) await deps.dispatch.deliver(job.id, job.requeues);
  }, { what: 'deliveries waiting on a report in doubt, settled', sweep: 'the notify stale-delivery sweep', ids: { caseId, deliveryId, count: requeued.length } });
  logger.info('delivery in doubt settled', { caseId, deliveryId, settled: fieldOf(settled), requeued: requeued.length });
  return { ...deliveryView((await findDelivery(deps.db, deliveryId)) as DeliveryRow), requeued: requeued.map((j) => j.id) };
}
