import { randomUUID } from 'node:crypto';
import type { Patient } from 'fhir/r4';
import { markSourceChanged } from '../assembly/source-changes';
import type { Intake } from '../cases/intake-schema';
import { findCase, insertCaseEvent } from '../db/case-repository';
import type { Database } from '../db/database';
import type { EndpointClients } from '../endpoints/endpoint-clients';
import { requireEndpoint, type RequireEndpointOptions } from '../endpoints/endpoint-service';
import { FhirClientError, isGoneError, type FhirEndpointClient } from '../fhir';
import { conflict, HttpProblem, notFound } from '../http/problem';
import type { Principal } from '../http/auth';
import { logger } from '../log';
import type { SecretBox } from '../security/secret-box';
import { stopSourceInRunningPulls } from './pull-repository';
import { serverMessagesBySource } from './source-server-messages';
import { candidateOf, demographicDifferences, searchDemographicMatches, searchPatientsByIdentifier } from './patient-match';
import { replacedBy, whyNoLongerCurrent } from '../fhir/patient-standing';
import { survivorId, survivorIds } from './source-patient-standing';
import {
  findSource,
  insertSource,
  listSources,
  markSourceRemoved,
  resolveSource,
  type PatientCandidate,
  type PatientSelector,
  type SourceRow,
} from './source-repository';

export interface SourceServiceDeps {
  readonly db: Database;
  readonly secrets: SecretBox;
  readonly clients: EndpointClients;
}

interface Resolution {
  readonly state: 'resolved' | 'needs_review';
  readonly remotePatientId: string | null;
  readonly candidates: PatientCandidate[];
  readonly reviewReason: string | null;
}

const review = (reviewReason: string, candidates: PatientCandidate[] = []): Resolution => ({
  state: 'needs_review',
  remotePatientId: null,
  candidates,
  reviewReason,
});
const resolved = (patient: Patient): Resolution => ({
  state: 'resolved',
  remotePatientId: patient.id ?? null,
  candidates: [candidateOf(patient)],
  reviewReason: null,
});

/**
 * The child's record found at an endpoint, if it still stands there: one the care team merged into
 * another (`link` of type `replaced-by`) or made inactive is not used — the source needs review, the
 * merge's survivor (when at this server) offered as the candidate (`fhir/patient-standing.ts`, the
 * rule every pull and delivery apply too).
 */
function standing(patient: Patient, baseUrl: string): Resolution {
  const reasons = whyNoLongerCurrent(patient);
  if (reasons.length === 0) return resolved(patient);
  const survivors = survivorIds(patient, baseUrl);
  return review(`Patient/${patient.id ?? '?'} no longer stands for its person at this endpoint: ${reasons.join('; ')}.`, survivors.map((id) => ({ id, identifiers: [] })));
}

/**
 * Exactly one match is used (if it still stands: {@link standing}). Several are never picked from
 * automatically, but for a merge the server says it made: when every other match is `replaced-by`
 * the one that stands, they are one record, and that one is used.
 */
function onlyOne(patients: Patient[], what: string, baseUrl: string): Resolution {
  if (patients.length === 1 && patients[0]) return standing(patients[0], baseUrl);
  if (patients.length === 0) return review(`No patient at this endpoint matches ${what}.`);
  const current = patients.filter((p) => whyNoLongerCurrent(p).length === 0);
  const only = current.length === 1 ? current[0] : undefined;
  if (only?.id && patients.every((p) => p === only || replacedBy(p).some((r) => survivorId(r, baseUrl) === only.id))) return resolved(only);
  return review(`${patients.length} patients at this endpoint match ${what}; choose one (never picked automatically).`, patients.map(candidateOf));
}

/**
 * A record found by id or identifier is the case's child only if it passes the exact demographic
 * match against the intake (`exactDemographicMatches`: exact birth date, family name, the first
 * given name whole): an MRN or id typed for another child — a sibling, a mix-up — must never link
 * another child's record to the case. One that does not stays in `needs_review` with it as the
 * candidate and what differs; the case manager's explicit choice (`chooseSourcePatient`) overrides.
 */
function confirmedByIntake(resolution: Resolution, found: readonly Patient[], intake: Intake | undefined, what: string): Resolution {
  if (intake === undefined || resolution.state !== 'resolved') return resolution;
  const patient = found.find((p) => p.id === resolution.remotePatientId);
  if (!patient) return resolution;
  const differences = demographicDifferences(intake, patient);
  if (differences.length === 0) return resolution;
  return review(
    `Patient/${patient.id ?? '?'}, found by ${what}, does not match the child of this case by the intake's name and exact birth date: ${differences.join('; ')}. ` +
      'Not used (never picked automatically); choose it for the source only if it is the child.',
    [candidateOf(patient)],
  );
}

