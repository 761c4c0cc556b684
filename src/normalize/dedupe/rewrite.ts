/**
 * Reference rewriting after merges: every `reference` to a merged-away fullUrl points to
 * its survivor, so the bundle has no dangling `urn:uuid`.
 *
 * Copy-on-write: untouched resources are returned as the same object (no allocation), a
 * touched one is copied along the changed path only. An array whose references collapse
 * onto the same survivor (a report listing both duplicates) keeps the first.
 * For speed, subtrees whose R4 datatypes hold no Reference are not walked
 * ({@link NO_REFERENCES}: Coding, CodeableConcept, Meta, Narrative, Quantity, Period,
 * Attachment, Dosage, HumanName, … by element name), nor `identifier` (its only Reference,
 * `assigner`, targets an Organization, which no rule merges; the engine checks that). A
 * Reference could only hide there inside an extension; `unresolvedReferences` (bundle.ts)
 * would report it. `content` is walked: it holds attachments in a DocumentReference (no
 * `reference` key, so nothing changes there) but is `Reference(Any)` 1..* in a DocumentManifest,
 * which must follow a merge of the DocumentReferences it lists.
 * @see https://hl7.org/fhir/R4/documentmanifest-definitions.html#DocumentManifest.content
 * @see https://hl7.org/fhir/R4/references.html#Reference
 * @packageDocumentation
 */
import { isObject, stableStringify, type JsonObject, type JsonValue } from './json';

/** merged-away fullUrl → survivor fullUrl. */
export type Redirects = ReadonlyMap<string, string>;

/** Element names whose R4 datatypes hold no Reference wherever they occur (see module comment). */
export const NO_REFERENCES: ReadonlySet<string> = new Set([
  'coding', 'meta', 'text', 'code', 'category', 'interpretation', 'valueQuantity', 'valueCodeableConcept', 'referenceRange',
  'component', 'period', 'effectivePeriod', 'performedPeriod', 'presentedForm', 'name', 'telecom', 'address',
  'dosageInstruction', 'dosage', 'modality', 'procedureCode', 'bodySite', 'clinicalStatus', 'verificationStatus',
  'vaccineCode', 'class', 'type', 'identifier', 'reasonCode', 'medicationCodeableConcept', 'dataAbsentReason',
]);

function rewriteArray(arr: JsonValue[], redirects: Redirects): JsonValue[] {
  let out: JsonValue[] | undefined;
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i] as JsonValue;
    if (typeof v !== 'object' || v === null) continue;
    const r = Array.isArray(v) ? rewriteArray(v, redirects) : rewriteObject(v, redirects);
    if (r !== v) {
      out ??= arr.slice();
      out[i] = r;
    }
  }
  if (!out) return arr;
  // Drop exact repeats created by the rewrite (two references now naming the same survivor).
  const seen = new Set<string>();
  return out.filter((v) => {
    if (!isObject(v) || typeof v.reference !== 'string') return true;
    const key = stableStringify(v);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function rewriteObject(obj: JsonObject, redirects: Redirects): JsonObject {
  let out: JsonObject | undefined;
  // for…in (not Object.keys): no array allocated per visited object.
  for (const k in obj) {
    const v = obj[k];
    if (typeof v === 'string') {
      if (k === 'reference') {
        const to = redirects.get(v);
        if (to !== undefined) {
          out ??= { ...obj };
          out[k] = to;
        }
      }
      continue;
    }
    if (typeof v !== 'object' || v === null || NO_REFERENCES.has(k)) continue;
    const r = Array.isArray(v) ? rewriteArray(v, redirects) : rewriteObject(v, redirects);
    if (r !== v) {
      out ??= { ...obj };
      out[k] = r;
    }
  }
  return out ?? obj;
}

/** `json` with redirected references; the same object when nothing changed. */
export function rewriteReferences(json: JsonObject, redirects: Redirects): JsonObject {
  if (redirects.size === 0) return json;
  return rewriteObject(json, redirects);
}
