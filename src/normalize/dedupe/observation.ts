/**
 * Observation duplicates — rule `observation:code-time-value`.
 *
 * Approach: the same result reported by two sources has a shared LOINC coding (after
 * mapping: team B's local lab code also carries LOINC), the same effective INSTANT
 * (`09:20-07:00` at one source is `16:20Z` at the other) and the same value. Block on
 * (LOINC code, instant) — one bucket per LOINC coding, so a result coded with both the
 * molar and the mass LOINC meets either — then compare values: quantities after UCUM
 * conversion within the reported precision ({@link sameQuantity}), codes by a shared
 * coding, other values exactly, components pairwise. Without a LOINC coding all codings
 * are used. No effective time, or `entered-in-error`: never merged. Same day but hours
 * apart, or a week apart with the same value: different instants, never merged. A
 * malformed component (without its `code`, which R4 requires) cannot be paired: the
 * Observation is never merged (and never stops the assembly). Quantities written without
 * decimals (`5.0` arrives as `5`) take the other value's precision, so K+ 5.0 and 5.4
 * stay two results. A result taken on another body site (blood pressure on the left and on
 * the right arm) is another result: never merged, not even through one that names no site
 * ({@link bodySiteState} as the cluster state).
 * The cluster state has three more dimensions ({@link clusterStateOf}); as for the site, a record
 * stating nothing of one joins either, but a cluster never holds two different ones:
 * - Status is a modifier element: results whose statuses differ (any two codes) stay apart, as
 *   reports (`final` and `amended`), procedures and conditions do. Merged, the survivor's status
 *   and flags stood for both: a `preliminary` K 6.1 (more complete, so the survivor) hid the
 *   `final` one, and a `final` K 6.6 flagged H hid the `corrected` 6.6 flagged HH. Kept apart
 *   rather than merged into the most authoritative status: the lesser record's reading (a critical
 *   flag the correction did not keep, or the one it added) is never dropped, a report pointing at
 *   its own `final` result never comes to show another source's `corrected` one, and no survivor
 *   can say `preliminary` while the final result it absorbed is gone. The specialist sees both,
 *   each with its status.
 * - Specimen: a culture of the blood and one of the urine (same code, instant and value) are two
 *   results; `Observation.specimen` holds one reference, so a merge lost the other. Compared by
 *   the Specimen's `type` (contained, or the bundle's Specimen the reference names), else the
 *   reference's display, else its target ({@link specimenState}): two records whose specimens
 *   cannot be told to be the same kind stay apart.
 * - Method: 38.1 °C axillary and 38.1 °C rectal are two readings (`Observation.method` as a
 *   canonical concept: codings, else text).
 *
 * Merge: the survivor keeps its value and its reading of it. A reference range and the
 * interpretation flags are the reporting lab's reading of its own value (the flag is read against
 * the range), so they travel as a pair ({@link readingMayFill}): a survivor without them takes a
 * duplicate's only from a duplicate whose value is in the same unit (the normalizer converts a
 * value's range with it, so a converted duplicate in the survivor's unit qualifies), and only where
 * what the survivor already states of the pair is the duplicate's too; flags are never unioned
 * (`UNION_ARRAYS` in `merge.ts`). Creatinine 0.6 mg/dL (flag N) merged with 53 µmol/L (range
 * 20–45 µmol/L, flag H) keeps N and no range: the µmol/L range beside a mg/dL value, and N beside
 * H, would misstate the result. The duplicate's reading stays in the Provenance and the raw store.
 * @see https://hl7.org/fhir/R4/observation.html
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.referenceRange
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.interpretation
 * @packageDocumentation
 */
import type { Coding, Observation, ObservationComponent, Reference, Specimen } from 'fhir/r4';
import { signatureBlocking, type BlockingSpec, type ClusterState } from './cluster';
import { dedupeWith } from './engine';
import { bodySiteState, codeKeys, codesIn, codingsOf, instantKey, isElement, LOINC } from './keys';
import { sameQuantity } from './quantity';
import type { DedupeRule } from './rule';
import { isObject, stableStringify, type JsonObject, type JsonValue } from './json';
import { changesKind } from '../units';
import type { NormalizedResource } from '../types';

/** The value part of an Observation or component. */
type ValueCarrier = Pick<Observation, 'valueQuantity' | 'valueCodeableConcept' | 'valueString' | 'valueBoolean' | 'valueInteger' | 'valueRange' | 'valueRatio' | 'valueSampledData' | 'valueTime' | 'valueDateTime' | 'valuePeriod' | 'dataAbsentReason'>;

function effectiveOf(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.start;
}

