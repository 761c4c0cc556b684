/**
 * The case Patient: one subject for the whole case bundle.
 *
 * Built from the intake by `buildPatient` of `src/cases/fhir-face.ts` (same id as the case's FHIR
 * face: {@link caseFhirIds}), with a `link` of type `seealso` to the child's Patient at each source.
 * Those source Patients stay in the bundle as resources of their own, never merged into this one:
 * they carry each care team's identifiers (MRNs) and demographics as the team recorded them, which
 * may differ from the intake. Every reference to the child at a source points at the case Patient.
 * @see https://hl7.org/fhir/R4/patient.html#links
 * @see https://hl7.org/fhir/R4/valueset-link-type.html (`seealso`)
 * @packageDocumentation
 */
import type { Patient, PatientLink } from 'fhir/r4';
import { buildPatient } from '../cases/fhir-face';
import { caseFhirIds } from '../cases/fhir-ids';
import type { Intake } from '../cases/intake-schema';
import { applyOrigin } from './origin';
import { rawKey, type NormalizedResource, type Origin } from './types';

/** `sourceId` of the case Patient (it comes from the intake, not from a source). */
export const CASE_SOURCE_ID = 'case';

/** `meta.source` of the case Patient: the program's intake. */
export const CASE_INTAKE_SOURCE = 'https://second-opinion.example.org/fhir/intake';

/**
 * Origin of the case Patient: the demographics are what the family (or the case manager for them)
 * entered at intake.
 */
export const CASE_PATIENT_ORIGIN: Origin = 'family-upload';

/** The child's Patient at one source, as kept in the bundle. */
export interface SourcePatientLink {
  /** `urn:uuid:` fullUrl of the source Patient in the bundle. */
  readonly fullUrl: string;
  /** The source's name (becomes the link's display). */
  readonly sourceName: string;
}

/** The case Patient's fullUrl (`urn:uuid:` of its case-derived id). */
export function casePatientFullUrl(caseId: string): string {
  return `urn:uuid:${caseFhirIds(caseId).Patient}`;
}

/**
 * Builds the case Patient from the intake, linked (`seealso`) to each source Patient, links sorted
 * by fullUrl.
 */
export function buildCasePatient(caseId: string, intake: Intake, links: readonly SourcePatientLink[]): NormalizedResource & { resource: Patient } {
  // buildPatient reads only caseId and intake; eligibility and creation time belong to other resources of the face.
  const patient = buildPatient({ caseId, intake, eligible: true, createdAt: new Date(0) }, caseFhirIds(caseId));
  const link: PatientLink[] = [...links]
    .sort((a, b) => (a.fullUrl < b.fullUrl ? -1 : a.fullUrl > b.fullUrl ? 1 : 0))
    .map((l) => ({ other: { reference: l.fullUrl, type: 'Patient', display: `Patient record at ${l.sourceName}` }, type: 'seealso' }));
  const { resourceType, id, ...rest } = patient;
  const resource: Patient = { resourceType, id, meta: {}, ...rest, ...(link.length > 0 ? { link } : {}) };
  applyOrigin(resource as unknown as Record<string, unknown>, CASE_INTAKE_SOURCE, CASE_PATIENT_ORIGIN);
  return {
    key: rawKey({ sourceId: CASE_SOURCE_ID, resourceType: 'Patient', remoteId: caseId }),
    fullUrl: casePatientFullUrl(caseId),
    resource,
    sourceId: CASE_SOURCE_ID,
    origin: CASE_PATIENT_ORIGIN,
  };
}
