/**
 * Whether a Patient record read at a care team's EHR still stands for its person there, and whether it
 * is the case's child: one rule for delivery (a recipient's Patient, `delivery-runner.ts`) and for the
 * record pull (a source's Patient read again by every pull, `src/pull/source-patient-standing.ts`).
 *
 * `Patient.link.type` (https://hl7.org/fhir/R4/valueset-link-type.html,
 * https://hl7.org/fhir/R4/patient-definitions.html#Patient.link):
 * - `replaced-by`: the record "must no longer be used"; the link points at the one to use instead
 *   (a merge's survivor) — the record no longer stands;
 * - `replaces`: the record IS the current one, pointing back at a record merged into it — it stands;
 * - `refer`, `seealso`: the record is "in use and valid", another record holds more (or overlapping)
 *   data about the same person — it stands (the child's records filed under a duplicate linked from
 *   her Patient are judged by the assembly, `normalize/patient-scope.ts`).
 *
 * `Patient.active: false` (https://hl7.org/fhir/R4/patient-definitions.html#Patient.active): the record
 * is no longer in use (a merged record is usually inactive too, but a server may say only one of the two).
 * @packageDocumentation
 */
import type { Patient } from 'fhir/r4';

/** The targets of the record's `link`s of type `replaced-by`: the records to use instead (reference, else display). */
export function replacedBy(patient: Patient): string[] {
  return (patient.link ?? []).filter((l) => l.type === 'replaced-by').map((l) => l.other.reference ?? l.other.display ?? 'another record');
}

/**
 * Why the record no longer stands for its person at its server (empty: it does): replaced by another
 * record (`link` of type `replaced-by`), or inactive (`active: false`). Says nothing about WHO it is.
 */
export function whyNoLongerCurrent(patient: Patient): string[] {
  const reasons: string[] = [];
  const successors = replacedBy(patient);
  if (successors.length > 0) reasons.push(`it was replaced by ${successors.join(', ')} there (link replaced-by): choose that record instead`);
  if (patient.active === false) reasons.push('it is inactive there (active: false)');
  return reasons;
}

/**
 * Why a Patient read at the recipient must not receive the case's report (empty: nothing against
 * it): {@link whyNoLongerCurrent}, or a birth date other than the child's (compared exactly, as
 * demographic matching does; a record without one cannot be confirmed).
 */
export function whyNotTheChild(patient: Patient, childBirthDate: string): string[] {
  const reasons = whyNoLongerCurrent(patient);
  if (!patient.birthDate) reasons.push(`it has no birth date there, so it cannot be confirmed as the child born ${childBirthDate}`);
  else if (patient.birthDate !== childBirthDate) reasons.push(`it is of a child born ${patient.birthDate}, the case's child was born ${childBirthDate}`);
  return reasons;
}
