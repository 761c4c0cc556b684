/**
 * Folding duplicates into one survivor.
 *
 * Survivor choice (deterministic, independent of input order): highest rule preference
 * (e.g. a primary-source Immunization), then the most complete resource
 * ({@link completeness}: top-level elements, array items and codings), then the smallest
 * fullUrl.
 *
 * Union (generic, JSON level; the survivor's own values always win):
 * - fields the survivor lacks are filled from the duplicates, except a choice field whose
 *   other form the survivor has (`effectivePeriod` next to `effectiveDateTime`) and
 *   fields the rule forbids (e.g. Condition.abatement on an active survivor; an Observation's
 *   reference range and interpretation from a result reported in another unit);
 * - {@link UNION_ARRAYS} (identifiers, notes, categories, performers, extensions,
 *   endpoints, reasons, …) get the duplicates' elements the survivor does not have:
 *   CodeableConcepts sharing a coding are joined (codings unioned), References match by
 *   reference (or by display when one side has no reference), Identifiers by system|value,
 *   Annotations by text, anything else by value;
 * - {@link UNION_CODINGS} CodeableConcepts (code, vaccineCode, …) get the duplicates' codings, unless
 *   the rule says not ({@link MergePolicy.unionCodingsFrom}: an Observation's value of another kind);
 * - `meta.tag` and `meta.security` are unioned (a security label is never dropped);
 * - contained resources follow what references them: a duplicate's local ids are moved out of
 *   the survivor's way first (so references match by meaning, and two different `#r1` stay two),
 *   and each contained resource a copied element names is copied along ({@link localizeContained},
 *   {@link adoptContained}): a merge never leaves a `#` reference without its contained resource.
 * Everything else (status, values, dosage, content, reference ranges, interpretation flags) stays
 * the survivor's: flags are not unioned (two labs' `N` and `H` of one value, each read against its
 * own range, would contradict each other on one record).
 * @see https://hl7.org/fhir/R4/datatypes.html#CodeableConcept
 * @see https://hl7.org/fhir/R4/references.html#contained
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { NormalizedResource } from '../types';
import { adoptContained, localizeContained } from './contained';
import { asJson, asResource, cloneJson, completeness, isObject, stableStringify, type JsonObject, type JsonValue } from './json';

/** What a rule may adjust in the generic merge. */
export interface MergePolicy {
  /** Higher wins when choosing the survivor, before completeness (default 0). */
  readonly preference?: (resource: FhirResource) => number;
  /**
   * Whether a field the survivor lacks may be filled from `duplicate` (default: yes). `survivor` is
   * the draft as folded so far (fields filled from earlier duplicates, or earlier fields of this one).
   */
  readonly mayFill?: (field: string, survivor: JsonObject, duplicate: JsonObject) => boolean;
  /**
   * Type-specific union run after the generic one. `survivor` is a private shallow copy:
   * assign its top-level fields, never mutate nested values (they may be shared).
   */
  readonly unionExtra?: (survivor: JsonObject, duplicate: JsonObject) => void;
  /**
   * Whether the duplicate's codings of {@link UNION_CODINGS} field `field` join the survivor's
   * (default: yes). E.g. not an Observation code whose value is another kind of quantity.
   */
  readonly unionCodingsFrom?: (field: string, survivor: JsonObject, duplicate: JsonObject) => boolean;
}

/**
 * Top-level array fields whose elements are unioned. Not `interpretation` (Observation): a flag is
 * the reporting lab's reading of its value against its own reference range, which stays the
 * survivor's; two labs' flags side by side (`N` and `H`) would contradict each other.
 */
export const UNION_ARRAYS: ReadonlySet<string> = new Set([
  'identifier', 'note', 'category', 'performer', 'extension', 'endpoint', 'reasonCode', 'reasonReference',
  'basedOn', 'partOf', 'author', 'bodySite', 'result', 'specimen', 'derivedFrom', 'hasMember',
  'procedureCode', 'modality', 'participant', 'reaction', 'type', 'relatesTo', 'focus', 'supportingInfo',
  'complication', 'followUp', 'report', 'usedReference', 'evidence', 'stage', 'imagingStudy', 'media',
]);

/** Top-level CodeableConcept fields whose codings are unioned. */
export const UNION_CODINGS: ReadonlySet<string> = new Set([
  'code', 'vaccineCode', 'medicationCodeableConcept', 'type', 'bodySite', 'method', 'route', 'site',
]);

/**
 * Never copied from a duplicate as a whole: identity and bookkeeping of the survivor. (`contained`
 * resources come along one by one with the elements that reference them, see {@link foldInto}.)
 */
const NEVER_FILL: ReadonlySet<string> = new Set(['resourceType', 'id', 'meta', 'text', 'contained', 'implicitRules', 'language']);

