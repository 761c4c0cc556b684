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
 * authoredOn or `entered-in-error`: never merged. The survivor keeps its own medication[x].
 * A different dose or timing is a different order (5 mg every 6 hours is not 2.5 mg as
 * needed): two requests whose dosage instructions differ in meaning ({@link dosageMeaning})
 * are not merged, not even through a request without one (the meaning is the cluster state),
 * so the survivor's dosage never stands for another source's order. What counts, per Dosage:
 * its sequence, dose and rate (value, comparator and unit: the UCUM code, else the unit text),
 * timing (`event`, the whole `repeat`, `code`), as-needed (boolean or reason), route,
 * maxDosePerPeriod, and — only when it states neither dose nor timing — its text (collapsed
 * whitespace, any case): beside structured elements the text is their rendering, worded
 * differently by each EHR. A request with no dosage states none: merged, it takes the other's.
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.status
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.intent
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.dosageInstruction
 * @see https://hl7.org/fhir/R4/dosage.html
 * @see https://hl7.org/fhir/R4/medicationrequest.html
 * @packageDocumentation
 */
import type { CodeableConcept, Coding, Dosage, Medication, MedicationRequest, Quantity, Range, Ratio } from 'fhir/r4';
import { dedupeWith } from './engine';
import { stableStringify, type JsonValue } from './json';
import { codeKeys, codingsOf, combineKeys, dateKeys, isElement, preferredCodeKeys, RXNORM, UCUM } from './keys';
import type { DedupeRule } from './rule';

/** The elements of a 0..* field (none when absent or not a list). */
function listOf<T>(value: readonly T[] | undefined): T[] {
  return Array.isArray(value) ? value.filter((x): x is T => isElement(x)) : [];
}

/** A concept by its sorted `system|code` codings, else by its text (trimmed, lower case). */
function conceptMeaning(cc: CodeableConcept | undefined): string | undefined {
  const keys = [...new Set(codeKeys(codingsOf(cc)))].sort();
  if (keys.length > 0) return keys.join(',');
  return isElement(cc) && typeof cc.text === 'string' && cc.text.trim() !== '' ? `text:${cc.text.trim().toLowerCase()}` : undefined;
}

/** A quantity by comparator, value and unit (its UCUM code, else the unit text). */
function quantityMeaning(q: Quantity | undefined): string {
  if (!isElement(q)) return '';
  const unit = q.system === UCUM && typeof q.code === 'string' ? q.code : typeof q.unit === 'string' ? q.unit.trim().toLowerCase() : q.code ?? '';
  return `${q.comparator ?? ''}${q.value ?? '?'} ${unit}`;
}

function rangeMeaning(r: Range | undefined): string | undefined {
  return isElement(r) ? `${quantityMeaning(r.low)}..${quantityMeaning(r.high)}` : undefined;
}

function ratioMeaning(r: Ratio | undefined): string | undefined {
  return isElement(r) ? `${quantityMeaning(r.numerator)}/${quantityMeaning(r.denominator)}` : undefined;
}

/**
 * What one Dosage instructs, as a canonical string (see the module comment for what counts);
 * empty when it states nothing.
 * @see https://hl7.org/fhir/R4/dosage.html
 */
function oneDosageMeaning(d: Dosage): string {
  const doses: string[] = [];
  for (const x of listOf(d.doseAndRate)) {
    const dose = isElement(x.doseQuantity) ? quantityMeaning(x.doseQuantity) : rangeMeaning(x.doseRange);
    const rate = isElement(x.rateQuantity) ? quantityMeaning(x.rateQuantity) : rangeMeaning(x.rateRange) ?? ratioMeaning(x.rateRatio);
    if (dose !== undefined || rate !== undefined) doses.push(stableStringify({ dose, rate }));
  }
  doses.sort();
  const t = isElement(d.timing) ? d.timing : undefined;
  const timing = t && (t.event !== undefined || t.repeat !== undefined || t.code !== undefined)
    ? { event: Array.isArray(t.event) ? [...t.event].sort() : undefined, repeat: t.repeat as JsonValue | undefined, code: conceptMeaning(t.code) }
    : undefined;
  const structured = doses.length > 0 || timing !== undefined;
  const text = !structured && typeof d.text === 'string' ? d.text.trim().replace(/\s+/g, ' ').toLowerCase() : undefined;
  const asNeeded = isElement(d.asNeededCodeableConcept) ? `prn:${conceptMeaning(d.asNeededCodeableConcept) ?? ''}` : d.asNeededBoolean === true ? 'prn' : undefined;
  const meaning = {
    sequence: d.sequence, doses: doses.length > 0 ? doses : undefined, timing, asNeeded, route: conceptMeaning(d.route),
    maxDosePerPeriod: ratioMeaning(d.maxDosePerPeriod), text: text === '' ? undefined : text,
  };
  return Object.values(meaning).every((v) => v === undefined) ? '' : stableStringify(meaning);
}

/**
 * What a request's dosage instructions mean together (each Dosage's meaning, sorted: its
 * sequence is part of it); undefined when it has none that states anything.
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.dosageInstruction
 */
export function dosageMeaning(m: MedicationRequest): string | undefined {
  const meanings = listOf(m.dosageInstruction).map(oneDosageMeaning).filter((x) => x !== '').sort();
  return meanings.length > 0 ? meanings.join('\n') : undefined;
}

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
  approach: 'same RxNorm concept (inline or via the referenced Medication) + same authored date + same status and intent + no other dosage',
  blocking(resources, context) {
    const medications = new Map<string, Medication>();
    for (const r of context.ofType('Medication')) if (r.resource.resourceType === 'Medication') medications.set(r.fullUrl, r.resource);
    const keys = resources.map((r) => {
      const m = r.resource as MedicationRequest;
      if (m.status === 'entered-in-error') return [];
      return combineKeys(preferredCodeKeys(medicationCodings(m, medications), RXNORM), dateKeys(m.authoredOn), [`${m.status}/${m.intent}`]);
    });
    const dosages = resources.map((r) => dosageMeaning(r.resource as MedicationRequest));
    return { keys: (i) => keys[i] ?? [], state: (i) => dosages[i] };
  },
};

/** De-duplicates MedicationRequests only. */
export const dedupeMedicationRequests = dedupeWith(medicationRequestRule);
