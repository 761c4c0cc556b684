/**
 * MedicationRequest duplicates — rule `medicationrequest:rxnorm-authored`.
 *
 * Approach: the same prescription seen at two sources names the same RxNorm concept and
 * was authored the same day, with the same status and intent. The RxNorm code comes from
 * `medicationCodeableConcept` or, for `medicationReference`, from the referenced Medication
 * in the input. Block on (RxNorm code, authoredOn date, status, intent, doNotPerform); without RxNorm all
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
 * A dose unit is its UCUM code, else its text, compared in lower case when the code is made of
 * dose units whose lower case names no other dose unit ({@link CASELESS_UCUM_ATOMS}: UCUM `mL`
 * and the text "mL" or "ML" are one unit; `U` and `u`, `Mg` and `mg` stay apart).
 * `doNotPerform` (a modifier element: "do not give aspirin") is part of the key: a prohibition
 * never merges with an order of the same drug, not even one that leaves it unstated.
 * A request naming several RxNorm concepts (a clinical drug and its ingredient, say) is
 * described by that whole set (a second dimension of the cluster state): it merges only with
 * requests naming the same set or a single one of its concepts, never with one naming another
 * strength through a shared ingredient (amoxicillin 250 mg and 500 mg capsules both coded with
 * ingredient 723), so a survivor's medication never lists two products. (A coding carries no
 * RxNorm term type, so which code is the specific one cannot be told here: the set stands for it.)
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.status
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.intent
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.dosageInstruction
 * @see https://hl7.org/fhir/R4/dosage.html
 * @see https://hl7.org/fhir/R4/medicationrequest.html
 * @packageDocumentation
 */
import type { CodeableConcept, Coding, Dosage, Medication, MedicationRequest, Quantity, Range, Ratio } from 'fhir/r4';
import type { ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { stableStringify, type JsonValue } from './json';
import { codeKeys, codesIn, codingsOf, combineKeys, dateKeys, isElement, preferredCodeKeys, RXNORM, UCUM } from './keys';
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

/**
 * UCUM atoms (the parts of a code between `.` and `/`) whose lower case, the way a unit text is
 * compared, still names the same dose unit: an EHR's text "mL" (or "ML") is the UCUM `mL`. UCUM is
 * case-sensitive, so only these: `ML` is megalitre, `Mg` megagram, `U` (enzyme unit) is not `u`
 * (dalton); a code with any other atom keeps its case.
 * @see https://ucum.org/ucum (§ 2.1 case sensitivity)
 */
const CASELESS_UCUM_ATOMS: ReadonlySet<string> = new Set([
  'mg', 'g', 'kg', 'ug', 'ng', 'mL', 'L', 'l', 'dL', 'mmol', 'mol', 'meq', '[iU]', '[IU]', 'm2', 'h', 'min', 'd', 'wk',
]);

/** A quantity's unit: its UCUM code (lower case when {@link CASELESS_UCUM_ATOMS} allow), else the unit text in lower case. */
function unitMeaning(q: Quantity): string {
  if (q.system === UCUM && typeof q.code === 'string') {
    return q.code.split(/[./]/).every((atom) => CASELESS_UCUM_ATOMS.has(atom)) ? q.code.toLowerCase() : q.code;
  }
  return typeof q.unit === 'string' ? q.unit.trim().toLowerCase() : q.code ?? '';
}

/** A quantity by comparator, value and unit ({@link unitMeaning}). */
function quantityMeaning(q: Quantity | undefined): string {
  if (!isElement(q)) return '';
  return `${q.comparator ?? ''}${q.value ?? '?'} ${unitMeaning(q)}`;
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

/**
 * The RxNorm concepts a request names, as one state, when it names more than one (a clinical drug
 * and its ingredient): a shared ingredient does not make 250 mg and 500 mg capsules one order, and
 * a merge would union both strengths into the survivor's medication. A request naming one concept
 * (or none) states nothing here and may join a group whose set holds it.
 */
function rxnormState(codings: readonly Coding[]): string | undefined {
  const codes = codesIn(codings, RXNORM);
  return codes.length > 1 ? [...codes].sort().join(',') : undefined;
}

/**
 * The order's kind in the blocking key: status and intent, and `doNotPerform` (a modifier: a
 * prohibition is the opposite fact of the order it forbids; any stated value other than `false`
 * counts, so a malformed one never merges with a plain order).
 * @see https://hl7.org/fhir/R4/medicationrequest-definitions.html#MedicationRequest.doNotPerform
 */
function orderKind(m: MedicationRequest): string {
  const prohibition = m.doNotPerform !== undefined && m.doNotPerform !== false;
  return `${m.status}/${m.intent}${prohibition ? '/do-not-perform' : ''}`;
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
  approach: 'same RxNorm concept (inline or via the referenced Medication; never two different sets of several) + same authored date + same status, intent and doNotPerform + no other dosage',
  blocking(resources, context) {
    const medications = new Map<string, Medication>();
    for (const r of context.ofType('Medication')) if (r.resource.resourceType === 'Medication') medications.set(r.fullUrl, r.resource);
    const codings = resources.map((r) => medicationCodings(r.resource as MedicationRequest, medications));
    const keys = resources.map((r, i) => {
      const m = r.resource as MedicationRequest;
      if (m.status === 'entered-in-error') return [];
      return combineKeys(preferredCodeKeys(codings[i] ?? [], RXNORM), dateKeys(m.authoredOn), [orderKind(m)]);
    });
    const states: ClusterState[] = resources.map((r, i) => [dosageMeaning(r.resource as MedicationRequest), rxnormState(codings[i] ?? [])]);
    return { keys: (i) => keys[i] ?? [], state: (i) => states[i] };
  },
};

/** De-duplicates MedicationRequests only. */
export const dedupeMedicationRequests = dedupeWith(medicationRequestRule);
