/**
 * The line of an Observation (a result, a vital sign) and of a DiagnosticReport: the value in every
 * R4 form, components after the main value, the reference range (the one for the child's age when
 * ranges differ by age), the source's interpretation — or, when it gave none, whether the value is
 * outside the reference range, marked as computed here — and the status when not final. A report's
 * line names its results without repeating their values (each has its own line, with its flag).
 * @see https://hl7.org/fhir/R4/observation.html#value
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.referenceRange
 * @packageDocumentation
 */
import type { DiagnosticReport, Observation, ObservationComponent, ObservationReferenceRange, Quantity, Ratio } from 'fhir/r4';
import { readableDateTime } from '../readable-date';
import { ccText, codesOf, conceptName, isObject, listOf, periodText, quantityText, rangeText, unitOf, type ResourceLookup } from './concept';

type ValueHolder = Pick<Observation,
  | 'valueQuantity' | 'valueCodeableConcept' | 'valueString' | 'valueBoolean' | 'valueInteger' | 'valueRange' | 'valueRatio'
  | 'valueSampledData' | 'valueTime' | 'valueDateTime' | 'valuePeriod' | 'dataAbsentReason'>;

/** A Ratio: `1:640` (a titer), `5 mg / 1 mL` when either term has a unit. */
function ratioText(r: Ratio | undefined): string | undefined {
  if (!isObject(r)) return undefined;
  const n = isObject(r.numerator) ? r.numerator : undefined;
  const d = isObject(r.denominator) ? r.denominator : undefined;
  const nt = quantityText(n);
  const dt = quantityText(d);
  if (nt === undefined || dt === undefined) return nt ?? (dt === undefined ? undefined : `?:${dt}`);
  return (n && unitOf(n)) || (d && unitOf(d)) ? `${nt} / ${dt}` : `${nt}:${dt}`;
}

/** An Observation's (or component's) value, whatever its type; a missing value with its reason. */
function observationValue(o: ValueHolder): string | undefined {
  return quantityText(o.valueQuantity) ?? ccText(o.valueCodeableConcept) ?? o.valueString
    ?? (o.valueBoolean !== undefined ? String(o.valueBoolean) : undefined)
    ?? (o.valueInteger !== undefined ? String(o.valueInteger) : undefined)
    ?? rangeText(o.valueRange) ?? ratioText(o.valueRatio)
    ?? readableDateTime(o.valueDateTime) ?? o.valueTime ?? periodText(o.valuePeriod)
    ?? (isObject(o.valueSampledData) ? 'sampled data' : undefined)
    ?? (o.dataAbsentReason ? `no value (${ccText(o.dataAbsentReason) ?? 'absent'})` : undefined);
}

/** The interpretations the source gave, joined; none when it gave none. */
function interpretationText(o: Pick<Observation, 'interpretation'>): string | undefined {
  let out = '';
  for (const i of listOf(o.interpretation)) {
    const t = ccText(i);
    if (t) out = out === '' ? t : `${out}, ${t}`;
  }
  return out || undefined;
}

/**
 * The components of an Observation, each as its code, value and interpretation (a component without
 * the code R4 requires shows its value alone); none when there are no components.
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.component.code
 */
function componentText(components: Observation['component']): string | undefined {
  const list = listOf(components).filter((c): c is ObservationComponent => isObject(c));
  if (list.length === 0) return undefined;
  return list.map((c) => {
    const flag = interpretationText(c);
    return `${conceptName(c.code) ?? ''} ${observationValue(c) ?? ''}${flag ? ` (${flag})` : ''}`.trim();
  }).join(', ');
}

// ---- reference ranges ---------------------------------------------------------------

const MS_PER_DAY = 86_400_000;

/** The UTC midnight of a FHIR date or dateTime's date part, as its year, month and day; none when not a date. */
function dayOf(value: string | undefined): { y: number; m: number; d: number; ms: number } | undefined {
  if (typeof value !== 'string' || value.length < 10) return undefined;
  const y = Number(value.slice(0, 4));
  const m = Number(value.slice(5, 7));
  const d = Number(value.slice(8, 10));
  const ms = Date.UTC(y, m - 1, d);
  return Number.isNaN(ms) ? undefined : { y, m, d, ms };
}

