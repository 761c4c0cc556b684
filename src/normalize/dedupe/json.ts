/**
 * Plain-JSON helpers for de-duplication: resources are handled as JSON trees when
 * merging and rewriting, so one generic implementation serves every resource type.
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

/** True for a non-array, non-null object. */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A resource viewed as a JSON object (no copy). */
export function asJson(resource: FhirResource): JsonObject {
  return resource as unknown as JsonObject;
}

/** A JSON object viewed as a resource (no copy, no check: the caller built it from a resource). */
export function asResource(json: JsonObject): FhirResource {
  return json as unknown as FhirResource;
}

/** Deep copy of a JSON value (much faster than `structuredClone` on small trees). */
export function cloneJson<T extends JsonValue>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => cloneJson(v)) as T;
  const out: JsonObject = {};
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = value[k];
    if (v !== undefined) out[k] = cloneJson(v);
  }
  return out as T;
}

/** JSON text with object keys sorted: equal for structurally equal values whatever the key order. */
export function stableStringify(value: JsonValue | undefined): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(value[k])}`).join(',')}}`;
}

/**
 * How complete a resource is, cheaply: its top-level elements, counting each item of a
 * top-level array and each coding of a top-level CodeableConcept (one level deep, so
 * choosing a survivor costs a few property reads, not a walk of the tree).
 */
export function completeness(json: JsonObject): number {
  let n = 0;
  for (const k in json) {
    const v = json[k];
    if (v === undefined || v === null) continue;
    n += 1;
    if (Array.isArray(v)) n += v.length;
    else if (typeof v === 'object' && Array.isArray(v.coding)) n += v.coding.length;
  }
  return n;
}
