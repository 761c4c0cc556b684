/**
 * One run of a delivery job (queue `deliver-report`). Idempotent and crash-safe:
 * - the attempt is recorded (committed) before anything is written to the recipient;
 * - the writer searches the recipient by identifier before creating, and creates conditionally,
 *   so a run after a crash between the write and recording its result finds the report and
 *   records it instead of writing a second one;
 * - right before the first write the delivery is read again: one cancelled or superseded while the
 *   recipient was searched (a cancellation, a reopening, a newer signature) writes nothing;
 * - what is written follows the SMART scope the EHR granted (the token response's, not the one asked
 *   for: https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5) as well as its
 *   CapabilityStatement; a grant that does not allow creating DiagnosticReports fails the delivery
 *   for good, naming the scope, before anything is sent;
 * - a Patient id given with the recipient is read there and checked to be the case's child
 *   ({@link checkRecipientPatient}) before anything is filed under it, and so is the one Patient found
 *   by identifier or by name and birth date; a wrong one is `needs_review`;
 * - the referring physician's Practitioner is looked up only where the scope granted lets this client
 *   search Practitioners, and a refusal of that optional look-up (a permanent 4xx) names the physician
 *   by NPI instead of failing the delivery;
 * - a version is `amended` only in a chart that holds an earlier version, `final` (replacing
 *   nothing) elsewhere (`statusAtRecipient` in report-resources.ts);
 * - a recipient paused by its circuit breaker (after failures, or a `Retry-After` longer than a
 *   request may wait) is waited for when the job can wait (queues/paused-endpoint.ts): such a run
 *   fails nothing, not even on the last attempt, and one that finds the circuit still open records
 *   no attempt;
 * - a finished delivery (delivered, needs_review, failed) is not run again until a case manager
 *   re-queues it;
 * - one version at a time per recipient: a version waits (as for a paused recipient, without
 *   spending attempts) while an older version's delivery there is `sending` (its write, once started,
 *   is never superseded under it), and before deciding its own status there it looks up, read-only by
 *   identifier, every earlier version whose write started without a DiagnosticReport id on record (an
 *   answer lost): found, its ids are recorded and this version is `amended`, replacing it;
 * - the start of the write is committed before the first create request (`write_started_at`), only
 *   while the delivery is still `sending` and the recipient's patient still the one written under.
 * @packageDocumentation
 */
import type { Patient, Practitioner, Reference } from 'fhir/r4';
import { searchByIdentifier } from '../fhir/identifier-match';
import { whyNotTheChild } from '../fhir/patient-standing';
import { scopeAllows } from '../fhir/scope';
import type { Config } from '../config';
import { NPI_SYSTEM } from '../cases/fhir-codes';
import { REOPENED_FOR_CORRECTION, transitionCase, type CaseServiceDeps } from '../cases/case-service';
import type { Intake } from '../cases/intake-schema';
import { findCase, insertCaseEvent, type CaseRecord } from '../db/case-repository';
import type { Database } from '../db/database';
import type { EndpointCapabilities } from '../endpoints/capabilities';
import { fhirVersionMessage, unsupportedFhirVersion } from '../endpoints/fhir-version';
import { MAX_CLIENT_REPLACEMENTS, type EndpointClients } from '../endpoints/endpoint-clients';
import { findEndpoint } from '../endpoints/endpoint-repository';
import { CircuitOpenError, ClientRetiredError, FhirHttpError, isGoneError, isPermanentFhirError, type CircuitSnapshot, type FhirEndpointClient } from '../fhir';
import type { Principal } from '../http/auth';
import { errorFields, logger } from '../log';
import { recordEvent, type WorkDispatch } from '../notify/events';
import { findVersion, readVersionPdf } from '../opinion/opinion-repository';
import { pausedMessage, waitsFor, type JobRun } from '../pull/job-run';
import { candidateOf, searchDemographicMatches, searchPatientsByIdentifier } from '../pull/patient-match';
import { survivorIds } from '../pull/source-patient-standing';
import type { PatientCandidate } from '../pull/source-repository';
import { PROGRAM_NAME, reportTitle } from '../report/report-title';
import type { SecretBox } from '../security/secret-box';
import {
  EARLIER_IN_DOUBT_REVIEW, earlierInDoubt, findDelivery, finishDelivery, isInDoubt, lockDeliveries, markWriteStarted, newerVersionGoesTo, noteError, olderVersionSending, queuedNewerAt, recordAttempt, recordLookedUp,
  reportsFiledAtRecipient, requeueRun, saveRemoteIds, SETTLED_DELIVERY_STATES, type DeliveryReviewCode, type DeliveryRow,
} from './delivery-repository';
import { findRecipient, lockedRecipientPatient, setFoundRecipientPatient, type RecipientRow } from './recipient-repository';
import { findWrittenReport, planWrite, writeReport, type WriteOutcome, type WritePlan } from './report-writer';
import { statusAtRecipient } from './report-resources';
import { supersedeDocument, updateNotGrantedReason, type SupersedeOutcome } from './supersede-document';
import { endedWithoutReport } from '../cases/lifecycle';
import { enqueueAfterCommit } from '../util/enqueue-after-commit';

/** What a delivery job needs: the database, sealed endpoint secrets, the per-process FHIR clients, the work dispatch. */
export interface DeliveryDeps extends CaseServiceDeps {
  readonly config: Pick<Config, 'programTimeZone'>;
  readonly secrets: SecretBox;
  readonly clients: EndpointClients;
  readonly dispatch: WorkDispatch;
}

/**
 * An older version's delivery to the same recipient is writing (`sending`): this one waits for it,
 * the way a job waits for a paused recipient (queues/paused-endpoint.ts: no attempt spent, within
 * `DELIVERY_MAX_PAUSE_WAIT_MS`), then decides its status from what that one wrote.
 */