/** The child's age on `when` in a UCUM unit of time (whole units), for matching an age-specific range. */
type AgeIn = (unit: string | undefined) => number | undefined;

/** Age in whole years (`a`), months (`mo`), weeks (`wk`) or days (`d`) between a birth date and a date; none otherwise. */
function ageCalculator(birthDate: string | undefined, when: string | undefined): AgeIn | undefined {
  const born = dayOf(birthDate);
  const at = dayOf(when);
  if (!born || !at || at.ms < born.ms) return undefined;
  const months = (at.y - born.y) * 12 + (at.m - born.m) - (at.d < born.d ? 1 : 0);
  const days = Math.floor((at.ms - born.ms) / MS_PER_DAY);
  return (unit) => {
    switch (unit) {
      case 'a': case 'yr': case 'year': case 'years': return Math.floor(months / 12);
      case 'mo': case 'month': case 'months': return months;
      case 'wk': case 'week': case 'weeks': return Math.floor(days / 7);
      case 'd': case 'day': case 'days': return days;
      default: return undefined;
    }
  };
}

/** Whether a range's age applies: true without an age; undefined when the age cannot be told. */
function ageApplies(range: ObservationReferenceRange, ageIn: AgeIn | undefined): boolean | undefined {
  if (!isObject(range.age)) return true;
  if (!ageIn) return undefined;
  const { low, high } = range.age;
  for (const [bound, below] of [[low, true], [high, false]] as const) {
    if (!isObject(bound) || bound.value === undefined) continue;
    const age = ageIn(bound.code ?? bound.unit);
    if (age === undefined) return undefined;
    if (below ? age < bound.value : age > bound.value) return false;
  }
  return true;
}

/**
 * A reference range that applies, with what its line and the computed flag both ask of it: whether its
 * type is normal (or absent), and whether its age is known to apply (true without an age).
 */
interface ApplicableRange {
  readonly range: ObservationReferenceRange;
  readonly normal: boolean;
  readonly ageKnown: boolean;
}

const NO_RANGES: readonly ApplicableRange[] = [];

/** One range as text: `3.5–5.0 mmol/L`, else its text; qualified by its type (unless normal), population and age. */
function oneRangeText({ range, normal }: ApplicableRange): string | undefined {
  const values = rangeText(range) ?? range.text;
  if (values === undefined) return undefined;
  // Most ranges are plain: nothing more allocated for them.
  if (range.type === undefined && range.appliesTo === undefined && range.age === undefined) return values;
  const age = rangeText(range.age);
  const qualifiers = [
    normal ? undefined : ccText(range.type),
    ...listOf(range.appliesTo).map((a) => ccText(a)),
    age ? `age ${age}` : undefined,
  ].filter((q): q is string => q !== undefined);
  return qualifiers.length > 0 ? `${values} (${qualifiers.join(', ')})` : values;
}

/** The reference ranges that apply: those for the child's age when that is known, else all. */
function applicableRanges(given: readonly ObservationReferenceRange[], ageIn: AgeIn | undefined): ApplicableRange[] {
  const out: ApplicableRange[] = [];
  for (const range of given) {
    if (!isObject(range)) continue;
    const applies = ageApplies(range, ageIn);
    if (applies === false) continue;
    const typeCodes = range.type === undefined ? undefined : codesOf(range.type);
    out.push({ range, normal: typeCodes === undefined || typeCodes.length === 0 || typeCodes.includes('normal'), ageKnown: applies === true });
  }
  return out;
}

/** "reference range 3.5–5.0 mmol/L" (several joined by "; "); none without a range. */
function referenceRangeText(ranges: readonly ApplicableRange[]): string | undefined {
  const shown = ranges.map(oneRangeText).filter((t): t is string => t !== undefined);
  return shown.length > 0 ? `reference range ${shown.join('; ')}` : undefined;
}

/** Same unit: by UCUM code (and system) when both have one, else by unit text; both unitless counts. */
function sameUnit(a: Quantity, b: Quantity): boolean {
  if (a.code !== undefined && b.code !== undefined) return a.code === b.code && a.system === b.system;
  if (a.unit !== undefined || b.unit !== undefined) return (a.unit ?? a.code) === (b.unit ?? b.code);
  return a.code === undefined && b.code === undefined;
}

