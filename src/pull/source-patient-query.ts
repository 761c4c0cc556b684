import type { PlannedQuery } from './pull-plan';

/**
 * Task key of the query that reads the child's Patient at a source. The same key in every pull, so a
 * retry or a re-plan finds the same task identity (`planPull` is deterministic).
 */
export const SOURCE_PATIENT_QUERY_KEY = 'Patient';

/**
 * The child's Patient at a source, read again by EVERY pull, whatever its `types` and `since`: the
 * case bundle links the case Patient to it, and what the care team corrects there (a name, a new
 * identifier, a birth date, `active: false`, a `link` of type `replaced-by` after a merge,
 * https://hl7.org/fhir/R4/patient-definitions.html#Patient.link) must reach the raw store and the next
 * assembly. It is one cheap search (`_id`: at most one match, https://hl7.org/fhir/R4/search.html#id),
 * always asked in full: never `_lastUpdated` (a changed record would be found, but only a read in full
 * shows the record is still there and still the one the source points at).
 *
 * A task of the pull like any other query, not a read on the side: its page is stored exactly as
 * received (raw_pages, raw_resources keyed by version, so reading an unchanged Patient again stores
 * nothing twice), counted in the progress, retried and resumed with the pull's machinery, and judged
 * as the first pull's Patient search is — a search for the Patient, so the page scan counts every
 * other Patient in it (`addOtherPatients` with `patientSearch`, foreign-patient.ts) and stops the
 * query, failed, before storing a page about two or more other patients (a server answering the
 * child's id with other records after a merge). The assembly then sees the newest version
 * (normalize's version selection) and links to it.
 */
export function sourcePatientQuery(patientId: string): PlannedQuery {
  return { key: SOURCE_PATIENT_QUERY_KEY, resourceType: 'Patient', path: 'Patient', params: { _id: patientId } };
}
