/**
 * MedicationRequest duplicates — rule `medicationrequest:rxnorm-authored`.
 *
 * Approach: the same prescription seen at two sources names the same RxNorm concept and
 * was authored the same day, with the same status and intent. The RxNorm code comes from
 * `medicationCodeableConcept` or, for `medicationReference`, from the referenced Medication
 * in the input. Block on (RxNorm code, authoredOn date, status, intent); without RxNorm all
 * codings are used. Status and intent are modifier elements: an `active` and a `stopped`
 * order of the same drug, or a `plan` and the `order` that carries it out, are different
 * facts, and merging would hide one (the survivor keeps its own status). Two orders of one
 * source are never merged (de-duplication is across sources, see `cluster.ts`). No
 * authoredOn or `entered-in-error`: never merged. The survivor keeps its own medication[x]
 * and dosage.
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.status
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.intent
 * @see https://hl7.org/fhir/R4/medicationrequest.html
 * @packageDocumentation
 */
import type { Coding, Medication, MedicationRequest } from 'fhir/r4';
import { dedupeWith } from './engine';
import { codingsOf, combineKeys, dateKeys, preferredCodeKeys, RXNORM } from './keys';
import type { DedupeRule } from './rule';

function medicationCodings(m: MedicationRequest, medications: ReadonlyMap<string, Medication>): Coding[] {
  if (m.medicationCodeableConcept) return codingsOf(m.medicationCodeableConcept);
  const ref = m.medicationReference?.reference;
  const target = ref ? medications.get(ref) : undefined;
  return target ? codingsOf(target.code) : [];
}

/** The rule. */
export const medicationRequestRule: DedupeRule = {
  name: 'medicationrequest:rxnorm-authored',
  resourceType: 'MedicationRequest',
  approach: 'same RxNorm concept (inline or via the referenced Medication) + same authored date + same status and intent',
  blocking(resources, context) {
    const medications = new Map<string, Medication>();
    for (const r of context.ofType('Medication')) if (r.resource.resourceType === 'Medication') medications.set(r.fullUrl, r.resource);
    const keys = resources.map((r) => {
      const m = r.resource as MedicationRequest;
      if (m.status === 'entered-in-error') return [];
      return combineKeys(preferredCodeKeys(medicationCodings(m, medications), RXNORM), dateKeys(m.authoredOn), [`${m.status}/${m.intent}`]);
    });
    return { keys: (i) => keys[i] ?? [] };
  },
};

/** De-duplicates MedicationRequests only. */
export const dedupeMedicationRequests = dedupeWith(medicationRequestRule);