export class OlderVersionWritingError extends CircuitOpenError {
  constructor(endpointId: string, readonly olderVersion: number) {
    super(endpointId, Date.now() + OLDER_VERSION_RECHECK_MS, `version ${olderVersion} is being written to this recipient; ${WAITS_FOR_OLDER_VERSION}`);
  }
}

/** The end of an {@link OlderVersionWritingError}'s message: how a job that failed by waiting is told apart (its `failedReason`). */
const WAITS_FOR_OLDER_VERSION = 'this version waits for it';

/**
 * Whether a delivery job's failure (BullMQ's `failedReason`, the error's message) was waiting for an
 * older version's write: its attempts were spent waiting, not failing (queues/deliver-report.ts runs
 * it again with its attempts and its pause budget whole once the older version ends).
 */
export function failedWaitingForOlderVersion(failedReason: string | undefined): boolean {
  return failedReason !== undefined && failedReason.endsWith(WAITS_FOR_OLDER_VERSION);
}

/** How soon a version waiting for an older one's write asks again. */
const OLDER_VERSION_RECHECK_MS = 1000;

/** Thrown for failures that another attempt cannot fix (the queue then stops retrying). */
export class PermanentDeliveryError extends Error {
  override readonly name = 'PermanentDeliveryError';
}

const SYSTEM: Principal = { sub: 'system:delivery', roles: [] };

/**
 * The previous version's DocumentReference at the recipient, once the amendment replacing it is
 * written: marked `superseded` where the recipient can update DocumentReferences and the SMART scope
 * granted lets this client (no update is sent otherwise; the outcome says why).
 * @param previousId what the amendment's `relatesTo` replaces (`statusAtRecipient`): none for a version `final` there
 * @returns undefined when there is nothing to supersede (no earlier version in this chart, or no DocumentReferences)
 */
async function supersedePrevious(
  client: FhirEndpointClient,
  plan: WritePlan,
  previousId: string | undefined,
  newId: string | undefined,
  run: JobRun,
): Promise<SupersedeOutcome | undefined> {
  if (!previousId || !newId || previousId === newId) return undefined;
  if (plan.supersedeNotGranted !== undefined) return { id: previousId, state: 'left-current', reason: updateNotGrantedReason(plan.supersedeNotGranted) };
  if (!plan.supersede) return { id: previousId, state: 'left-current', reason: 'the recipient does not offer updating DocumentReferences' };
  try {
    return await supersedeDocument(client, previousId);
  } catch (err) {
    // The amendment is in the chart and the physician told: on the last attempt a failing update of
    // the replaced note (5xx, 429, the network) no longer keeps the delivery from being recorded;
    // the note is left current with the reason, as when the EHR refuses the update. A paused
    // recipient is waited for first, when the job may wait: the note is then superseded after all.
    if (!run.isLastAttempt || err instanceof ClientRetiredError || waitsFor(run, err)) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    return { id: previousId, state: 'left-current', reason: `the recipient kept failing to update it: ${detail}` };
  }
}

type PatientResolution = { id: string } | { reason: string; candidates: PatientCandidate[] };

/** A Patient id read at the recipient: the child's record there (its id), or why it is not. */
export type RecipientPatientCheck = { readonly id: string } | { readonly reason: string };

/**
 * Reads `Patient/{patientId}` at the recipient (https://hl7.org/fhir/R4/http.html#read) and checks it
 * is the case's child there ({@link whyNotTheChild}). Every id is read, a candidate recorded earlier
 * too: the record may have changed (merged, deactivated) since.
 * @throws what the read met other than 404/410 (network, 5xx, open circuit, auth): nothing is known about the patient
 */
export async function checkRecipientPatient(client: FhirEndpointClient, patientId: string, childBirthDate: string): Promise<RecipientPatientCheck> {
  let patient: Patient;
  try {
    patient = await client.read<Patient>('Patient', patientId);
  } catch (err) {
    if (isGoneError(err)) return { reason: `Patient/${patientId} does not exist at the recipient.` };
    throw err;
  }
  const reasons = whyNotTheChild(patient, childBirthDate);
  if (reasons.length > 0) return { reason: `Patient/${patientId} at the recipient is not the case's child: ${reasons.join('; ')}.` };
  return { id: patient.id ?? patientId };
}

/**
 * The Patient on record for a recipient (found or chosen for an earlier attempt or version, checked
 * then), read again before anything more is filed under it: the EHR may have merged it into another
 * record (`link` of type `replaced-by`) or made it inactive since, months before an amendment. The
 * same check as for an id given ({@link whyNotTheChild}); one that fails it is `needs_review` with the
 * reason, the records it is replaced by at this recipient as candidates. Pulls read the child's
 * Patient again every time too (`src/pull/source-patient-standing.ts`).
 * @throws what the read met other than 404/410 (network, 5xx, open circuit, auth): retried as the other reads are
 */
async function storedPatientStanding(client: FhirEndpointClient, patientId: string, childBirthDate: string): Promise<PatientResolution> {
  let patient: Patient;
  try {
    patient = await client.read<Patient>('Patient', patientId);
  } catch (err) {
    if (isGoneError(err)) return { reason: `Patient/${patientId}, the child's record on file for this recipient, no longer exists there: choose the child's patient there again.`, candidates: [] };
    throw err;
  }
  const reasons = whyNotTheChild(patient, childBirthDate);
  if (reasons.length === 0) return { id: patient.id ?? patientId };
  const survivors = survivorIds(patient, client.endpoint.baseUrl);
  return {
    reason: `Patient/${patientId}, the child's record on file for this recipient, no longer stands for the case's child there: ${reasons.join('; ')}. Nothing more is filed under it; choose the child's patient there again.`,
    candidates: survivors.map((id) => ({ id, identifiers: [] })),
  };
}

