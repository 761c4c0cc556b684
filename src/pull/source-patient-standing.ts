/**
 * What a pull makes of the child's Patient when it reads it again at a source (every pull does:
 * `source-patient-query.ts`): a record the care team merged into another (`link` of type
 * `replaced-by`) or made inactive (`active: false`) no longer stands for the child there
 * (`whyNoLongerCurrent`, the rule delivery applies to a recipient's Patient, `fhir/patient-standing.ts`;
 * https://hl7.org/fhir/R4/patient-definitions.html#Patient.link). The source then needs the case
 * manager: records filed under the surviving record are never pulled by asking for this one.
 *
 * The child's birth date is NOT judged here (delivery does judge it): the care team may correct it, and
 * that correction is meant to reach the bundle (see the README's "Record pulls").
 * @packageDocumentation
 */
import type { Patient } from 'fhir/r4';
import { FhirClientError } from '../fhir';
import type { LogMessage } from '../log';
import { replacedBy, whyNoLongerCurrent } from '../fhir/patient-standing';
import { isEverythingStream } from './pull-plan';
import { SOURCE_PATIENT_QUERY_KEY } from './source-patient-query';
import type { PatientCandidate } from './source-repository';

/** Why a source's child Patient no longer stands, in words a case manager can act on, and what to choose from. */
export interface SourcePatientReview {
  /** The source's review reason, and the failed query's `lastError`. */
  readonly reason: string;
  /** The same for the log: nothing the record said (no id at the EHR, display or date: `LogMessage`, src/log.ts). */
  readonly logReason: string;
  /** The records named by `replaced-by` links at the same server (the merge's survivor), as candidates. */
  readonly candidates: PatientCandidate[];
  /** Every `replaced-by` target as the record gave it (a reference, else its display). */
  readonly replacedBy: string[];
  readonly inactive: boolean;
}

/**
 * The id at the source's server of a `replaced-by` target: `Patient/<id>` (its `_history` dropped) or
 * the same written absolutely under the endpoint's base URL; undefined for a record elsewhere, or a display.
 */
export function survivorId(reference: string, baseUrl: string): string | undefined {
  const base = baseUrl.replace(/\/+$/, '');
  const relative = reference.startsWith(`${base}/`) ? reference.slice(base.length + 1) : reference;
  return /^Patient\/([A-Za-z0-9\-.]{1,64})(\/_history\/[^/]+)?$/.exec(relative)?.[1];
}

/** The ids at `baseUrl`'s server of the records a Patient was merged into (its `replaced-by` links), each once. */
export function survivorIds(patient: Patient, baseUrl: string): string[] {
  return [...new Set(replacedBy(patient).map((t) => survivorId(t, baseUrl)).filter((id): id is string => id !== undefined))];
}

/**
 * Whether the child's Patient read at a source no longer stands for her there (undefined: it does —
 * a new name, identifier or address is a correction, not a reason for review; so are `replaces`,
 * `refer` and `seealso` links, which leave the record in use).
 * @param caseId,sourceId where the case manager chooses the patient again (named in the reason)
 */
export function sourcePatientReview(patient: Patient, at: { caseId: string; sourceId: string; baseUrl: string }): SourcePatientReview | undefined {
  const reasons = whyNoLongerCurrent(patient);
  if (reasons.length === 0) return undefined;
  const targets = replacedBy(patient);
  const ids = survivorIds(patient, at.baseUrl);
  const when = patient.meta?.lastUpdated ? ` on ${patient.meta.lastUpdated}` : '';
  const what = targets.length > 0 ? `was merged into ${targets.slice(0, 3).join(', ')}` : 'was made inactive';
  const choose = ids.length > 0 ? `, e.g. ${ids.slice(0, 3).map((id) => `Patient/${id}`).join(' or ')}` : '';
  const reason =
    `The care team's record for this child (Patient/${patient.id ?? '?'}) ${what}${when}: ${reasons.join('; ')}. ` +
    `Choose the child's patient there again (POST /api/cases/${at.caseId}/sources/${at.sourceId}/patient${choose}): ` +
    'until then this source is not pulled; what was pulled from it stays in the raw store.';
  const logReason =
    `The care team's record for this child ${targets.length > 0 ? 'was merged into another' : 'was made inactive'}: choose the child's patient there again ` +
    `(POST /api/cases/${at.caseId}/sources/${at.sourceId}/patient); until then this source is not pulled.`;
  return { reason, logReason, candidates: ids.map((id) => ({ id, identifiers: [] })), replacedBy: targets, inactive: patient.active === false };
}

/**
 * Thrown by the query whose page showed the child's Patient no longer standing: permanent (asking again
 * reads the same record), after the source was put in review. Its message is the review reason; its
 * `logMessage` the same without the record's ids, displays and dates (`SourcePatientReview.logReason`).
 */
export class SourcePatientReviewError extends FhirClientError implements LogMessage {
  readonly retryable = false;
  constructor(
    reason: string,
    readonly logMessage: string,
  ) {
    super(reason);
  }
}

/**
 * Whether the task reads the child's Patient in full: the `Patient` query, or an `$everything` stream
 * asking for Patient (no `_type`, or one naming it). Such a task is judged on its stored pages when its
 * run committed none holding the Patient (a run resumed after its last page was committed).
 */
export function readsSourcePatient(task: { readonly queryKey: string; readonly requestPath: string; readonly requestParams: Readonly<Record<string, string>> }): boolean {
  if (task.queryKey === SOURCE_PATIENT_QUERY_KEY) return true;
  if (!isEverythingStream(task)) return false;
  const types = task.requestParams._type;
  return types === undefined || types.split(',').includes('Patient');
}