/**
 * Finds the child at a care team's endpoint: by id, by identifier (every page of the search read,
 * within a bound), or by demographics (family name, given name, exact birth date; every page of the
 * search read, within a bound: {@link searchDemographicMatches}). Exactly one hit is used — by id or
 * identifier only when it matches the intake's child ({@link confirmedByIntake}); none or several, a
 * search too big to read to its end, or another child put the source in `needs_review` with the
 * candidates listed.
 * @param intake the case's intake; undefined for the case manager's explicit choice of a patient (not compared)
 * @param endpointOptions how a missing endpoint is answered (the plain 404, or one naming the body's `endpointId`): {@link requireEndpoint}
 */
async function resolvePatient(
  deps: SourceServiceDeps,
  endpointId: string,
  selector: PatientSelector,
  intake: Intake | undefined,
  endpointOptions: RequireEndpointOptions = {},
): Promise<Resolution> {
  // Only reads: an endpoint edited meanwhile asks again with its new client.
  return deps.clients.withCurrentClient(() => requireEndpoint(deps.db, endpointId, endpointOptions), deps.secrets, (client, endpoint) => findChild(client, selector, intake, endpoint.baseUrl));
}

async function findChild(client: FhirEndpointClient, selector: PatientSelector, intake: Intake | undefined, baseUrl: string): Promise<Resolution> {
  if ('id' in selector) {
    let patient: Patient;
    try {
      patient = await client.read<Patient>('Patient', selector.id);
    } catch (err) {
      if (isGoneError(err)) return review(`Patient/${selector.id} does not exist at this endpoint.`);
      throw err;
    }
    return confirmedByIntake(standing(patient, baseUrl), [patient], intake, 'its id');
  }
  if ('identifier' in selector) {
    // A server that ignores the parameter answers with every patient: only those with the identifier count, on every page.
    const search = await searchPatientsByIdentifier(client, selector.identifier);
    if (!search.complete) return review(`Not resolved: ${search.reason}; choose one (never picked automatically).`, search.hits.map(candidateOf));
    return confirmedByIntake(onlyOne(search.hits, 'the identifier', baseUrl), search.hits, intake, 'the identifier');
  }
  if (intake === undefined) throw new Error('a demographic match needs the intake');
  // Every page is read: another child with the same name and birth date may be on a later one.
  const search = await searchDemographicMatches(client, intake);
  if (!search.complete) return review(`Not resolved: ${search.reason}; choose one (never picked automatically).`, search.matches.map(candidateOf));
  return onlyOne(search.matches, "the child's name and exact birth date", baseUrl);
}

export function sourceView(s: SourceRow) {
  return {
    id: s.id,
    endpointId: s.endpointId,
    patient: s.selector,
    state: s.state,
    remotePatientId: s.remotePatientId,
    candidates: s.candidates,
    reviewReason: s.reviewReason,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
    removed: s.removed ? { at: s.removed.at.toISOString(), by: s.removed.by, reason: s.removed.reason } : null,
  };
}