/**
 * When the source gave no interpretation: whether a plain numeric value is outside the one simple
 * (normal, not population-specific, age known to apply) range of its unit — "above reference range
 * (computed)" — so the reader sees what a flag would have said, and that this service said it.
 */
function computedFlag(o: Pick<Observation, 'valueQuantity'>, ranges: readonly ApplicableRange[]): string | undefined {
  const v = o.valueQuantity;
  if (!isObject(v) || typeof v.value !== 'number' || v.comparator !== undefined) return undefined;
  const simple = ranges.filter(({ range: r, normal, ageKnown }) => normal && ageKnown && listOf(r.appliesTo).length === 0
    && ((isObject(r.low) && typeof r.low.value === 'number') || (isObject(r.high) && typeof r.high.value === 'number')));
  if (simple.length !== 1) return undefined;
  const range = simple[0]?.range;
  const low = isObject(range?.low) && typeof range.low.value === 'number' && range.low.comparator === undefined ? range.low : undefined;
  const high = isObject(range?.high) && typeof range.high.value === 'number' && range.high.comparator === undefined ? range.high : undefined;
  if ((low && !sameUnit(v, low)) || (high && !sameUnit(v, high))) return undefined;
  if (low?.value !== undefined && v.value < low.value) return 'below reference range (computed)';
  if (high?.value !== undefined && v.value > high.value) return 'above reference range (computed)';
  return undefined;
}

/** The child's birth date, from the Observation's subject when it is the case Patient in the bundle. */
function birthDateOf(o: Observation, byUrl: ResourceLookup): string | undefined {
  const ref = isObject(o.subject) ? o.subject.reference : undefined;
  const subject = typeof ref === 'string' ? byUrl.get(ref) : undefined;
  return subject?.resourceType === 'Patient' ? subject.birthDate : undefined;
}

/**
 * The parts of an Observation's line after its date: name, value, components, reference range,
 * interpretation (or the computed flag), status when not final.
 */
export function observationParts(o: Observation, when: string | undefined, byUrl: ResourceLookup): (string | undefined)[] {
  const given = listOf(o.referenceRange);
  let ranges = NO_RANGES;
  if (given.length > 0) {
    const ageIn = given.some((r) => isObject(r) && isObject(r.age)) ? ageCalculator(birthDateOf(o, byUrl), when) : undefined;
    ranges = applicableRanges(given, ageIn);
  }
  const flag = interpretationText(o) ?? (ranges.length > 0 ? computedFlag(o, ranges) : undefined);
  return [conceptName(o.code), observationValue(o), componentText(o.component), ranges.length > 0 ? referenceRangeText(ranges) : undefined, flag, o.status === 'final' ? undefined : o.status];
}

/** Result names shown on a report's line; a report with more says only how many. */
const RESULTS_NAMED = 3;

/**
 * A DiagnosticReport's results on its line, without their values (each result has its own line, with
 * its flag and range): how many, and the names of a few when they name other tests than the report
 * ("2 results: TSH; Free T4"); just the count when there are more or not all are in the bundle.
 */
function reportResultsText(r: DiagnosticReport, byUrl: ResourceLookup): string | undefined {
  const refs = listOf(r.result);
  if (refs.length === 0) return undefined;
  const count = `${refs.length} result${refs.length === 1 ? '' : 's'}`;
  if (refs.length > RESULTS_NAMED) return count;
  const reportName = conceptName(r.code);
  const names: string[] = [];
  for (const ref of refs) {
    const target = isObject(ref) && typeof ref.reference === 'string' ? byUrl.get(ref.reference) : undefined;
    const name = target?.resourceType === 'Observation' ? conceptName(target.code) : undefined;
    if (name === undefined) return count;
    names.push(name);
  }
  return names.every((n) => n === reportName) ? count : `${count}: ${names.join('; ')}`;
}

/** The parts of a DiagnosticReport's line after its date. */
export function reportParts(r: DiagnosticReport, byUrl: ResourceLookup): (string | undefined)[] {
  return [conceptName(r.code), r.status === 'final' ? undefined : r.status, r.conclusion, reportResultsText(r, byUrl)];
}
