/**
 * Plain-text forms of FHIR datatypes shared by the section lines of the summary Composition: codes,
 * quantities, ranges, periods. A line reads what a resource has and never assumes an element R4
 * requires is there: one malformed record must not stop the assembly. Plain text: the caller escapes.
 * @see https://hl7.org/fhir/R4/datatypes.html
 * @packageDocumentation
 */
import type { CodeableConcept, Coding, FhirResource, Period, Quantity, Range } from 'fhir/r4';
import { codingsOf, CVX, LOINC, RXNORM, SNOMED, UCUM } from '../dedupe/keys';
import { readableDateTime } from '../readable-date';

/** Resolves a reference to a resource of the bundle by its fullUrl (a Map of them, or one that parses on demand). */
export interface ResourceLookup {
  get(url: string): FhirResource | undefined;
}

/**
 * The items of a list element; none when it is absent or, malformed, not a list.
 * @see https://hl7.org/fhir/R4/conformance-rules.html#cardinality
 */
export function listOf<T>(value: readonly T[] | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}

/** An element that is an object (a malformed record may hold a string or a list where R4 wants one). */
export function isObject<T extends object>(value: T | undefined | null): value is T {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The codes of one or more CodeableConcepts (none when absent or malformed; a coding without a code
 * gives ''). A loop rather than `flatMap`: it runs for every resource of the Composition's sections,
 * and the callbacks and arrays of the functional form cost ~40 ms per 50,000 resources.
 */
export function codesOf(ccs: readonly CodeableConcept[] | CodeableConcept | undefined): string[] {
  const out: string[] = [];
  if (Array.isArray(ccs)) for (const cc of ccs as readonly CodeableConcept[]) addCodes(cc, out);
  else if (ccs) addCodes(ccs as CodeableConcept, out);
  return out;
}

function addCodes(cc: CodeableConcept, out: string[]): void {
  for (const c of codingsOf(cc)) out.push(c.code ?? '');
}

/** Human text of a Coding: its display, else its code (none when absent or malformed). */
export function codingText(c: Coding | undefined): string | undefined {
  return isObject(c) ? c.display ?? c.code : undefined;
}

/** A CodeableConcept's text, else the first coding's display; without either, its codings (to go on from). */
function textOrDisplay(cc: CodeableConcept): string | Coding[] {
  if (cc.text) return cc.text;
  const codings = codingsOf(cc);
  return codings.find((x) => x.display)?.display ?? codings;
}

/** Human text of a CodeableConcept: its text, else the first coding's display, else the first coding's code. */
export function ccText(cc: CodeableConcept | undefined): string | undefined {
  if (!isObject(cc)) return undefined;
  const t = textOrDisplay(cc);
  return Array.isArray(t) ? codingText(t[0]) : t;
}

/** Short names of the code systems a result's code is commonly from. */
const SYSTEM_NAMES: ReadonlyMap<string, string> = new Map([
  [LOINC, 'LOINC'],
  [SNOMED, 'SNOMED CT'],
  [RXNORM, 'RxNorm'],
  [CVX, 'CVX'],
  ['http://hl7.org/fhir/sid/icd-10-cm', 'ICD-10-CM'],
  ['http://hl7.org/fhir/sid/icd-10', 'ICD-10'],
  ['http://www.ama-assn.org/go/cpt', 'CPT'],
  [UCUM, 'UCUM'],
]);

/**
 * The name of what a CodeableConcept codes: its text, else a coding's display; when it has only
 * codes, the first one with its system's short name ("LOINC 75773-2"), so that a bare code does not
 * read as a name. None when absent or malformed.
 */
export function conceptName(cc: CodeableConcept | undefined): string | undefined {
  if (!isObject(cc)) return undefined;
  const t = textOrDisplay(cc);
  if (!Array.isArray(t)) return t;
  const first = t.find((x) => x.code);
  if (first?.code === undefined) return undefined;
  const system = first.system === undefined ? undefined : SYSTEM_NAMES.get(first.system) ?? first.system;
  return system === undefined ? `code ${first.code}` : `${system} ${first.code}`;
}

/** A quantity's unit as shown: its human unit, else its code. */
export const unitOf = (q: Quantity): string | undefined => q.unit ?? q.code;

/** `<5 mmol/L`, `18 mo`; none without a value. */
export function quantityText(q: Quantity | undefined): string | undefined {
  if (!isObject(q) || q.value === undefined) return undefined;
  const unit = unitOf(q);
  return `${q.comparator ?? ''}${q.value}${unit ? ` ${unit}` : ''}`;
}

/** A quantity's value without its unit (the unit said once for a range). */
const bare = (q: Quantity): string => `${q.comparator ?? ''}${q.value ?? ''}`;

/**
 * A Range: `3.5–5.0 mmol/L` (the unit once when both ends share it), `≥3.5 mmol/L` with only a low
 * end, `≤5.0 mmol/L` with only a high one; none when neither end has a value.
 */
export function rangeText(r: Range | undefined): string | undefined {
  if (!isObject(r)) return undefined;
  const low = isObject(r.low) && r.low.value !== undefined ? r.low : undefined;
  const high = isObject(r.high) && r.high.value !== undefined ? r.high : undefined;
  if (low && high) {
    const lu = unitOf(low);
    const hu = unitOf(high);
    return lu === hu ? `${bare(low)}–${bare(high)}${hu ? ` ${hu}` : ''}` : `${quantityText(low) ?? ''}–${quantityText(high) ?? ''}`;
  }
  if (low) return `≥${quantityText(low) ?? ''}`;
  if (high) return `≤${quantityText(high) ?? ''}`;
  return undefined;
}

/** A Period: `2025-01-02 to 2025-01-09`, `from 2025-01-02`, `until 2025-01-09`; none when empty. */
export function periodText(p: Period | undefined): string | undefined {
  if (!isObject(p)) return undefined;
  const start = readableDateTime(p.start);
  const end = readableDateTime(p.end);
  if (start && end) return `${start} to ${end}`;
  if (start) return `from ${start}`;
  return end ? `until ${end}` : undefined;
}

/** The parts of a line that say something, joined (`' — '` between the parts of a line). */
export function joinParts(parts: readonly (string | undefined)[], separator = ' — '): string {
  let out = '';
  for (const p of parts) {
    if (p === undefined || p === '') continue;
    out = out === '' ? p : `${out}${separator}${p}`;
  }
  return out;
}