export async function addSource(
  deps: SourceServiceDeps,
  caseId: string,
  body: { endpointId: string; patient: PatientSelector },
  actor: Principal,
) {
  const record = await findCase(deps.db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  if (['ineligible', 'cancelled', 'closed', 'delivered'].includes(record.status)) {
    throw conflict(`A ${record.status} case takes no new sources.`);
  }
  let resolution: Resolution;
  try {
    resolution = await resolvePatient(deps, body.endpointId, body.patient, record.intake as Intake, { bodyField: 'endpointId' });
  } catch (err) {
    if (err instanceof HttpProblem) throw err;
    // What the EHR (or its token endpoint) answered is said; anything else (the database, Redis) is
    // this service's own failure: a 500 whose text stays in the log, not in the answer.
    if (!(err instanceof FhirClientError)) throw err;
    throw new HttpProblem(502, 'Bad Gateway', `The endpoint could not be asked for the patient: ${err.message}.`);
  }
  const id = randomUUID();
  const inserted = await insertSource(deps.db, { id, caseId, endpointId: body.endpointId, selector: body.patient, ...resolution, createdBy: actor.sub });
  if (!inserted) throw conflict('This endpoint is already a source of the case.');
  logger.info('source added', { caseId, sourceId: id, endpointId: body.endpointId, state: resolution.state });
  return sourceView((await findSource(deps.db, caseId, id)) as SourceRow);
}

/**
 * The case manager picks the patient of a source: one in `needs_review`, or, when the first match
 * was wrong, another child than the one a resolved source points at (checked by reading it). The
 * records pulled for the previous patient stay in the raw store but are left out of the bundle from
 * the next assembly on (see `normalize.ts`); `patientChanged` tells the caller to assemble again.
 * A pull under way stops asking the source for the previous child (its other sources go on).
 * Written on the case timeline.
 */
export async function chooseSourcePatient(deps: SourceServiceDeps, caseId: string, sourceId: string, patientId: string, actor: Principal) {
  const source = await findSource(deps.db, caseId, sourceId);
  if (!source) throw notFound(`Source ${sourceId}`);
  if (source.state === 'removed') throw conflict('This source was removed from the case; add the endpoint again as a new source.');
  const previous = source.remotePatientId;
  const patientChanged = previous !== null && previous !== patientId;
  // The case manager's explicit choice: read and checked for standing, not compared with the intake (the override).
  const resolution = await resolvePatient(deps, source.endpointId, { id: patientId }, undefined);
  if (resolution.state !== 'resolved' || !resolution.remotePatientId) {
    throw new HttpProblem(422, 'Unprocessable Content', resolution.reviewReason ?? 'The patient could not be read.', [
      { field: 'patientId', pointer: '#/patientId', detail: resolution.reviewReason ?? 'not found' },
    ]);
  }
  await deps.db.transaction(async (tx) => {
    await resolveSource(tx, sourceId, resolution.remotePatientId ?? patientId);
    // The previous child's records must leave the bundle: the latest version is outdated until one is read after this.
    if (patientChanged) await markSourceChanged(tx, sourceId);
    // A pull under way for the previous child stops asking this source at once (its other sources go on).
    const stopped = patientChanged ? await stopSourceInRunningPulls(tx, sourceId, 'stopped: the source now points at another patient') : undefined;
    await insertCaseEvent(tx, {
      caseId,
      type: 'source_patient_chosen',
      actorSub: actor.sub,
      reason: patientChanged ? 'Another patient chosen at this source: records pulled for the previous one are left out of the bundle' : undefined,
      data: {
        sourceId,
        remotePatientId: resolution.remotePatientId,
        ...(patientChanged ? { previousRemotePatientId: previous, queriesStopped: stopped?.tasks ?? 0 } : {}),
      },
    });
  });
  return { ...sourceView((await findSource(deps.db, caseId, sourceId)) as SourceRow), patientChanged };
}

/**
 * Removes a source from the case (the wrong care team was added): no pull asks it again, and from
 * the next assembly on its records are left out of the bundle with the reason (they stay in the raw
 * store). The same endpoint may be added again as a new source. Written on the case timeline.
 * A pull under way stops asking the source at once; its other sources go on.
 * @returns the source, and whether it was removed now (false: it was removed already)
 */
export async function removeSource(deps: SourceServiceDeps, caseId: string, sourceId: string, reason: string | undefined, actor: Principal) {
  const source = await findSource(deps.db, caseId, sourceId);
  if (!source) throw notFound(`Source ${sourceId}`);
  const why = reason ?? 'Removed by the case manager';
  const removedNow = await deps.db.transaction(async (tx) => {
    if (!(await markSourceRemoved(tx, sourceId, actor.sub, why))) return false;
    // Its records must leave the bundle: the latest version is outdated until one is read after this.
    await markSourceChanged(tx, sourceId);
    // A pull under way stops asking this source at once (its other sources go on).
    const stopped = await stopSourceInRunningPulls(tx, sourceId, 'stopped: the source was removed from the case');
    await insertCaseEvent(tx, {
      caseId, type: 'source_removed', actorSub: actor.sub, reason: why, data: { sourceId, endpointId: source.endpointId, queriesStopped: stopped.tasks },
    });
    return true;
  });
  return { ...sourceView((await findSource(deps.db, caseId, sourceId)) as SourceRow), removedNow };
}

/** The case's sources, each with what its EHR said about its searches (`serverMessages`). */
export async function getSources(deps: SourceServiceDeps, caseId: string) {
  const [sources, messages] = await Promise.all([listSources(deps.db, caseId), serverMessagesBySource(deps.db, caseId)]);
  return sources.map((s) => ({ ...sourceView(s), serverMessages: messages.get(s.id) ?? [] }));
}