const CHOICE = /^([a-z][A-Za-z]*?)(Boolean|Integer|Decimal|String|Uri|Url|Canonical|Base64Binary|Instant|Date|DateTime|Time|Code|Oid|Id|Uuid|Markdown|UnsignedInt|PositiveInt|Address|Age|Annotation|Attachment|CodeableConcept|Coding|ContactPoint|Count|Distance|Duration|HumanName|Identifier|Money|Period|Quantity|Range|Ratio|Reference|SampledData|Signature|Timing|Dosage)$/;

/** Elements whose names look like choice forms but are separate elements that may coexist. */
const NOT_CHOICE: ReadonlySet<string> = new Set([
  'reasonCode', 'reasonReference', 'instantiatesCanonical', 'instantiatesUri', 'statusReason', 'recordedDate', 'birthDate',
]);

function choiceBase(key: string): string | undefined {
  return NOT_CHOICE.has(key) ? undefined : CHOICE.exec(key)?.[1];
}

function hasChoiceSibling(survivor: JsonObject, key: string): boolean {
  const base = choiceBase(key);
  if (base === undefined) return false;
  for (const k in survivor) if (k !== key && survivor[k] !== undefined && choiceBase(k) === base) return true;
  return false;
}

/** Index (into `members`) of the survivor. */
export function chooseSurvivor(members: readonly NormalizedResource[], policy: MergePolicy = {}): number {
  let best = 0;
  let bestScore: readonly [number, number] | undefined;
  members.forEach((m, i) => {
    const score = [policy.preference?.(m.resource) ?? 0, completeness(asJson(m.resource))] as const;
    const current = members[best];
    if (
      bestScore === undefined ||
      score[0] > bestScore[0] ||
      (score[0] === bestScore[0] && score[1] > bestScore[1]) ||
      (score[0] === bestScore[0] && score[1] === bestScore[1] && current !== undefined && m.fullUrl < current.fullUrl)
    ) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

// ---- element matching -------------------------------------------------------------

const REFERENCE_KEYS: ReadonlySet<string> = new Set(['reference', 'display', 'type', 'identifier', 'id', 'extension']);

function isReferenceLike(v: JsonObject): boolean {
  if (typeof v.reference !== 'string' && typeof v.display !== 'string') return false;
  for (const k in v) if (!REFERENCE_KEYS.has(k)) return false;
  return true;
}

function isCodeableConcept(v: JsonObject): boolean {
  return Array.isArray(v.coding) || (Object.keys(v).length === 1 && typeof v.text === 'string');
}

function codingKey(c: JsonValue): string {
  return isObject(c) && typeof c.system === 'string' && typeof c.code === 'string' ? `${c.system}|${c.code}` : stableStringify(c);
}

function codingKeysOf(cc: JsonObject): Set<string> {
  return new Set(Array.isArray(cc.coding) ? cc.coding.map(codingKey) : []);
}

/** `cc` with the codings of `other` it lacks (a new object; `cc` unchanged). */
export function unionCodings(cc: JsonObject, other: JsonObject): JsonObject {
  const keys = codingKeysOf(cc);
  const extra = (Array.isArray(other.coding) ? other.coding : []).filter((c) => !keys.has(codingKey(c)));
  const out: JsonObject = { ...cc };
  if (extra.length > 0) out.coding = [...(Array.isArray(cc.coding) ? cc.coding : []), ...extra.map((c) => cloneJson(c))];
  if (out.text === undefined && typeof other.text === 'string') out.text = other.text;
  return out;
}

function sameReference(a: JsonObject, b: JsonObject): boolean {
  if (typeof a.reference === 'string' && typeof b.reference === 'string') return a.reference === b.reference;
  return typeof a.display === 'string' && a.display === b.display;
}

const INNER_REFERENCE = ['actor', 'individual', 'who'] as const;

type Match = { readonly kind: 'same' } | { readonly kind: 'replace' } | { readonly kind: 'codings' } | undefined;

/** How duplicate element `d` relates to survivor element `s` of array field `field`. */
function matchElement(field: string, s: JsonValue, d: JsonValue): Match {
  if (!isObject(s) || !isObject(d)) return s === d ? { kind: 'same' } : undefined;
  if (isCodeableConcept(s) && isCodeableConcept(d)) {
    const sk = codingKeysOf(s);
    for (const k of codingKeysOf(d)) if (sk.has(k)) return { kind: 'codings' };
    return sk.size === 0 && typeof s.text === 'string' && s.text === d.text ? { kind: 'codings' } : undefined;
  }
  if (field === 'note' && typeof s.text === 'string') return s.text === d.text ? { kind: 'same' } : undefined;
  if (field === 'extension' || typeof s.url === 'string') return stableStringify(s) === stableStringify(d) ? { kind: 'same' } : undefined;
  if (field === 'identifier' && typeof s.value === 'string') {
    return s.value === d.value && s.system === d.system ? { kind: 'same' } : undefined;
  }
  if (typeof s.system === 'string' && typeof s.code === 'string') return codingKey(s) === codingKey(d) ? { kind: 'same' } : undefined;
  if (isReferenceLike(s) && isReferenceLike(d)) {
    if (!sameReference(s, d)) return undefined;
    return typeof d.reference === 'string' && typeof s.reference !== 'string' ? { kind: 'replace' } : { kind: 'same' };
  }
  for (const inner of INNER_REFERENCE) {
    const si = s[inner];
    const di = d[inner];
    if (isObject(si) && isObject(di)) {
      if (!sameReference(si, di)) return undefined;
      return typeof di.reference === 'string' && typeof si.reference !== 'string' ? { kind: 'replace' } : { kind: 'same' };
    }
  }
  return stableStringify(s) === stableStringify(d) ? { kind: 'same' } : undefined;
}

/** Survivor array `s` plus the elements of `d` it lacks (a new array). */
export function unionArray(field: string, s: readonly JsonValue[], d: readonly JsonValue[]): JsonValue[] {
  const out: JsonValue[] = [...s];
  for (const el of d) {
    let placed = false;
    for (let i = 0; i < out.length && !placed; i++) {
      const current = out[i] as JsonValue;
      const m = matchElement(field, current, el);
      if (!m) continue;
      placed = true;
      if (m.kind === 'replace') out[i] = cloneJson(el);
      else if (m.kind === 'codings' && isObject(current) && isObject(el)) out[i] = unionCodings(current, el);
    }
    if (!placed) out.push(cloneJson(el));
  }
  return out;
}

function unionMeta(survivor: JsonObject, dup: JsonObject): void {
  const dm = dup.meta;
  if (!isObject(dm)) return;
  const sm: JsonObject = isObject(survivor.meta) ? { ...survivor.meta } : {};
  for (const field of ['tag', 'security'] as const) {
    const dv = dm[field];
    if (!Array.isArray(dv) || dv.length === 0) continue;
    const sv = sm[field];
    sm[field] = Array.isArray(sv) ? unionArray(field, sv, dv) : cloneJson(dv);
  }
  survivor.meta = sm;
}

/**
 * Folds `duplicate` into `survivor` (a private copy, mutated): its local ids first moved out of the
 * survivor's way, then its elements, then the contained resources the survivor now references.
 * @see https://hl7.org/fhir/R4/references.html#contained
 */
function foldInto(survivor: JsonObject, original: JsonObject, policy: MergePolicy): void {
  const { duplicate, pool } = localizeContained(survivor, original);
  foldElements(survivor, duplicate, policy);
  adoptContained(survivor, pool);
}

/** Fills and unions the elements of `duplicate` into `survivor` (see the module comment). */
function foldElements(survivor: JsonObject, duplicate: JsonObject, policy: MergePolicy): void {
  const filled = new Set<string>();
  for (const key of Object.keys(duplicate)) {
    const dv = duplicate[key];
    if (dv === undefined || NEVER_FILL.has(key) || key.startsWith('_')) continue;
    const sv = survivor[key];
    if (sv === undefined) {
      if (hasChoiceSibling(survivor, key) || policy.mayFill?.(key, survivor, duplicate) === false) continue;
      survivor[key] = cloneJson(dv);
      filled.add(key);
    } else if (Array.isArray(sv) && Array.isArray(dv)) {
      if (UNION_ARRAYS.has(key)) survivor[key] = unionArray(key, sv, dv);
    } else if (isObject(sv) && isObject(dv) && UNION_CODINGS.has(key) && isCodeableConcept(sv) && isCodeableConcept(dv) && policy.unionCodingsFrom?.(key, survivor, duplicate) !== false) {
      survivor[key] = unionCodings(sv, dv);
    }
  }
  // Primitive extensions (`_birthDate`) travel with a value filled from the same duplicate.
  for (const key of Object.keys(duplicate)) {
    const dv = duplicate[key];
    if (key.startsWith('_') && dv !== undefined && survivor[key] === undefined && filled.has(key.slice(1))) survivor[key] = cloneJson(dv);
  }
  unionMeta(survivor, duplicate);
  policy.unionExtra?.(survivor, duplicate);
}

/**
 * The survivor with what the duplicates add (inputs unchanged). Duplicates are folded in
 * the given order. Structure the merge does not touch is shared with the survivor (the
 * draft is a shallow copy whose top-level fields are replaced, never mutated in place).
 */
export function mergeResources(survivor: FhirResource, duplicates: readonly FhirResource[], policy: MergePolicy = {}): FhirResource {
  const draft: JsonObject = { ...asJson(survivor) };
  for (const d of duplicates) foldInto(draft, asJson(d), policy);
  return asResource(draft);
}