/** Whether two value carriers state the same value. */
export function sameValue(a: ValueCarrier, b: ValueCarrier, loinc: readonly string[]): boolean {
  if (a.valueQuantity || b.valueQuantity) {
    return a.valueQuantity !== undefined && b.valueQuantity !== undefined && sameQuantity(a.valueQuantity, b.valueQuantity, loinc);
  }
  if (a.valueCodeableConcept || b.valueCodeableConcept) {
    const ka = new Set(codeKeys(codingsOf(a.valueCodeableConcept)));
    const kb = codeKeys(codingsOf(b.valueCodeableConcept));
    if (ka.size > 0 && kb.length > 0) return kb.some((k) => ka.has(k));
    return a.valueCodeableConcept?.text !== undefined && a.valueCodeableConcept.text === b.valueCodeableConcept?.text;
  }
  const rest = (v: ValueCarrier): string =>
    stableStringify({
      s: v.valueString ?? null, b: v.valueBoolean ?? null, i: v.valueInteger ?? null, t: v.valueTime ?? null,
      d: v.valueDateTime ? instantKey(v.valueDateTime) ?? v.valueDateTime : null,
      r: (v.valueRange ?? v.valueRatio ?? v.valuePeriod ?? v.valueSampledData ?? null) as JsonValue,
      x: v.dataAbsentReason ? codeKeys(codingsOf(v.dataAbsentReason)).sort() : null,
    });
  return rest(a) === rest(b);
}

/**
 * The codings of a component's code; none for a malformed component (not an object, or
 * without the `code` R4 requires), which then pairs with nothing.
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.component.code
 */
function componentCodings(c: ObservationComponent | undefined): Coding[] {
  return typeof c === 'object' && c !== null ? codingsOf(c.code) : [];
}

/** Whether every component is an object with a coded `code` (else the Observation is never merged). */
function wellFormedComponents(component: unknown): component is ObservationComponent[] | undefined {
  return component === undefined || (Array.isArray(component) && component.every((c: ObservationComponent | undefined) => componentCodings(c).length > 0));
}

function sameComponents(a: readonly ObservationComponent[], b: readonly ObservationComponent[]): boolean {
  if (a.length !== b.length) return false;
  const used = new Set<number>();
  return a.every((ca) => {
    const codingsA = componentCodings(ca);
    const keysA = new Set(codeKeys(codingsA));
    const loinc = codesIn(codingsA, LOINC);
    const j = b.findIndex((cb, k) => !used.has(k) && codeKeys(componentCodings(cb)).some((x) => keysA.has(x)) && sameValue(ca, cb, loinc));
    if (j < 0) return false;
    used.add(j);
    return true;
  });
}

interface Signature {
  readonly keys: string[];
  readonly loinc: string[];
  readonly obs: Observation;
}

function signature(r: NormalizedResource): Signature {
  const obs = r.resource as Observation;
  // The mapped codings taken back because the value is reported in another kind of quantity still
  // say what was measured (`NormalizedResource.matchCodings`): matched by, as if present.
  const codings = r.matchCodings ? [...codingsOf(obs.code), ...r.matchCodings] : codingsOf(obs.code);
  const loinc: string[] = [];
  for (const c of codings) if (c.system === LOINC && c.code && !loinc.includes(c.code)) loinc.push(c.code);
  const mergeable = obs.status !== 'entered-in-error' && wellFormedComponents(obs.component);
  const instant = mergeable ? instantKey(effectiveOf(obs)) : undefined;
  if (instant === undefined) return { keys: [], loinc, obs };
  // Short keys hash faster: `L` + LOINC code, else the full system|code.
  const codes = loinc.length > 0 ? loinc.map((c) => `L${c}`) : [...new Set(codeKeys(codings))];
  return { keys: codes.map((c) => `${c}@${instant}`), loinc, obs };
}

function same(a: Signature, b: Signature): boolean {
  const loinc = [...a.loinc, ...b.loinc];
  if (!sameValue(a.obs, b.obs, loinc)) return false;
  return sameComponents(a.obs.component ?? [], b.obs.component ?? []);
}

/** The UCUM code of a carrier's valueQuantity, if any. */
function ucumCodeOf(v: JsonObject): string | undefined {
  const q = v.valueQuantity;
  return isObject(q) && typeof q.code === 'string' ? q.code : undefined;
}

/**
 * Whether the duplicate's `code` codings may join the survivor's: not when the two report their
 * values in different kinds of quantity (mmol/L beside mg/dL). A coding states the kind of value it
 * codes (LOINC's Property: 14749-6 Moles/volume, 2345-7 Mass/volume), and the survivor keeps its own
 * value, so the duplicate's codings would code it as what it is not; what was merged stays in the
 * Provenance and the raw store.
 * @see https://hl7.org/fhir/R4/observation.html#code
 */
function codingsMayJoin(field: string, survivor: JsonObject, duplicate: JsonObject): boolean {
  if (field !== 'code') return true;
  const a = ucumCodeOf(survivor);
  const b = ucumCodeOf(duplicate);
  return a === undefined || b === undefined || !changesKind(a, b);
}