/**
 * The child at the recipient: the id found or chosen before (read and checked again now), else the id given with
 * the recipient (read and checked now), else exactly one match by identifier or by name + birth date
 * (every page of that search read, within a bound: {@link searchDemographicMatches}; a search too big
 * to read to its end is never resolved), checked as an id given is ({@link whyNotTheChild}: an
 * identifier may be another child's, a record found by name may have been merged away): one that is
 * not the child goes to review as the one candidate, with the reason. Never creates one.
 */
async function resolvePatient(client: FhirEndpointClient, recipient: RecipientRow, intake: Intake): Promise<PatientResolution> {
  if (recipient.remotePatientId) return storedPatientStanding(client, recipient.remotePatientId, intake.patient.birthDate);
  const selector = recipient.selector;
  if ('id' in selector) {
    const check = await checkRecipientPatient(client, selector.id, intake.patient.birthDate);
    return 'id' in check ? check : { reason: check.reason, candidates: [] };
  }
  let patients: Patient[];
  if ('identifier' in selector) {
    // Every page is read: a server ignoring the parameter answers with every patient, and the one with
    // the identifier (or a second one) may be on a later page.
    const search = await searchPatientsByIdentifier(client, selector.identifier);
    if (!search.complete) return { reason: `Not resolved at the recipient: ${search.reason}; choose one.`, candidates: search.hits.map(candidateOf) };
    patients = search.hits;
  } else {
    // Every page is read: another child with the same name and birth date may be on a later one.
    const search = await searchDemographicMatches(client, intake);
    if (!search.complete) return { reason: `Not resolved at the recipient: ${search.reason}; choose one.`, candidates: search.matches.map(candidateOf) };
    patients = search.matches;
  }
  const what = 'identifier' in selector ? 'the identifier' : "the child's name and exact birth date";
  const [only] = patients;
  if (patients.length === 1 && only?.id) {
    const reasons = whyNotTheChild(only, intake.patient.birthDate);
    if (reasons.length === 0) return { id: only.id };
    return { reason: `Patient/${only.id}, the one patient at the recipient matching ${what}, is not the case's child: ${reasons.join('; ')}.`, candidates: [candidateOf(only)] };
  }
  if (patients.length === 0) return { reason: `No patient at the recipient matches ${what}; the report is never filed under a new patient.`, candidates: [] };
  return { reason: `${patients.length} patients at the recipient match ${what}; choose one.`, candidates: patients.map(candidateOf) };
}

/**
 * The referring physician at the recipient by NPI (exactly one), else a logical reference by NPI
 * (https://hl7.org/fhir/R4/references.html#logical). The look-up is optional, the Communication's
 * recipient only: it is not sent where the scope granted does not let this client search
 * Practitioners, and a refusal of it (403 where the grant leaves Practitioners out, 400 for an
 * identifier not indexed, 404/501 where there is no such endpoint: any permanent error answer) falls
 * back on the logical reference, as a physician not found there once does. A transient failure
 * (network, 5xx, 429, an open circuit) is thrown: the delivery is retried.
 * @param scope the SMART scope the EHR granted; undefined where no SMART scope applies
 */
export async function referringPhysician(client: FhirEndpointClient, intake: Intake, scope: string | undefined): Promise<Reference> {
  const { name, npi } = intake.referringPhysician;
  if (!npi) return { display: name };
  // Typed: Communication.recipient admits nine resource types, and a logical reference alone does not say which (https://hl7.org/fhir/R4/references.html#logical).
  const byNpi: Reference = { type: 'Practitioner', identifier: { system: NPI_SYSTEM, value: npi }, display: name };
  if (!scopeAllows(scope, 'Practitioner', 'search')) return byNpi;
  try {
    const found = await searchByIdentifier<Practitioner>(client, 'Practitioner', { system: NPI_SYSTEM, value: npi });
    if (found.length === 1 && found[0]?.id) return { reference: `Practitioner/${found[0].id}`, display: name };
  } catch (err) {
    if (!(err instanceof FhirHttpError && err.permanent)) throw err;
    logger.info('the recipient refused the look-up of the referring physician; the report names the physician by NPI', { endpointId: client.endpoint.id, status: err.status });
  }
  return byNpi;
}

/**
 * Ends a delivery `failed`, with the timeline event and the case managers' alert in one transaction;
 * from `queued` too (a permanent failure met before the attempt was recorded: the case, version or
 * endpoint gone). One settled meanwhile (cancelled, superseded) keeps its state: no event, no alert.
 */
async function fail(deps: DeliveryDeps, delivery: DeliveryRow, message: string): Promise<void> {
  const failed = await deps.db.transaction(async (tx) => {
    if (!(await finishDelivery(tx, delivery.id, { state: 'failed', lastError: message, at: new Date() }, ['queued', 'sending']))) return false;
    await insertCaseEvent(tx, {
      caseId: delivery.caseId,
      type: 'delivery_failed',
      actorSub: SYSTEM.sub,
      reason: 'Delivery of the report to the referring physician keeps failing; it needs attention.',
      data: { deliveryId: delivery.id, version: delivery.version, attempts: delivery.attempts },
    });
    await recordEvent(tx, 'delivery.failed', delivery.caseId, { caseId: delivery.caseId, deliveryId: delivery.id, version: delivery.version, attempts: delivery.attempts });
    return true;
  });
  if (!failed) {
    logger.info('delivery settled meanwhile: its failure is not recorded', { deliveryId: delivery.id, caseId: delivery.caseId });
    return;
  }
  await deps.dispatch.notify().catch(() => undefined);
}

/**
 * Runs a delivery. Throws on a retryable failure (the queue retries with backoff, or waits for a
 * paused endpoint: `run.waitsIfPaused`); on the last attempt, or a permanent failure, records it
 * `failed` and alerts the case manager first.
 */
