/**
 * A query asked for the child's records must not bring another patient's into the raw store. A server
 * that does not support a search parameter may ignore it (lenient handling,
 * https://hl7.org/fhir/R4/search.html#errors) and answer `Observation?patient=123` with every
 * patient's Observations: storing them would copy other people's records into this case, and page
 * after page of a whole hospital. So every page is checked before it is stored: each match is judged
 * by `patient-scope.ts` (its `subject`/`patient`, read by the page scan without parsing the resource;
 * or a Patient that is not the child), and once a query's pages have been about
 * {@link FOREIGN_PATIENTS_TO_STOP} or more other patients, the query stops before that page is
 * stored, failed with the reason.
 *
 * One other patient is let through here: an EHR may file some of the child's records under a
 * duplicate record of her, linked from her Patient; the assembly judges those with the links known
 * (and leaves out another patient's records that got through).
 * @packageDocumentation
 */
import { FhirClientError, type ScannedSearchPage } from '../fhir';
import type { LogMessage } from '../log';
import { otherPatientAmong, otherPatientOf, type ChildAtServer } from '../normalize/patient-scope';
import type { PageEntries } from './page-resources';

/** Distinct other patients in a query's pages that stop it. */
export const FOREIGN_PATIENTS_TO_STOP = 2;

/**
 * The query answered with other patients' records: permanent (the server will answer the same again).
 * Its message goes to the task's `last_error`, which this case's users read, and to the logs: it says
 * how many other patients there were, never who (their `Patient/<id>` are someone else's PHI), and
 * what to do about it.
 */
export class ForeignPatientsError extends FhirClientError implements LogMessage {
  readonly retryable = false;
  /** How many distinct other patients the query's pages were about (their ids are not kept). */
  readonly otherPatients: number;
  constructor(patients: readonly string[]) {
    super(
      `the server answered this query with records of ${patients.length} other patients: ` +
        "it may not support searching by patient; nothing of it was stored (ask the EHR's administrators whether it supports this search by patient)",
    );
    this.otherPatients = patients.length;
  }

  /** A count in this service's words: logged whole (`LogMessage`, src/log.ts). */
  get logMessage(): string {
    return this.message;
  }
}

/**
 * Adds to `others` the other patients a page's matches are about (search.mode `match` or unset;
 * `include`d resources are not judged). Patient resources count only in a Patient search
 * (`patientSearch`): elsewhere (`$everything`) a Patient is there because the child's record refers
 * to it (a parent), not as a match; the assembly leaves it out.
 */
export function addOtherPatients(others: Set<string>, page: ScannedSearchPage, entries: PageEntries, child: ChildAtServer, patientSearch: boolean): void {
  const envelope = Array.isArray(page.envelope.entry) ? page.envelope.entry : [];
  for (const e of entries.entries) {
    const mode = envelope[e.index]?.search?.mode;
    if (mode !== undefined && mode !== 'match') continue;
    if (e.type === 'Patient' && !patientSearch) continue;
    const other = e.resource
      ? otherPatientOf({ resourceType: e.type, remoteId: e.id, resource: e.resource }, child)
      : otherPatientAmong(e.type, e.id, (e.subjectReferences ?? []).map((reference) => ({ reference })), child);
    if (other !== undefined) others.add(other);
  }
}