/** The unit of a carrier's valueQuantity (UCUM code, else the human unit), if any. */
function valueUnitOf(v: JsonObject): string | undefined {
  const q = v.valueQuantity;
  if (!isObject(q)) return undefined;
  return typeof q.code === 'string' ? q.code : typeof q.unit === 'string' ? q.unit : undefined;
}

/** Deep equality of two optional JSON values. */
function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return a === undefined || b === undefined ? a === b : stableStringify(a) === stableStringify(b);
}

/** The two halves of a result's reading: each field names its partner. */
const READING_PARTNER: Readonly<Record<string, string>> = { referenceRange: 'interpretation', interpretation: 'referenceRange' };

/**
 * Whether `field` may be filled into the survivor from `duplicate`: any field but the reading
 * (reference range, interpretation), which only from a duplicate whose value is in the survivor's
 * unit, and only when the survivor states nothing of the other half or the duplicate's same.
 */
function readingMayFill(field: string, survivor: JsonObject, duplicate: JsonObject): boolean {
  const partner = READING_PARTNER[field];
  if (partner === undefined) return true;
  if (valueUnitOf(survivor) !== valueUnitOf(duplicate)) return false;
  const own = survivor[partner];
  return own === undefined || sameJson(own, duplicate[partner]);
}

/**
 * The Specimen a reference names: a contained one (`#id`) or one of the bundle's by fullUrl
 * (references are rewritten to fullUrls before de-duplication); undefined when neither.
 */
function specimenTarget(obs: Observation, ref: Reference, specimens: ReadonlyMap<string, Specimen>): Specimen | undefined {
  const target = ref.reference;
  if (typeof target !== 'string') return undefined;
  if (!target.startsWith('#')) return specimens.get(target);
  const contained: unknown = obs.contained;
  if (!Array.isArray(contained)) return undefined;
  const found = (contained as unknown[]).find((c) => isElement(c) && (c as Specimen).resourceType === 'Specimen' && (c as Specimen).id === target.slice(1));
  return found as Specimen | undefined;
}

/**
 * What an Observation says about its specimen, as a canonical string: the Specimen's `type` (read as
 * {@link bodySiteState} reads a concept: sorted `system|code` codings, else lower-case `text:`),
 * else the reference's display (as `text:`, so `Urine` meets a type written `urine`), else its
 * target (a contained target is local to its resource, so it is qualified by `self`, the record's
 * fullUrl, and matches no other record), else its identifier; undefined when the record names no
 * specimen. So two results merge only when their specimens are known to be of one kind, or are one
 * Specimen; a type coded at one source and only written at the other keeps them apart (both shown).
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.specimen
 * @see https://hl7.org/fhir/R4/specimen-definitions.html#Specimen.type
 */
export function specimenState(obs: Observation, self: string, specimens: ReadonlyMap<string, Specimen>): string | undefined {
  const ref: unknown = obs.specimen;
  if (!isElement(ref)) return undefined;
  const reference = ref as Reference;
  const target = specimenTarget(obs, reference, specimens);
  const type = isElement(target) ? bodySiteState(target.type) : undefined;
  if (type !== undefined) return type;
  if (typeof reference.display === 'string' && reference.display.trim() !== '') return `text:${reference.display.trim().toLowerCase()}`;
  if (typeof reference.reference === 'string' && reference.reference !== '') {
    return `ref:${reference.reference.startsWith('#') ? self : ''}${reference.reference}`;
  }
  const id = reference.identifier;
  return isElement(id) && id.system && id.value ? `id:${id.system}|${id.value}` : undefined;
}

/**
 * What an Observation states that its cluster may not contradict, one dimension each: body site,
 * status, specimen ({@link specimenState}) and method (as a concept, like the site).
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.status
 * @see https://hl7.org/fhir/R4/observation-definitions.html#Observation.method
 */
function clusterStateOf(r: NormalizedResource, specimens: ReadonlyMap<string, Specimen>): ClusterState {
  const obs = r.resource as Observation;
  return [bodySiteState(obs.bodySite), typeof obs.status === 'string' ? obs.status : undefined, specimenState(obs, r.fullUrl, specimens), bodySiteState(obs.method)];
}

/** The rule. */
export const observationRule: DedupeRule = {
  name: 'observation:code-time-value',
  resourceType: 'Observation',
  approach: 'shared LOINC coding + same effective instant + same value (UCUM-converted, within reported precision) + no other body site, status, specimen or method',
  blocking(resources, context): BlockingSpec {
    const specimens = new Map<string, Specimen>();
    for (const s of context.ofType('Specimen')) specimens.set(s.fullUrl, s.resource as Specimen);
    const states = resources.map((r) => clusterStateOf(r, specimens));
    return { ...signatureBlocking(resources.map(signature), same), state: (i) => states[i] };
  },
  unionCodingsFrom: codingsMayJoin,
  mayFill: readingMayFill,
};

/** De-duplicates Observations only (other resources pass through, references redirected). */
export const dedupeObservations = dedupeWith(observationRule);