export async function runDelivery(deps: DeliveryDeps, deliveryId: string, run: JobRun): Promise<string> {
  for (let replacedClients = 0; ; replacedClients += 1) {
    const delivery = await findDelivery(deps.db, deliveryId);
    if (!delivery) return 'missing';
    if (SETTLED_DELIVERY_STATES.has(delivery.state)) return delivery.state;
    let waited = false;
    try {
      return await attempt(deps, delivery, run);
    } catch (err) {
      // The recipient endpoint edited meanwhile: its old client sent nothing more. Start again, as a
      // retry would (the delivery read again with the ids written so far), without spending one.
      if (err instanceof ClientRetiredError && replacedClients < MAX_CLIENT_REPLACEMENTS) {
        logger.info('delivery goes on with the endpoint\'s new client', { deliveryId, caseId: delivery.caseId });
        waited = true;
        continue;
      }
      waited = err instanceof OlderVersionWritingError;
      return await failedAttempt(deps, delivery, err, run);
    } finally {
      if (!waited) await wakeNewerVersions(deps, delivery);
    }
  }
}

/**
 * This run of `delivery` is over (written, stopped, failed, or set back to `queued`): a newer version
 * to the same recipient waiting for it (`OlderVersionWritingError`) may have spent its job's attempts
 * meanwhile (its pause budget spent, or `DELIVERY_MAX_PAUSE_WAIT_MS` 0) and is left `queued`: its job
 * is added again now (job ids are derived: one still waiting is not added twice; one that ended is run
 * again). The stale-delivery sweep does the same for a wake-up lost here.
 */
async function wakeNewerVersions(deps: DeliveryDeps, delivery: DeliveryRow): Promise<void> {
  try {
    for (const newer of await queuedNewerAt(deps.db, delivery)) await deps.dispatch.deliver(newer.id, newer.requeues);
  } catch (err) {
    logger.warn('newer versions waiting for this delivery could not be queued again; the stale-delivery sweep will', { deliveryId: delivery.id, ...errorFields(err) });
  }
}

/**
 * Records a failed attempt (an alert when it was the last or the failure is permanent), then throws
 * it. A paused endpoint the job will wait for fails nothing: the delivery says it waits.
 */
async function failedAttempt(deps: DeliveryDeps, delivery: DeliveryRow, err: unknown, run: JobRun): Promise<never> {
  const deliveryId = delivery.id;
  if (err instanceof OlderVersionWritingError && run.waitsIfPaused !== true) {
    // Waiting for an older version's write is never a failure, not even past the pause budget (or with
    // DELIVERY_MAX_PAUSE_WAIT_MS 0): the job's attempt is spent, but the delivery stays `queued` saying
    // it waits, and the older one's end queues it again (wakeNewerVersions; the stale sweep else).
    logger.info('delivery waits for an older version being written; its job retries', { deliveryId, caseId: delivery.caseId, olderVersion: err.olderVersion });
    await noteError(deps.db, deliveryId, `waiting: ${err.message}`);
    throw err;
  }
  if (waitsFor(run, err)) {
    logger.info('delivery waits for its paused recipient', { deliveryId, caseId: delivery.caseId, endpointId: err.endpointId, to: err.retryAt });
    await noteError(deps.db, deliveryId, err instanceof OlderVersionWritingError ? `waiting: ${err.message}` : pausedMessage(err.retryAt));
    throw err;
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error';
  const permanent = err instanceof PermanentDeliveryError || isPermanentFhirError(err);
  logger.warn('delivery attempt failed', { deliveryId, caseId: delivery.caseId, ...errorFields(err) });
  if (permanent || run.isLastAttempt) {
    const current = (await findDelivery(deps.db, deliveryId)) ?? delivery;
    await fail(deps, current, message);
    if (permanent) throw new PermanentDeliveryError(message);
  } else {
    await noteError(deps.db, deliveryId, message);
  }
  throw err;
}


/** A case with a delivery that is in one of these statuses went back to review after signing: a correction is under way. */
const CORRECTION_STATUSES: ReadonlySet<string> = new Set(['in_review', 'awaiting_information']);

/**
 * Ends a delivery that is not to be sent, without an attempt or an alert: from `queued` (before its
 * attempt) or `sending` (right before its write). One settled otherwise meanwhile keeps that state.
 * @returns the state it is in now
 */
async function settle(deps: DeliveryDeps, delivery: DeliveryRow, state: 'cancelled' | 'superseded', reason: string): Promise<string> {
  if (!(await finishDelivery(deps.db, delivery.id, { state, lastError: reason, at: new Date() }, ['queued', 'sending']))) {
    return (await findDelivery(deps.db, delivery.id))?.state ?? 'missing';
  }
  logger.info('delivery not sent', { deliveryId: delivery.id, caseId: delivery.caseId, state });
  return state;
}

/** Why a delivery is not to be sent (any more), with the state it ends in; undefined when it is. */
async function notToBeSent(deps: DeliveryDeps, delivery: DeliveryRow, caseStatus: string): Promise<{ state: 'cancelled' | 'superseded'; reason: string } | undefined> {
  // Nothing goes into the child's chart once the family withdrew, nor an older version than one on its way there.
  if (endedWithoutReport(caseStatus)) return { state: 'cancelled', reason: `the case is ${caseStatus}: nothing more is written into the child's chart` };
  // Back in review after a signature: the specialist is correcting this report (transitionCase stopped it too).
  if (CORRECTION_STATUSES.has(caseStatus)) return { state: 'superseded', reason: REOPENED_FOR_CORRECTION };
  const newer = await newerVersionGoesTo(deps.db, delivery);
  if (newer !== undefined) return { state: 'superseded', reason: `superseded by version ${newer}, which goes to this recipient instead` };
  return undefined;
}

const GONE = 'The case, recipient or report version no longer exists.';

/** The delivery's case (its status decides whether it is still to be sent). */
async function caseOf(deps: DeliveryDeps, delivery: DeliveryRow): Promise<CaseRecord> {
  const record = await findCase(deps.db, delivery.caseId);
  if (!record) throw new PermanentDeliveryError(GONE);
  return record;
}

/** Thrown by the check right before the first write: the delivery was settled meanwhile, nothing is written. */
class DeliveryStoppedError extends Error {
  override readonly name = 'DeliveryStoppedError';
  constructor(readonly state: string) {
    super(`delivery ${state} before it was written`);
  }
}

/**
 * The last check before anything is written into the chart. The look-ups at the recipient take
 * round trips (seconds on a slow EHR); a cancellation, a reopening for correction or a newer
 * signature meanwhile settles the delivery (`cancelled` / `superseded`) in its own transaction,
 * and the report must then not be written (nor the settled state overwritten by `delivered`).
 * @throws DeliveryStoppedError when it is no longer to be sent
 */
async function stillToBeSent(deps: DeliveryDeps, delivery: DeliveryRow): Promise<void> {
  const current = await findDelivery(deps.db, delivery.id);
  if (!current) throw new DeliveryStoppedError('missing');
  if (current.state !== 'sending') throw new DeliveryStoppedError(current.state);
  const record = await caseOf(deps, delivery);
  const stop = await notToBeSent(deps, delivery, record.status);
  if (stop) throw new DeliveryStoppedError(await settle(deps, delivery, stop.state, stop.reason));
}

/**
 * Right before the first create request: the delivery still to be sent ({@link stillToBeSent}), and
 * the start of the write committed (`markWriteStarted`) while it is still `sending` and the
 * recipient's patient is still `patientId`. From then on a newer version waits for this one and
 * looks its report up, and the recipient's patient cannot be changed under it.
 * @throws DeliveryStoppedError when it is no longer to be sent; an Error (retried) when the recipient's patient changed
 */
async function startWrite(deps: DeliveryDeps, delivery: DeliveryRow, patientId: string): Promise<void> {
  await stillToBeSent(deps, delivery);
  const marked = await deps.db.transaction((tx) => markWriteStarted(tx, delivery, patientId));
  if (marked === 'ok') return;
  // Not naming the patient id: the attempt's error is logged (`errorFields`), and some EHRs use the MRN as it.
  if (marked === 'patient-changed') throw new Error("The recipient's patient was changed before the report was written; the next attempt files it under the patient chosen.");
  throw new DeliveryStoppedError(marked);
}

/** A delivery in doubt whose look-up at the recipient could not say whether its report is there. */
interface UnconfirmedReport {
  readonly deliveryId: string;
  readonly version: number;
  readonly reason: string;
}

/**
 * Looks each delivery in doubt up at the recipient (read-only, by our identifier: `findWrittenReport`)
 * and records what is found, each in one transaction with its timeline event: its ids when its
 * report is there (`report_found_at_recipient`: the chart holds it), else no longer in doubt when it
 * is certainly not there. One the recipient could not be looked through for stays in doubt and is
 * returned: "could not search to the end" is never "not there".
 * @param subjects the `Patient/{id}` references its report can only be filed under, when known
 * @param by who looked (a later version's delivery, or the choice of the recipient's patient)
 * @throws what the look-up met (network, 5xx, open circuit): nothing is decided without it
 */
export async function lookUpInDoubt(
  db: Database,
  client: FhirEndpointClient,
  plan: Pick<WritePlan, 'documentReference'>,
  inDoubt: readonly DeliveryRow[],
  subjects: readonly string[] | undefined,
  by: { readonly deliveryId?: string; readonly what: string },
): Promise<UnconfirmedReport[]> {
  const unconfirmed: UnconfirmedReport[] = [];
  for (const earlier of inDoubt) {
    const found = await findWrittenReport(client, plan, { caseId: earlier.caseId, version: earlier.version }, { known: earlier.remoteIds, ...(subjects ? { subjects } : {}) });
    logger.info('delivery in doubt looked up at the recipient', {
      deliveryId: by.deliveryId, caseId: earlier.caseId, earlierDeliveryId: earlier.id, version: earlier.version, outcome: found.outcome,
    });
    if (found.outcome === 'unknown') {
      unconfirmed.push({ deliveryId: earlier.id, version: earlier.version, reason: found.reason });
      continue;
    }
    await db.transaction(async (tx) => {
      await recordLookedUp(tx, earlier, found);
      if (found.outcome !== 'found') return;
      await insertCaseEvent(tx, {
        caseId: earlier.caseId,
        type: 'report_found_at_recipient',
        actorSub: SYSTEM.sub,
        reason: `Version ${earlier.version}'s report is in the referring EHR although its answer was lost; ${by.what}.`,
        data: { deliveryId: earlier.id, version: earlier.version, remoteIds: { ...found.ids }, ...(by.deliveryId ? { foundBy: by.deliveryId } : {}) },
      });
    });
  }
  return unconfirmed;
}

/**
 * Every earlier version to this recipient whose write started with no DiagnosticReport id on record
 * (its answer lost, then failed, superseded or cancelled) is looked up at the recipient by our
 * identifier, read-only, narrowed to the chart of `patientId` at a recipient ignoring the identifier
 * (it was written under that patient, which still stands: the patient cannot change while a write is
 * in doubt): what is found is recorded on it, so `statusAtRecipient` sees it in the chart; certainly
 * not there, it is no longer in doubt; not known, it is returned (this version is then not written).
 * @throws what the look-up met (a transient failure retries this delivery: its status cannot be decided without it)
 */
async function lookUpEarlierInDoubt(deps: DeliveryDeps, client: FhirEndpointClient, plan: WritePlan, delivery: DeliveryRow, patientId: string): Promise<UnconfirmedReport[]> {
  const earlier = await earlierInDoubt(deps.db, delivery.recipientId, delivery.version);
  if (earlier.length === 0) return [];
  return lookUpInDoubt(deps.db, client, plan, earlier, [`Patient/${patientId}`], {
    deliveryId: delivery.id,
    what: `version ${delivery.version} amends it there`,
  });
}

/** What a run ending in review found, and what it was found under (read again when the review is recorded). */
interface Review {
  readonly code: DeliveryReviewCode;
  readonly reason: string;
  readonly candidates: PatientCandidate[];
  readonly eventReason: string;
  readonly data: Record<string, unknown>;
  readonly notice: Record<string, unknown>;
  /** The recipient's patient on record the run used (null: none was, it looked the child up). */
  readonly patientUsed: string | null;
  /** For `earlier-in-doubt`: the earlier deliveries the run found in doubt and could not confirm. */
  readonly earlierInDoubt?: readonly string[];
}

/**
 * Ends a run in `needs_review` (nothing written): the delivery with the reason and candidates, the
 * timeline event and the case managers' notification in one transaction. The run read what the
 * review is about without a lock, round trips ago; it is read again here, locked (the case row
 * first, as cancelling, reopening and signing lock it before the deliveries; then the recipient and
 * the earlier deliveries in doubt `FOR SHARE`, as `markWriteStarted` and `settleDeliveryInDoubt`
 * lock them before a delivery). A case manager choosing the patient, or settling an earlier version
 * in doubt, queues again only the deliveries already in `needs_review`: one still `sending` then
 * would wait in review for a choice already made. So when a patient is now on record other than the
 * one the run used, or (`earlier-in-doubt`) an earlier delivery it could not confirm is no longer in
 * doubt, the delivery goes back to `queued` and its job is added after the commit instead. One
 * settled meanwhile (cancelled, superseded) keeps its state: no event, no notification.
 * @returns the state the delivery is in now
 */
async function toReview(deps: DeliveryDeps, delivery: DeliveryRow, review: Review): Promise<string> {
  type Outcome = { readonly state: 'needs_review' } | { readonly state: 'queued'; readonly requeues: number; readonly why: string } | { readonly state: 'settled' };
  const outcome = await deps.db.transaction(async (tx): Promise<Outcome> => {
    await findCase(tx, delivery.caseId, true);
    const patientNow = await lockedRecipientPatient(tx, delivery.recipientId);
    let why: string | undefined;
    if (typeof patientNow === 'string' && patientNow !== review.patientUsed) {
      why = "queued again: the recipient's patient was chosen while this run was looking for it";
    } else if (review.earlierInDoubt !== undefined) {
      const earlier = await lockDeliveries(tx, review.earlierInDoubt);
      if (earlier.length < review.earlierInDoubt.length || earlier.some((d) => !isInDoubt(d))) {
        why = 'queued again: an earlier version in doubt was settled while this run was looking it up';
      }
    }
    if (why !== undefined) {
      const requeues = await requeueRun(tx, delivery.id, why);
      return requeues === undefined ? { state: 'settled' } : { state: 'queued', requeues, why };
    }
    const changed = await finishDelivery(tx, delivery.id, { state: 'needs_review', reviewReason: review.reason, reviewCode: review.code, candidates: review.candidates, at: new Date() });
    if (!changed) return { state: 'settled' };
    await insertCaseEvent(tx, {
      caseId: delivery.caseId,
      type: 'delivery_needs_review',
      actorSub: SYSTEM.sub,
      reason: review.eventReason,
      data: { deliveryId: delivery.id, version: delivery.version, reviewCode: review.code, candidates: review.candidates.length, ...review.data },
    });
    await recordEvent(tx, 'delivery.needs_review', delivery.caseId, { caseId: delivery.caseId, deliveryId: delivery.id, version: delivery.version, ...review.notice });
    return { state: 'needs_review' };
  });
  if (outcome.state === 'settled') {
    const now = (await findDelivery(deps.db, delivery.id))?.state ?? 'missing';
    logger.info('delivery settled meanwhile: its review is not recorded', { deliveryId: delivery.id, caseId: delivery.caseId, state: now });
    return now;
  }
  if (outcome.state === 'queued') {
    logger.info('delivery queued again instead of review', { deliveryId: delivery.id, caseId: delivery.caseId, reason: outcome.why });
    await enqueueAfterCommit(() => deps.dispatch.deliver(delivery.id, outcome.requeues), {
      what: 'a delivery whose review was settled during its run', sweep: 'the notify stale-delivery sweep', ids: { caseId: delivery.caseId, deliveryId: delivery.id },
    });
    return 'queued';
  }
  await deps.dispatch.notify().catch(() => undefined);
  logger.info('delivery needs review', { deliveryId: delivery.id, caseId: delivery.caseId });
  return 'needs_review';
}

/**
 * @throws CircuitOpenError while the endpoint's circuit breaker keeps requests back (open after
 *   failures or held for a `Retry-After`, or half-open with another caller's probe under way): no
 *   request would be sent before its `retryAt`
 */
function throwIfPaused(endpointId: string, { state, retryAt }: CircuitSnapshot): void {
  const paused = retryAt !== undefined && (state === 'open' || (state === 'half-open' && retryAt > Date.now()));
  if (paused) throw new CircuitOpenError(endpointId, retryAt);
}

/**
 * Why a delivery cannot be made where the EHR's token grants `scope` (SMART scopes:
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html): the EHR would refuse the
 * report (403), on every attempt, until its registration of this client changes.
 */
function reportNotGranted(scope: string): string {
  return `The recipient EHR granted the SMART scope "${scope}", which does not allow creating DiagnosticReports: the EHR must grant this client system/DiagnosticReport.write (or .c) before the report can be delivered.`;
}

async function attempt(deps: DeliveryDeps, delivery: DeliveryRow, run: JobRun): Promise<string> {
  // Whether it is to be sent at all first: a delivery that is not reads no report PDF.
  const record = await caseOf(deps, delivery);
  const stop = await notToBeSent(deps, delivery, record.status);
  if (stop) return settle(deps, delivery, stop.state, stop.reason);
  const recipient = await findRecipient(deps.db, delivery.recipientId);
  const version = await findVersion(deps.db, delivery.caseId, delivery.version);
  const pdf = await readVersionPdf(deps.db, delivery.caseId, delivery.version);
  if (!recipient || !version || !pdf) throw new PermanentDeliveryError(GONE);
  const endpoint = await findEndpoint(deps.db, recipient.endpointId);
  if (!endpoint) throw new PermanentDeliveryError('The recipient endpoint was removed.');
  const client = deps.clients.forEndpoint(endpoint, deps.secrets);
  const circuit = await client.circuitState();
  // A job waiting for its paused recipient asks the circuit again before it counts an attempt: a
  // recheck that finds it still open sends nothing, so it is no attempt (it waits on).
  if (run.waitsIfPaused) throwIfPaused(endpoint.id, circuit);
  // One version at a time into a chart: an older one still writing there lands first, then this one
  // amends it (no attempt is counted while it waits).
  const older = await olderVersionSending(deps.db, delivery);
  if (older !== undefined) throw new OlderVersionWritingError(endpoint.id, older);
  // On record before anything is written there; a delivery cancelled or superseded since it was read
  // above (its case cancelled, reopened, a newer version signed) is not brought back: the run stops.
  if ((await recordAttempt(deps.db, delivery.id, new Date())) === undefined) {
    const now = (await findDelivery(deps.db, delivery.id))?.state ?? 'missing';
    logger.info('delivery settled before its attempt', { deliveryId: delivery.id, caseId: delivery.caseId, state: now });
    return now;
  }
  // A server of another FHIR version than R4 would refuse or misread every write: nothing is sent.
  const otherFhirVersion = unsupportedFhirVersion(endpoint.capabilities);
  if (otherFhirVersion !== undefined) throw new PermanentDeliveryError(`The recipient endpoint cannot receive the report: ${fhirVersionMessage(otherFhirVersion)}.`);
  const intake = record.intake as Intake;

  // The scope the EHR granted decides what this client may write there: the transaction carries
  // nothing the token does not allow (one such entry and the EHR refuses all of it, the report too).
  const scope = await client.grantedScope();
  if (!scopeAllows(scope, 'DiagnosticReport', 'create')) throw new PermanentDeliveryError(reportNotGranted(scope ?? ''));
  const plan = planWrite(endpoint.capabilities as EndpointCapabilities | null, scope);
  // Independent look-ups in parallel (each is a round trip to the recipient); one after the other
  // where the circuit is not closed (after a pause): the first is then the breaker's one probe, and
  // a second sent beside it would be refused as the endpoint still paused (and the job wait again).
  const findPatient = () => resolvePatient(client, recipient, intake);
  const findPhysician = () => (plan.communication ? referringPhysician(client, intake, scope) : Promise.resolve<Reference>({ display: intake.referringPhysician.name }));
  const [patient, physician] = circuit.state === 'closed' ? await Promise.all([findPatient(), findPhysician()]) : [await findPatient(), await findPhysician()];
  if (!('id' in patient)) {
    // The Patient on record there read again and no longer the child's (merged, inactive…), or none found once.
    const onRecord = recipient.remotePatientId !== null;
    return toReview(deps, delivery, {
      code: onRecord ? 'patient-on-record-not-child' : 'patient-not-found',
      reason: patient.reason,
      candidates: patient.candidates,
      eventReason: onRecord
        ? "The child's record on file in the referring EHR no longer stands for the child there (merged into another, inactive, or another birth date); nothing was written, the case manager must choose the patient there again."
        : 'The child was not found exactly once in the referring EHR; the case manager must choose the patient there.',
      data: onRecord ? { patientOnRecord: recipient.remotePatientId } : {},
      notice: onRecord ? { patientOnRecord: true } : {},
      patientUsed: recipient.remotePatientId,
    });
  }
  // The patient found is kept only while none is on record: one a case manager chose meanwhile wins
  // (it was read and checked at the recipient when chosen), and the report is filed under it.
  const patientId = recipient.remotePatientId ?? (await setFoundRecipientPatient(deps.db, recipient.id, patient.id)) ?? patient.id;

  // An earlier version whose answer was lost may be in this chart without its ids on record: looked
  // up there first (read-only, by identifier), so this version amends it instead of standing beside it.
  const unconfirmed = await lookUpEarlierInDoubt(deps, client, plan, delivery, patientId);
  if (unconfirmed.length > 0) {
    // Not written blind: `final` beside an earlier version in the chart would stand as a second
    // current opinion, and the doubt is kept (write_started_at) for the next look-up.
    const versions = unconfirmed.map((u) => u.version);
    return toReview(deps, delivery, {
      code: 'earlier-in-doubt',
      reason: `Version ${versions.join(', ')} of the report ${EARLIER_IN_DOUBT_REVIEW} (its write was sent, its answer never came) and could not be confirmed there: ${unconfirmed.map((u) => u.reason).join('; ')}. Nothing was written: check the child's chart there, then record what you found on that version's delivery (POST /api/cases/${delivery.caseId}/deliveries/{its id}/settle with {found: "<its DiagnosticReport id there>"} or {absent: true}: ${unconfirmed.map((u) => `version ${u.version}: ${u.deliveryId}`).join(', ')}); this version is then queued again.`,
      candidates: [],
      eventReason: 'An earlier version of the report may be in the referring EHR and could not be confirmed there; this version was not written beside it. A case manager must check the chart and record what they found on the earlier version\'s delivery (settle); this version is then queued again.',
      data: { earlierInDoubt: versions, earlierInDoubtDeliveries: unconfirmed.map((u) => u.deliveryId) },
      notice: { earlierInDoubt: versions },
      patientUsed: patientId,
      earlierInDoubt: unconfirmed.map((u) => u.deliveryId),
    });
  }
  // Amended only where an earlier version is in this chart; there it replaces that version's note.
  const { status, previousDocumentId, previousReportId } = statusAtRecipient(await reportsFiledAtRecipient(deps.db, delivery.recipientId, delivery.version));
  let written: WriteOutcome;
  try {
    written = await writeReport(
      client,
      plan,
      {
        caseId: delivery.caseId,
        version: version.version,
        status,
        ...(previousReportId ? { replacesReportId: previousReportId } : {}),
        content: version.content,
        specialist: version.specialist,
        signedAt: version.signedAt,
        pdf,
        pdfSha1Base64: version.pdfSha1Base64,
        title: reportTitle({ caseId: delivery.caseId, version: version.version, status }),
        patientId,
        programName: PROGRAM_NAME,
      },
      delivery.remoteIds,
      { recipient: physician, previousDocumentId, beforeWrite: () => startWrite(deps, delivery, patientId) },
      (progress, mode) => saveRemoteIds(deps.db, delivery.id, progress, mode),
    );
  } catch (err) {
    if (!(err instanceof DeliveryStoppedError)) throw err;
    logger.info('delivery stopped before writing', { deliveryId: delivery.id, caseId: delivery.caseId, state: err.state });
    return err.state;
  }
  const { ids, documentRefused, communicationRefused, transactionRefused } = written;
  if (!ids.DiagnosticReport) throw new Error('The recipient did not return the id of the DiagnosticReport.');
  // A note the recipient refused is on record with why (the report and the Communication are there);
  // the note it would have replaced then stays the current one in that chart, and says so.
  const document = documentRefused !== undefined ? { state: 'refused', reason: documentRefused } : undefined;
  // A message to the physician the recipient refused is on record with why (the report is there); the
  // case managers are told, in the same transaction, to let the physician know another way.
  const communication = communicationRefused !== undefined ? { state: 'refused', reason: communicationRefused } : undefined;
  const transaction = transactionRefused !== undefined ? { state: 'refused', reason: transactionRefused } : undefined;
  const previousDocument: SupersedeOutcome | undefined =
    documentRefused !== undefined && previousDocumentId !== undefined
      ? { id: previousDocumentId, state: 'left-current', reason: `the amendment's own DocumentReference was refused (${documentRefused}), so this note is still the current one there` }
      : await supersedePrevious(client, plan, previousDocumentId, ids.DocumentReference, run);

  const recorded = await deps.db.transaction(async (tx) => {
    // The case row first, as cancelling, reopening and signing lock it before they settle deliveries:
    // locking the delivery first (its ids, its state) and the case second deadlocked with them over a
    // delivery they may still settle (`sending` with no write started: all it needed was found there).
    const current = await findCase(tx, delivery.caseId, true);
    // The report is in the chart whatever happened meanwhile: its ids are kept (a later version amends it).
    await saveRemoteIds(tx, delivery.id, ids, written.mode);
    if (!(await finishDelivery(tx, delivery.id, { state: 'delivered', lastError: null, at: new Date() }))) return false;
    if (current?.status === 'report_signed') {
      await transitionCase(deps, tx, {
        id: delivery.caseId,
        to: 'delivered',
        reason: "The report is in the referring physician's EHR.",
        actor: SYSTEM,
        now: new Date(),
        data: { deliveryId: delivery.id, version: delivery.version },
      });
    }
    await insertCaseEvent(tx, {
      caseId: delivery.caseId,
      type: 'report_delivered',
      actorSub: SYSTEM.sub,
      data: {
        deliveryId: delivery.id,
        version: delivery.version,
        remoteIds: { ...ids },
        ...(document ? { document } : {}),
        ...(communication ? { communication } : {}),
        ...(transaction ? { transaction } : {}),
        ...(previousDocument ? { previousDocument } : {}),
      },
    });
    await recordEvent(tx, 'report.delivered', delivery.caseId, { caseId: delivery.caseId, deliveryId: delivery.id, version: delivery.version });
    if (communication) {
      await insertCaseEvent(tx, {
        caseId: delivery.caseId,
        type: 'physician_not_told',
        actorSub: SYSTEM.sub,
        reason: "The report is in the referring physician's EHR, but the EHR refused the message telling the physician (Communication): a case manager must let the physician know.",
        data: { deliveryId: delivery.id, version: delivery.version, recipientId: delivery.recipientId, communication },
      });
      await recordEvent(tx, 'delivery.physician_not_told', delivery.caseId, {
        caseId: delivery.caseId,
        deliveryId: delivery.id,
        recipientId: delivery.recipientId,
        version: delivery.version,
        reportId: ids.DiagnosticReport,
      });
    }
    return true;
  });
  if (!recorded) {
    const now = (await findDelivery(deps.db, delivery.id))?.state ?? 'missing';
    logger.warn('delivery settled meanwhile: its report was found in the chart, its ids are kept, it is not recorded delivered', { deliveryId: delivery.id, caseId: delivery.caseId, state: now });
    return now;
  }
  await deps.dispatch.notify().catch(() => undefined);
  logger.info('report delivered', {
    deliveryId: delivery.id,
    caseId: delivery.caseId,
    version: delivery.version,
    mode: written.mode,
    ...(previousDocument ? { previousDocumentState: previousDocument.state } : {}),
    ...(document ? { documentState: document.state } : {}),
    ...(communication ? { communicationState: communication.state } : {}),
    ...(transaction ? { transactionState: transaction.state } : {}),
  });
  return 'delivered';
}
